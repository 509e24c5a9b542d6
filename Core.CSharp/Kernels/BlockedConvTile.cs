using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// The register tile of <see cref="BlockedConv"/>: up to 14 output pixels of one output row by 32 filters (two zmm per
/// pixel, 28 accumulators) over one depth block. Each depth step loads two filter vectors from the packed panel and
/// broadcasts one input value per pixel, read where it lies in the input buffer: the step's offset (its channel and tap,
/// from a table) plus the pixel's index times <typeparamref name="TStep"/>, a constant to the JIT, so every broadcast is
/// one instruction with a constant displacement and no im2col is made.
/// </summary>
/// <typeparam name="TStep">Floats between the input values of adjacent output pixels (pixel stride times the stride).</typeparam>
internal static unsafe class BlockedConvTile<TStep> where TStep : struct, IConstant
{
    /// <summary>Filters per tile and per packed panel.</summary>
    public const int Filters = 32;

    /// <summary>Output pixels per tile at most.</summary>
    public const int MaxWidth = 14;

    /// <summary>
    /// The depth block of a tile of <paramref name="width"/> pixels (1 to 14): the sums of <paramref name="k"/> steps from
    /// zero, then stored to <paramref name="t"/> (<c>[pixel][32]</c>) or, when <paramref name="add"/>, added to it
    /// (<c>block + t</c>, as the GEMM's micro-kernel adds its C). For the last block (<paramref name="o"/> given) the
    /// total goes to the output instead, with the bias added and the ReLU applied in registers (<see cref="BlockedTileOutput"/>).
    /// A nonzero <paramref name="ahead"/> prefetches the panel that many floats on.
    /// </summary>
    public static void Depth(int width, float* a, int* offsets, int k, float* w, float* t, bool add, in BlockedTileOutput o, nint ahead)
    {
        switch (width)
        {
            case 14: Depth<W14>(a, offsets, k, w, t, add, o, ahead); break;
            case 13: Depth<W13>(a, offsets, k, w, t, add, o, ahead); break;
            case 12: Depth<W12>(a, offsets, k, w, t, add, o, ahead); break;
            case 11: Depth<W11>(a, offsets, k, w, t, add, o, ahead); break;
            case 10: Depth<W10>(a, offsets, k, w, t, add, o, ahead); break;
            case 9: Depth<W9>(a, offsets, k, w, t, add, o, ahead); break;
            case 8: Depth<W8>(a, offsets, k, w, t, add, o, ahead); break;
            case 7: Depth<W7>(a, offsets, k, w, t, add, o, ahead); break;
            case 6: Depth<W6>(a, offsets, k, w, t, add, o, ahead); break;
            case 5: Depth<W5>(a, offsets, k, w, t, add, o, ahead); break;
            case 4: Depth<W4>(a, offsets, k, w, t, add, o, ahead); break;
            case 3: Depth<W3>(a, offsets, k, w, t, add, o, ahead); break;
            case 2: Depth<W2>(a, offsets, k, w, t, add, o, ahead); break;
            default: Depth<W1>(a, offsets, k, w, t, add, o, ahead); break;
        }
    }

