using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// The register tile of <see cref="BlockedConv"/> on CPUs with AVX2 and FMA but no AVX-512: up to 6 output pixels of one
/// output row by 16 filters, one half of a packed panel of 32 (two ymm per pixel, 12 accumulators; the GEMM's 6x16 shape),
/// over one depth block, on the packed panels and the 16-channel blocks of the AVX-512 tile
/// (<see cref="BlockedConvTile{TStep}"/>). Each depth step loads the half's two filter vectors and broadcasts one input
/// value per pixel, read where it lies in the input buffer as the AVX-512 tile reads it.
/// </summary>
/// <remarks>
/// <para>Why 6 x 16 and not 3 x 32 (as ONNX Runtime's FMA3 NCHWc kernel, its four filter vectors read by the fused
/// multiply-adds as memory operands, since 12 accumulators and a broadcast leave no registers for them): measured on Zen 3
/// (one thread, a 256-step depth block from L1, the best of 25 rounds on a shared machine), 6 x 16 ran at 82-89 GFLOP/s,
/// near the 85 GFLOP/s peak, 3 x 32 at 65 (15 loads per 12 fused multiply-adds against 8). Its cost is rows narrower
/// than 12 pixels, whose tiles would keep fewer chains (a 7-pixel row: 4 and 3 pixels, 8 and 6 chains): so its tiles
/// run across rows (<see cref="BlockedRasterTiles"/>).</para>
/// <para><b>Bits.</b> Each output's sum is the AVX-512 tile's, lane by lane: a fused multiply-add chain from zero over the
/// block's steps in order, then the earlier blocks, the bias, the residual and the ReLU (<see cref="BlockedTileOutput"/>).</para>
/// </remarks>
internal static unsafe class BlockedConvTile256
{
    /// <summary>Filters per packed panel (the tile takes half of them).</summary>
    public const int Filters = 32;

    /// <summary>Output pixels per tile at most.</summary>
    public const int MaxWidth = 6;

    /// <summary>
    /// <see cref="BlockedConvTile{TStep}.Depth"/> for a tile of <paramref name="width"/> pixels (1 to 6) and the filters
    /// <c>[16 h, 16 h + 16)</c> of the panel, half <paramref name="h"/>: pixel j's input lies <c>inOffsets[j]</c> floats
    /// from <paramref name="a"/> (its output <c>outOffsets[j]</c> from the output's <see cref="BlockedTileOutput.Y"/>), so
    /// a tile may cross rows (<see cref="BlockedRasterTiles"/>); <paramref name="w"/> and <paramref name="t"/>
    /// (<c>[pixel][32]</c>) point at the half's first filter; the sums of <paramref name="k"/> steps from zero go to
    /// <paramref name="t"/> (added to it when <paramref name="add"/>), or for the last block (<paramref name="o"/> given)
    /// to the output's channel block <paramref name="h"/>.
    /// </summary>
    public static void Depth(int width, float* a, nint* inOffsets, nint* outOffsets, int* offsets, int k, float* w, float* t, bool add, in BlockedTileOutput o, int h, nint ahead)
    {
        switch (width)
        {
            case 6: Depth<W6>(a, inOffsets, outOffsets, offsets, k, w, t, add, o, h, ahead); break;
            case 5: Depth<W5>(a, inOffsets, outOffsets, offsets, k, w, t, add, o, h, ahead); break;
            case 4: Depth<W4>(a, inOffsets, outOffsets, offsets, k, w, t, add, o, h, ahead); break;
            case 3: Depth<W3>(a, inOffsets, outOffsets, offsets, k, w, t, add, o, h, ahead); break;
            case 2: Depth<W2>(a, inOffsets, outOffsets, offsets, k, w, t, add, o, h, ahead); break;
            default: Depth<W1>(a, inOffsets, outOffsets, offsets, k, w, t, add, o, h, ahead); break;
        }
    }

