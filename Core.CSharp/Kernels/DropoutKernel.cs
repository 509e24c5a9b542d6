using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Cnn.Core.Kernels;

/// <summary>The output of dropout and the mask it multiplied by, which the backward pass needs.</summary>
/// <param name="Output">The input times the mask.</param>
/// <param name="Mask">Each element 0 (dropped) or <c>1 / (1 - p)</c> (kept and rescaled), the input's shape.</param>
public sealed record DropoutResult(Tensor Output, Tensor Mask);

/// <summary>
/// Inverted dropout, as PyTorch's <c>dropout</c> in training: each element is dropped with probability <c>p</c> and the
/// survivors are scaled by <c>1 / (1 - p)</c>, so the expectation is unchanged and evaluation is the identity.
/// </summary>
public static class DropoutKernel
{
    /// <summary>Masks at least this long are filled by <see cref="BatchParallel"/> chunks (the bits do not depend on the split).</summary>
    private const int ParallelElements = 1 << 17;

    // SplitMix64 (Steele, Lea and Flood, 2014; the seeding generator of java.util.SplittableRandom and xoshiro): the
    // golden-ratio increment and the finaliser's multipliers.
    private const ulong Gamma = 0x9E3779B97F4A7C15UL, Mix1 = 0xBF58476D1CE4E5B9UL, Mix2 = 0x94D049BB133111EBUL;