    /// <summary>
    /// One fused multiply-add chain per output over the block's steps in order, from zero: the operations of the GEMM's
    /// micro-kernel, so the sums have its bits. The pixels past <typeparamref name="TW"/> are dead code to the JIT.
    /// Optimised from the first call: an instrumented first tier of a loop this hot runs many times slower.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Depth<TW>(float* a, int* offsets, int k, float* w, float* t, bool add, in BlockedTileOutput o, nint ahead) where TW : struct, IConstant
    {
        Vector512<float> l0 = default, l1 = default, l2 = default, l3 = default, l4 = default, l5 = default, l6 = default;
        Vector512<float> l7 = default, l8 = default, l9 = default, l10 = default, l11 = default, l12 = default, l13 = default;
        Vector512<float> h0 = default, h1 = default, h2 = default, h3 = default, h4 = default, h5 = default, h6 = default;
        Vector512<float> h7 = default, h8 = default, h9 = default, h10 = default, h11 = default, h12 = default, h13 = default;
        int n = TW.Value;
        nint s = TStep.Value;
        for (int i = 0; i < k; i++, w += Filters)
        {
            var b0 = Vector512.Load(w);
            var b1 = Vector512.Load(w + 16);
            // The first tile of a depth block asks for the panel's next block into L2, as ChannelTileConv does: at batch 1
            // the weights stream from memory once per call, and the hardware prefetcher alone leaves the tile waiting.
            if (ahead != 0)
            {
                Sse.Prefetch1(w + ahead);
                Sse.Prefetch1(w + ahead + 16);
            }
            float* p = a + offsets[i];
            Vector512<float> v;
            v = Vector512.Create(p[0]); l0 = Avx512F.FusedMultiplyAdd(v, b0, l0); h0 = Avx512F.FusedMultiplyAdd(v, b1, h0);
            if (n > 1) { v = Vector512.Create(p[s]); l1 = Avx512F.FusedMultiplyAdd(v, b0, l1); h1 = Avx512F.FusedMultiplyAdd(v, b1, h1); }
            if (n > 2) { v = Vector512.Create(p[2 * s]); l2 = Avx512F.FusedMultiplyAdd(v, b0, l2); h2 = Avx512F.FusedMultiplyAdd(v, b1, h2); }
            if (n > 3) { v = Vector512.Create(p[3 * s]); l3 = Avx512F.FusedMultiplyAdd(v, b0, l3); h3 = Avx512F.FusedMultiplyAdd(v, b1, h3); }
            if (n > 4) { v = Vector512.Create(p[4 * s]); l4 = Avx512F.FusedMultiplyAdd(v, b0, l4); h4 = Avx512F.FusedMultiplyAdd(v, b1, h4); }
            if (n > 5) { v = Vector512.Create(p[5 * s]); l5 = Avx512F.FusedMultiplyAdd(v, b0, l5); h5 = Avx512F.FusedMultiplyAdd(v, b1, h5); }
            if (n > 6) { v = Vector512.Create(p[6 * s]); l6 = Avx512F.FusedMultiplyAdd(v, b0, l6); h6 = Avx512F.FusedMultiplyAdd(v, b1, h6); }
            if (n > 7) { v = Vector512.Create(p[7 * s]); l7 = Avx512F.FusedMultiplyAdd(v, b0, l7); h7 = Avx512F.FusedMultiplyAdd(v, b1, h7); }
            if (n > 8) { v = Vector512.Create(p[8 * s]); l8 = Avx512F.FusedMultiplyAdd(v, b0, l8); h8 = Avx512F.FusedMultiplyAdd(v, b1, h8); }
            if (n > 9) { v = Vector512.Create(p[9 * s]); l9 = Avx512F.FusedMultiplyAdd(v, b0, l9); h9 = Avx512F.FusedMultiplyAdd(v, b1, h9); }
            if (n > 10) { v = Vector512.Create(p[10 * s]); l10 = Avx512F.FusedMultiplyAdd(v, b0, l10); h10 = Avx512F.FusedMultiplyAdd(v, b1, h10); }
            if (n > 11) { v = Vector512.Create(p[11 * s]); l11 = Avx512F.FusedMultiplyAdd(v, b0, l11); h11 = Avx512F.FusedMultiplyAdd(v, b1, h11); }
            if (n > 12) { v = Vector512.Create(p[12 * s]); l12 = Avx512F.FusedMultiplyAdd(v, b0, l12); h12 = Avx512F.FusedMultiplyAdd(v, b1, h12); }
            if (n > 13) { v = Vector512.Create(p[13 * s]); l13 = Avx512F.FusedMultiplyAdd(v, b0, l13); h13 = Avx512F.FusedMultiplyAdd(v, b1, h13); }
        }
        if (o.Y == null)
        {
            ChannelTileConv.Put(l0, h0, t, add);
            if (n > 1) ChannelTileConv.Put(l1, h1, t + 1 * Filters, add);
            if (n > 2) ChannelTileConv.Put(l2, h2, t + 2 * Filters, add);
            if (n > 3) ChannelTileConv.Put(l3, h3, t + 3 * Filters, add);
            if (n > 4) ChannelTileConv.Put(l4, h4, t + 4 * Filters, add);
            if (n > 5) ChannelTileConv.Put(l5, h5, t + 5 * Filters, add);
            if (n > 6) ChannelTileConv.Put(l6, h6, t + 6 * Filters, add);
            if (n > 7) ChannelTileConv.Put(l7, h7, t + 7 * Filters, add);
            if (n > 8) ChannelTileConv.Put(l8, h8, t + 8 * Filters, add);
            if (n > 9) ChannelTileConv.Put(l9, h9, t + 9 * Filters, add);
            if (n > 10) ChannelTileConv.Put(l10, h10, t + 10 * Filters, add);
            if (n > 11) ChannelTileConv.Put(l11, h11, t + 11 * Filters, add);
            if (n > 12) ChannelTileConv.Put(l12, h12, t + 12 * Filters, add);
            if (n > 13) ChannelTileConv.Put(l13, h13, t + 13 * Filters, add);
            return;
        }
        const int lanes = BlockedPlane.Lanes;
        o.Write(l0, h0, t, add, 0);
        if (n > 1) o.Write(l1, h1, t + 1 * Filters, add, 1 * lanes);
        if (n > 2) o.Write(l2, h2, t + 2 * Filters, add, 2 * lanes);
        if (n > 3) o.Write(l3, h3, t + 3 * Filters, add, 3 * lanes);
        if (n > 4) o.Write(l4, h4, t + 4 * Filters, add, 4 * lanes);
        if (n > 5) o.Write(l5, h5, t + 5 * Filters, add, 5 * lanes);
        if (n > 6) o.Write(l6, h6, t + 6 * Filters, add, 6 * lanes);
        if (n > 7) o.Write(l7, h7, t + 7 * Filters, add, 7 * lanes);
        if (n > 8) o.Write(l8, h8, t + 8 * Filters, add, 8 * lanes);
        if (n > 9) o.Write(l9, h9, t + 9 * Filters, add, 9 * lanes);
        if (n > 10) o.Write(l10, h10, t + 10 * Filters, add, 10 * lanes);
        if (n > 11) o.Write(l11, h11, t + 11 * Filters, add, 11 * lanes);
        if (n > 12) o.Write(l12, h12, t + 12 * Filters, add, 12 * lanes);
        if (n > 13) o.Write(l13, h13, t + 13 * Filters, add, 13 * lanes);
    }