    /// <summary>
    /// One fused multiply-add chain per output over the block's steps in order, from zero. The pixels past
    /// <typeparamref name="TW"/> are dead code to the JIT. Optimised from the first call, as the AVX-512 tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Depth<TW>(float* a, nint* inOffsets, nint* outOffsets, int* offsets, int k, float* w, float* t, bool add, in BlockedTileOutput o, int h, nint ahead)
        where TW : struct, IConstant
    {
        Vector256<float> l0 = default, l1 = default, l2 = default, l3 = default, l4 = default, l5 = default;
        Vector256<float> u0 = default, u1 = default, u2 = default, u3 = default, u4 = default, u5 = default;
        int n = TW.Value;
        // Each pixel's input from the step's tap: in registers, so a broadcast costs one load as with constant offsets.
        nint d0 = inOffsets[0], d1 = inOffsets[1], d2 = inOffsets[2], d3 = inOffsets[3], d4 = inOffsets[4], d5 = inOffsets[5];
        for (int i = 0; i < k; i++, w += Filters)
        {
            var b0 = Vector256.Load(w);
            var b1 = Vector256.Load(w + 8);
            // The panel's next block into L2 (see BlockedConvTile): both halves' cache lines of the step.
            if (ahead != 0)
            {
                Sse.Prefetch1(w + ahead);
                Sse.Prefetch1(w + ahead + 16);
            }
            float* p = a + offsets[i];
            Vector256<float> v;
            v = Vector256.Create(p[d0]); l0 = Fma.MultiplyAdd(v, b0, l0); u0 = Fma.MultiplyAdd(v, b1, u0);
            if (n > 1) { v = Vector256.Create(p[d1]); l1 = Fma.MultiplyAdd(v, b0, l1); u1 = Fma.MultiplyAdd(v, b1, u1); }
            if (n > 2) { v = Vector256.Create(p[d2]); l2 = Fma.MultiplyAdd(v, b0, l2); u2 = Fma.MultiplyAdd(v, b1, u2); }
            if (n > 3) { v = Vector256.Create(p[d3]); l3 = Fma.MultiplyAdd(v, b0, l3); u3 = Fma.MultiplyAdd(v, b1, u3); }
            if (n > 4) { v = Vector256.Create(p[d4]); l4 = Fma.MultiplyAdd(v, b0, l4); u4 = Fma.MultiplyAdd(v, b1, u4); }
            if (n > 5) { v = Vector256.Create(p[d5]); l5 = Fma.MultiplyAdd(v, b0, l5); u5 = Fma.MultiplyAdd(v, b1, u5); }
        }
        if (o.Y == null)
        {
            BlockedTileOutput.Put(l0, u0, t, add);
            if (n > 1) BlockedTileOutput.Put(l1, u1, t + 1 * Filters, add);
            if (n > 2) BlockedTileOutput.Put(l2, u2, t + 2 * Filters, add);
            if (n > 3) BlockedTileOutput.Put(l3, u3, t + 3 * Filters, add);
            if (n > 4) BlockedTileOutput.Put(l4, u4, t + 4 * Filters, add);
            if (n > 5) BlockedTileOutput.Put(l5, u5, t + 5 * Filters, add);
            return;
        }
        o.Write(l0, u0, t, add, h, outOffsets[0]);
        if (n > 1) o.Write(l1, u1, t + 1 * Filters, add, h, outOffsets[1]);
        if (n > 2) o.Write(l2, u2, t + 2 * Filters, add, h, outOffsets[2]);
        if (n > 3) o.Write(l3, u3, t + 3 * Filters, add, h, outOffsets[3]);
        if (n > 4) o.Write(l4, u4, t + 4 * Filters, add, h, outOffsets[4]);
        if (n > 5) o.Write(l5, u5, t + 5 * Filters, add, h, outOffsets[5]);
    }

    private struct W1 : IConstant { public static int Value => 1; }
    private struct W2 : IConstant { public static int Value => 2; }
    private struct W3 : IConstant { public static int Value => 3; }
    private struct W4 : IConstant { public static int Value => 4; }
    private struct W5 : IConstant { public static int Value => 5; }
    private struct W6 : IConstant { public static int Value => 6; }
}