    /// <summary>
    /// Drops each element of <paramref name="x"/> independently with probability <paramref name="p"/>: the same seed gives
    /// the same mask. One 64-bit key is drawn from <paramref name="rng"/> (8 bytes of
    /// <see cref="Random.NextBytes(Span{byte})"/>, little-endian); element <c>i</c> (row-major) is then dropped when
    /// <c>floor(h_i / 2^33) &lt; ceil(p * 2^31)</c>, i.e. when the top 31 bits of <c>h_i</c>, read as a uniform in [0, 1) on a
    /// 2^-31 grid, are below <c>p</c> (so each element is dropped with probability <c>p</c> to within 2^-31). Here
    /// <c>h_i = mix(key + (i + 1) * 0x9E3779B97F4A7C15)</c> is output <c>i + 1</c> of SplitMix64 started from the key,
    /// <c>mix</c> being its finaliser (<c>z ^= z &gt;&gt; 30; z *= 0xBF58476D1CE4E5B9; z ^= z &gt;&gt; 27;
    /// z *= 0x94D049BB133111EB; z ^= z &gt;&gt; 31</c>, modulo 2^64). The mask is a function of the key and the index alone (a
    /// counter-based generator): it depends on neither the thread count nor the instruction set, and the mask of a tensor is
    /// the start of the mask of a longer one drawn with the same seed. (The kernel used to draw one
    /// <see cref="Random.NextDouble"/> per element, about 40 times slower; its masks for a given seed were different.)
    /// <c>p = 0</c> is the identity and draws nothing.
    /// </summary>
    /// <exception cref="CnnException"><paramref name="p"/> is not in [0, 1).</exception>
    public static DropoutResult Forward(Tensor x, float p, Random rng)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rng);
        if (!(p >= 0f && p < 1f))
            throw new CnnException($"Dropout: expected a drop probability p in [0, 1); found {p}. (p = 1 would drop everything and scale by 1/0.)");
        if (p == 0f) return new DropoutResult(x, Tensor.Full(x.Shape, 1f));
        Span<byte> bytes = stackalloc byte[8];
        rng.NextBytes(bytes);
        ulong key = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        int threshold = Threshold(p);
        float keep = 1f / (1f - p);
        var mask = TensorArena.Uninitialized<float>(x.Size);
        var y = TensorArena.Uninitialized<float>(x.Size);
        if (x.Size < ParallelElements) Fill(x.Span, mask, y, key, threshold, keep, 0);
        else
            BatchParallel.For(x.Size, (_, start, end) =>
                Fill(x.Span[start..end], mask.AsSpan(start, end - start), y.AsSpan(start, end - start), key, threshold, keep, start));
        return new DropoutResult(Tensor.Own(y, x.Shape), Tensor.Own(mask, x.Shape));
    }

    /// <summary>The pullback of dropout: <c>dy * mask</c>.</summary>
    /// <exception cref="ShapeException">The gradient's shape is not the mask's.</exception>
    public static Tensor Backward(Tensor dy, Tensor mask)
    {
        if (dy.Shape != mask.Shape)
            throw new ShapeException($"Dropout backward: expected an upstream gradient of the mask's shape {mask.Shape}; found {dy.Shape}.");
        var dx = TensorArena.Uninitialized<float>(dy.Size);
        TensorPrimitives.Multiply(dy.Span, mask.Span, dx);
        return Tensor.Own(dx, dy.Shape);
    }

    /// <summary>
    /// Element <paramref name="index"/>'s draw under <paramref name="key"/>, an integer in [0, 2^31): the top 31 bits of
    /// SplitMix64's output <paramref name="index"/> + 1 from the key. The element is dropped when this is below
    /// <see cref="Threshold"/>(p). The definition the vector paths reproduce bit for bit.
    /// </summary>
    private static int Uniform31(ulong key, long index) => (int)(Mix(unchecked(key + (ulong)(index + 1) * Gamma)) >> 33);

    /// <summary><c>ceil(p * 2^31)</c>: a 31-bit uniform below it has probability <c>p</c> to within 2^-31.</summary>
    private static int Threshold(float p) => (int)Math.Ceiling(p * 2147483648.0);

    private static ulong Mix(ulong z)
    {
        unchecked
        {
            z = (z ^ (z >> 30)) * Mix1;
            z = (z ^ (z >> 27)) * Mix2;
            return z ^ (z >> 31);
        }
    }

    private static Vector512<ulong> Mix(Vector512<ulong> z)
    {
        z = (z ^ Vector512.ShiftRightLogical(z, 30)) * Vector512.Create(Mix1);
        z = (z ^ Vector512.ShiftRightLogical(z, 27)) * Vector512.Create(Mix2);
        return z ^ Vector512.ShiftRightLogical(z, 31);
    }

    private static Vector256<ulong> Mix(Vector256<ulong> z)
    {
        z = (z ^ Vector256.ShiftRightLogical(z, 30)) * Vector256.Create(Mix1);
        z = (z ^ Vector256.ShiftRightLogical(z, 27)) * Vector256.Create(Mix2);
        return z ^ Vector256.ShiftRightLogical(z, 31);
    }

    /// <summary>Elements <paramref name="offset"/> onwards: mask[j] and y[j] = x[j] * mask[j], branch-free.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Fill(ReadOnlySpan<float> x, Span<float> mask, Span<float> y, ulong key, int threshold, float keep, long offset)
    {
        int n = x.Length, j = 0;
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float mr = ref MemoryMarshal.GetReference(mask);
        ref float yr = ref MemoryMarshal.GetReference(y);
        unchecked
        {
            if (Vector512.IsHardwareAccelerated && n >= 16)
            {
                // Lanes hold consecutive counters: z = key + (index + 1) * gamma, advanced by 16 gammas a step.
                var z0 = Vector512.Create(key) + (Vector512.Create((ulong)offset + 1) + Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7)) * Vector512.Create(Gamma);
                var z1 = z0 + Vector512.Create(8 * Gamma);
                var step = Vector512.Create(16 * Gamma);
                var thr = Vector512.Create(threshold);
                var keepBits = Vector512.Create(keep).AsInt32();
                for (; j <= n - 16; j += 16)
                {
                    var u = Vector512.Narrow(Vector512.ShiftRightLogical(Mix(z0), 33), Vector512.ShiftRightLogical(Mix(z1), 33)).AsInt32();
                    var m = Vector512.AndNot(keepBits, Vector512.LessThan(u, thr)).AsSingle();
                    m.StoreUnsafe(ref mr, (nuint)j);
                    (Vector512.LoadUnsafe(ref xr, (nuint)j) * m).StoreUnsafe(ref yr, (nuint)j);
                    z0 += step;
                    z1 += step;
                }
            }
            else if (Vector256.IsHardwareAccelerated && n >= 8)
            {
                var z0 = Vector256.Create(key) + (Vector256.Create((ulong)offset + 1) + Vector256.Create(0UL, 1, 2, 3)) * Vector256.Create(Gamma);
                var z1 = z0 + Vector256.Create(4 * Gamma);
                var step = Vector256.Create(8 * Gamma);
                var thr = Vector256.Create(threshold);
                var keepBits = Vector256.Create(keep).AsInt32();
                for (; j <= n - 8; j += 8)
                {
                    var u = Vector256.Narrow(Vector256.ShiftRightLogical(Mix(z0), 33), Vector256.ShiftRightLogical(Mix(z1), 33)).AsInt32();
                    var m = Vector256.AndNot(keepBits, Vector256.LessThan(u, thr)).AsSingle();
                    m.StoreUnsafe(ref mr, (nuint)j);
                    (Vector256.LoadUnsafe(ref xr, (nuint)j) * m).StoreUnsafe(ref yr, (nuint)j);
                    z0 += step;
                    z1 += step;
                }
            }
            for (; j < n; j++)
            {
                float m = Uniform31(key, offset + j) < threshold ? 0f : keep;
                Unsafe.Add(ref mr, j) = m;
                Unsafe.Add(ref yr, j) = Unsafe.Add(ref xr, j) * m;
            }
        }
    }
}
