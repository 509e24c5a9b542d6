using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Cnn.Core.Kernels;

/// <summary>
/// Where a <see cref="BlockedConv"/> tile's last depth block goes: the tile's first output pixel <see cref="Y"/> (its 16 low
/// filters; the high ones <see cref="Half"/> floats on, the next channel block), with the bias (null: none, so a -0 sum
/// stays -0), then a residual laid out as the output (null: none), then the ReLU: the operations, in order, of the GEMM's
/// write-out and of the sum and ReLU layers after it. <see cref="Y"/> null: the sums go to the tile's running total.
/// </summary>
/// <remarks>
/// Both tiles (<see cref="BlockedConvTile{TStep}"/> on zmm, <see cref="BlockedConvTile256"/> on ymm) write through
/// it, lane by lane the same operations, so the two give the same bits.
/// </remarks>
internal readonly unsafe struct BlockedTileOutput(float* y, nint half, float* bias, float* residual, bool relu)
{
    public float* Y { get; } = y;

    public nint Half { get; } = half;

    /// <summary>A pixel's block total plus the earlier blocks' (when <paramref name="add"/>), then bias, residual and ReLU, stored at <paramref name="offset"/> floats from <see cref="Y"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write(Vector512<float> lo, Vector512<float> hi, float* t, bool add, nint offset)
    {
        if (add)
        {
            lo += Vector512.Load(t);
            hi += Vector512.Load(t + 16);
        }
        if (bias != null)
        {
            lo += Vector512.Load(bias);
            hi += Vector512.Load(bias + 16);
        }
        if (residual != null)
        {
            lo += Vector512.Load(residual + offset);
            hi += Vector512.Load(residual + Half + offset);
        }
        if (relu) (lo, hi) = (DirectConv.Relu(lo), DirectConv.Relu(hi));
        lo.Store(Y + offset);
        hi.Store(Y + Half + offset);
    }

    /// <summary>
    /// <see cref="Write(Vector512{float}, Vector512{float}, float*, bool, nint)"/> for 16 filters of a pixel as two ymm
    /// (<paramref name="a"/> the first 8, <paramref name="b"/> the next 8), filters <c>[16 h, 16 h + 16)</c> of the panel
    /// for <paramref name="h"/> 0 (low) or 1 (high): <paramref name="t"/> points at the pixel's running total of those
    /// filters, the bias is indexed by filter, the output and the residual are the channel block <paramref name="h"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write(Vector256<float> a, Vector256<float> b, float* t, bool add, int h, nint offset)
    {
        if (add)
        {
            a += Vector256.Load(t);
            b += Vector256.Load(t + 8);
        }
        if (bias != null)
        {
            a += Vector256.Load(bias + 16 * h);
            b += Vector256.Load(bias + 16 * h + 8);
        }
        nint at = offset + h * Half;
        if (residual != null)
        {
            a += Vector256.Load(residual + at);
            b += Vector256.Load(residual + at + 8);
        }
        if (relu) (a, b) = (DirectConv.Relu(a), DirectConv.Relu(b));
        a.Store(Y + at);
        b.Store(Y + at + 8);
    }

    /// <summary>Two ymm of a tile's sums stored at <paramref name="t"/>, added to what is there when <paramref name="add"/> (a later depth block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Put(Vector256<float> a, Vector256<float> b, float* t, bool add)
    {
        if (add)
        {
            a += Vector256.Load(t);
            b += Vector256.Load(t + 8);
        }
        a.Store(t);
        b.Store(t + 8);
    }
}