    private struct W1 : IConstant { public static int Value => 1; }
    private struct W2 : IConstant { public static int Value => 2; }
    private struct W3 : IConstant { public static int Value => 3; }
    private struct W4 : IConstant { public static int Value => 4; }
    private struct W5 : IConstant { public static int Value => 5; }
    private struct W6 : IConstant { public static int Value => 6; }
    private struct W7 : IConstant { public static int Value => 7; }
    private struct W8 : IConstant { public static int Value => 8; }
    private struct W9 : IConstant { public static int Value => 9; }
    private struct W10 : IConstant { public static int Value => 10; }
    private struct W11 : IConstant { public static int Value => 11; }
    private struct W12 : IConstant { public static int Value => 12; }
    private struct W13 : IConstant { public static int Value => 13; }
    private struct W14 : IConstant { public static int Value => 14; }
}

/// <summary>The pixel steps <see cref="BlockedConv"/> instantiates its tile for: planar or blocked input, stride 1 or 2.</summary>
internal static class BlockedSteps
{
    public struct Planar1 : IConstant { public static int Value => 1; }
    public struct Planar2 : IConstant { public static int Value => 2; }
    public struct Blocked1 : IConstant { public static int Value => BlockedPlane.Lanes; }
    public struct Blocked2 : IConstant { public static int Value => 2 * BlockedPlane.Lanes; }
}
