using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// Where a 1-d or 2-d convolution's column matrix (im2col) reads its values, so the column matrix never has to exist:
/// row r (channel c, tap kh, kw) and column J (image J / OutSize, output position q = J % OutSize) hold
/// <c>source[ImageBase(image) + RowOffset(r) + oh * Pitch + ow]</c> for output position q = (oh, ow). The source is the
/// input itself when the window reads no padding at stride 1 (<see cref="Staged"/> false); otherwise each image is first
/// copied into a staged layout: zero-padded and split by stride phase (a strided tap reads every SH-th row and SW-th
/// column, so phase (a, b) keeps rows a, a + SH, ... and columns b, b + SW, ... of the padded image), after which every
/// tap again reads consecutive positions of an output row from consecutive floats. Either way, one output row of one tap
/// is one contiguous run, the same runs for every row of the column matrix, just shifted by <see cref="RowOffset"/>: the
/// packing that feeds the GEMM (<see cref="ColumnPacker"/>) describes each 16 columns once and then copies (or, across
/// output rows narrower than 16, permutes) whole vectors for every row, without bounds logic.
/// </summary>
internal readonly struct ConvColumns
{
    public readonly int N, C, Groups, CG, Taps, KW, RowsG, Rows, OutW, OutSize;
    public readonly int SH, SW, PH, PW, DH, DW, InH, InW;

    /// <summary>Whether images are copied into the padded, phase-split layout first.</summary>
    public readonly bool Staged;

    /// <summary>Floats between consecutive source rows of one plane (the input's width, or the staged planes').</summary>
    public readonly int Pitch;

    /// <summary>Rows of a staged phase plane.</summary>
    public readonly int PlaneRows;

    /// <summary>Floats of one phase plane (staged) or one input plane.</summary>
    public readonly int PlaneSize;

    /// <summary>Floats per channel of the source.</summary>
    public readonly int ChannelStride;

    /// <summary>Floats per image of the source (the input's image size, or a staged image's).</summary>
    public readonly int ImageStride;

    /// <summary>The largest <see cref="RowOffset"/>: a vector read at a column's offset plus this stays inside the image.</summary>
    public readonly int MaxRowOffset;

    /// <summary>
    /// Whether the plan has no depth axis (1-d or 2-d): the only windows this layout covers. A 3-d window of depth one that
    /// pads that axis is not one: its single output plane reads the padding, not the input's plane.
    /// </summary>
    public static bool Covers(in WindowPlan p) => p.InD == 1 && p.KD == 1 && p.OutD == 1 && p.PD == 0;

    public ConvColumns(int n, int c, int groups, in WindowPlan p)
    {
        N = n; C = c; Groups = groups; CG = c / groups;
        Taps = p.KH * p.KW; KW = p.KW; RowsG = CG * Taps; Rows = c * Taps;
        OutW = p.OutW; OutSize = p.OutH * p.OutW;
        SH = p.SH; SW = p.SW; PH = p.PH; PW = p.PW; DH = p.DH; DW = p.DW; InH = p.InH; InW = p.InW;
        // In place: stride 1 and every tap of every output inside the image (no padding read, before or after).
        bool inPlace = p.SH == 1 && p.SW == 1 && p.PH == 0 && p.PW == 0
            && p.OutH - 1 + (p.KH - 1) * p.DH < p.InH && p.OutW - 1 + (p.KW - 1) * p.DW < p.InW;
        Staged = !inPlace;
        if (inPlace)
        {
            Pitch = p.InW;
            PlaneRows = p.InH;
            PlaneSize = p.InH * p.InW;
            ChannelStride = PlaneSize;
        }
        else
        {
            Pitch = p.OutW + (p.KW - 1) * p.DW / p.SW;
            PlaneRows = p.OutH + (p.KH - 1) * p.DH / p.SH;
            PlaneSize = PlaneRows * Pitch;
            ChannelStride = p.SH * p.SW * PlaneSize;
        }
        ImageStride = c * ChannelStride;
        int max = 0;
        for (int t = 0; t < Taps; t++) max = Math.Max(max, TapOffset(t / p.KW, t % p.KW));
        MaxRowOffset = (c - 1) * ChannelStride + max;
    }

    /// <summary>Where row r (over all groups: channel r / Taps) reads, relative to its image's base.</summary>
    public int RowOffset(int r)
    {
        int c = r / Taps, t = r - c * Taps;
        return c * ChannelStride + TapOffset(t / KW, t % KW);
    }

    private int TapOffset(int kh, int kw)
    {
        int h = kh * DH, w = kw * DW;
        return (h % SH * SW + w % SW) * PlaneSize + h / SH * Pitch + w / SW;
    }

    /// <summary>Floats past a staged image that <see cref="Stage"/> may overwrite: a row's last vector runs past the row.</summary>
    public const int StageOverrun = 16;

    /// <summary>
    /// Copies one image (<c>C x InH x InW</c>) into the staged layout: zero-padded, split by stride phase. Writes up to
    /// <see cref="StageOverrun"/> floats past the image (images staged one after another in increasing order overwrite
    /// each other's overrun).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public unsafe void Stage(float* x, float* dst)
    {
        bool pairs = SW == 2 && ColumnPacker.Vectorized, ones = SW == 1 && ColumnPacker.Vectorized;
        // Stride 2: the load masks of each 16-column chunk (which input columns exist), the same for every row.
        int chunks = pairs ? (Pitch + 15) / 16 : 0;
        var masks = stackalloc Vector512<float>[2 * chunks];
        // Stride 1: the same, one mask per 16 columns of a staged row (column v reads input column v - PW), and the last
        // chunk's store mask (the columns the row has).
        int rowChunks = ones ? (Pitch + 15) / 16 : 0;
        var rowMasks = stackalloc Vector512<float>[rowChunks];
        for (int k = 0; k < rowChunks; k++) rowMasks[k] = Inside(Vector512<int>.Indices + Vector512.Create(16 * k - PW));
        // Where phase b's columns read the image (columns [vLo, vHi) read input columns v * SW + b - PW): the same for every row.
        var spans = stackalloc int[2 * SW];
        for (int b = 0; b < SW; b++)
        {
            int vLo = Math.Min(Pitch, Math.Max(0, (PW - b + SW - 1) / SW)), last = InW - 1 + PW - b;
            spans[2 * b] = vLo;
            spans[2 * b + 1] = last < 0 ? vLo : Math.Max(vLo, Math.Min(Pitch, last / SW + 1));
        }
        // Locals, not static fields: a method compiled before its type is initialised would check the initialisation at
        // every use of a static (this one skips tiering), and could not keep the vectors in registers.
        var evenLanes = Vector512<int>.Indices * 2;
        var oddLanes = evenLanes + Vector512<int>.One;
        for (int k = 0; k < chunks; k++)
        {
            int start = 32 * k - PW;
            masks[2 * k] = Inside(Vector512<int>.Indices + Vector512.Create(start));
            masks[2 * k + 1] = Inside(Vector512<int>.Indices + Vector512.Create(start + 16));
        }
        for (int c = 0; c < C; c++)
            for (int a = 0; a < SH; a++)
                for (int u = 0; u < PlaneRows; u++)
                {
                    int h = u * SH + a - PH;
                    float* d = dst + (nint)c * ChannelStride + (nint)a * SW * PlaneSize + (nint)u * Pitch;
                    if (h < 0 || h >= InH)
                    {
                        for (int b = 0; b < SW; b++) new Span<float>(d + (nint)b * PlaneSize, Pitch).Clear();
                        continue;
                    }
                    float* row = x + ((nint)c * InH + h) * InW;
                    if (ones) StageRow(row - PW, d, rowMasks, rowChunks);
                    else if (pairs) StagePairs(row, d, d + PlaneSize, masks, chunks, evenLanes, oddLanes);
                    else
                        for (int b = 0; b < SW; b++, d += PlaneSize)
                        {
                            int vLo = spans[2 * b], vHi = spans[2 * b + 1];
                            for (int v = 0; v < vLo; v++) d[v] = 0f;
                            if (vHi > vLo)
                            {
                                float* src = row + vLo * SW + b - PW;
                                if (SW == 1) ImToCol.Copy(ref d[vLo], ref *src, vHi - vLo);
                                else ImToCol.Gather(ref d[vLo], ref *src, vHi - vLo, SW);
                            }
                            for (int v = vHi; v < Pitch; v++) d[v] = 0f;
                        }
                }
    }

    /// <summary>
    /// Stride 1: one staged row, 16 columns at a time from the input row (<paramref name="from"/> is its column -PW), by
    /// masked loads (columns outside the row read as the padding's zeros) and whole-vector stores: the last one runs up to
    /// 15 floats into the next row, which is written after it, or past the image (<see cref="StageOverrun"/>). Measured on
    /// one Xeon thread, an image of resnet-mini's layers (C3 and C16 32x32, C32 16x16, C64 8x8, padding 1): 0.93 / 5.8 /
    /// 5.1 / 4.8 us with the scalar fill of the padding around a copy this replaced (two divisions and short loops a row),
    /// 0.75 / 5.1 / 3.8-4.2 / 3.1-3.3 with a masked store for the last vector, 0.76 / 4.6 / 3.4-3.6 / 2.9-3.2 with these.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StageRow(float* from, float* d, Vector512<float>* masks, int chunks)
    {
        for (int k = 0; k < chunks; k++) Avx512F.MaskLoad(from + 16 * k, masks[k], Vector512<float>.Zero).Store(d + 16 * k);
    }

    /// <summary>
    /// Stride 2 along the width: both phases of one input row at once, 16 columns of each from a window of 32 input
    /// floats (masked loads: columns outside the row read as the padding's zeros) and two permutes; a row's last columns
    /// by masked stores. Those replaced single floats for a chunk of up to 4 columns and, for more, a store into a scratch
    /// vector copied out in halves and quarters: one Xeon thread, warm, an image of C32 16x16 with padding 1 (9-wide
    /// phases) 9.4 -> 3.9-4.6 us, C16 32x32 (17-wide) 5.5-5.7 -> 6.0-6.2 us.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe void StagePairs(float* row, float* even, float* odd, Vector512<float>* masks, int chunks, Vector512<int> evenLanes,
        Vector512<int> oddLanes)
    {
        for (int k = 0; k < chunks; k++, masks += 2)
        {
            int start = 32 * k - PW, v0 = 16 * k;
            var lo = Avx512F.MaskLoad(row + start, masks[0], Vector512<float>.Zero);
            var hi = Avx512F.MaskLoad(row + start + 16, masks[1], Vector512<float>.Zero);
            var e = Avx512F.PermuteVar16x32x2(lo, evenLanes, hi);
            var o = Avx512F.PermuteVar16x32x2(lo, oddLanes, hi);
            if (v0 + 16 <= Pitch)
            {
                e.Store(even + v0);
                o.Store(odd + v0);
            }
            else
            {
                // The row's last columns: the vectors' first lanes.
                var lanes = ImToCol.Lanes(Pitch - v0);
                Avx512F.MaskStore(even + v0, lanes, e);
                Avx512F.MaskStore(odd + v0, lanes, o);
            }
        }
    }

    /// <summary>Stores the first n (&lt; 16) lanes of v: halves, quarters, then single floats, no masked store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreFirst(Vector512<float> v, float* d, int n, float* tail)
    {
        v.Store(tail);
        ImToCol.Copy(ref *d, ref *tail, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Vector512<float> Inside(Vector512<int> column) =>
        (Vector512.GreaterThanOrEqual(column, Vector512<int>.Zero) & Vector512.LessThan(column, Vector512.Create(InW))).AsSingle();

    /// <summary>
    /// The adjoint of <see cref="Stage"/>: writes the image part of a staged gradient into dx (<c>C x InH x InW</c>); what
    /// fell in the padding is dropped.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public unsafe void Unstage(float* src, float* dx)
    {
        bool pairs = SW == 2 && ColumnPacker.Vectorized;
        // Input columns from wEnd on (rows whose u is past the planes) are read by no tap when the strided window does not
        // tile the image: their gradient is zero.
        int wEnd = Math.Clamp(Pitch * SW - PW, 0, InW);
        // Column w + l is phase (w + PW + l) & 1, column (w + PW + l) / 2 of it: from an even start, lane l takes the even
        // phase's l / 2 for even l and the odd phase's (lanes 16 on) for odd l; from an odd start the other way round.
        var lanes = Vector512<int>.Indices;
        var interleave = (lanes >> 1) + (lanes & Vector512<int>.One) * 16;
        var interleaveOdd = ((lanes + Vector512<int>.One) >> 1) + (Vector512<int>.One - (lanes & Vector512<int>.One)) * 16;
        float* tail = stackalloc float[16];
        for (int c = 0; c < C; c++)
            for (int h = 0; h < InH; h++)
            {
                int hp = h + PH, a = hp % SH, u = hp / SH;
                float* d = dx + ((nint)c * InH + h) * InW;
                if (u >= PlaneRows)
                {
                    new Span<float>(d, InW).Clear();
                    continue;
                }
                float* s = src + (nint)c * ChannelStride + (nint)a * SW * PlaneSize + (nint)u * Pitch;
                if (SW == 1) ImToCol.Copy(ref *d, ref s[PW], wEnd);
                else if (pairs) UnstagePairs(s, s + PlaneSize, d, wEnd, interleave, interleaveOdd, tail);
                else if (SW == 2) UnstagePairs128(s, s + PlaneSize, d, wEnd);
                else
                    for (int w = 0; w < wEnd; w++)
                    {
                        int wp = w + PW;
                        d[w] = s[(nint)(wp % SW) * PlaneSize + wp / SW];
                    }
                for (int w = wEnd; w < InW; w++) d[w] = 0f;
            }
    }

    /// <summary>
    /// <see cref="UnstagePairs"/> without AVX-512: 8 columns at a time, four of each phase interleaved by two unpacks.
    /// Measured on Zen 3 in resnet-mini's training step (its stride-2 layers), the loop it replaces, a division and a
    /// remainder per element, took 6.7 % of the step's samples.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe void UnstagePairs128(float* even, float* odd, float* d, int wEnd)
    {
        int w = 0;
        // Column w + 2i is the first pointer's i, column w + 2i + 1 the second's: for an even w + PW, both phases' v; for
        // an odd one, the odd phase's v and the even phase's v + 1.
        bool evenStart = (PW & 1) == 0;
        if (Sse.IsSupported)
            for (; w + 8 <= wEnd; w += 8)
            {
                int v = (w + PW) >> 1;
                var first = Vector128.Load(evenStart ? even + v : odd + v);
                var second = Vector128.Load(evenStart ? odd + v : even + v + 1);
                Sse.UnpackLow(first, second).Store(d + w);
                Sse.UnpackHigh(first, second).Store(d + w + 4);
            }
        for (; w < wEnd; w++)
        {
            int wp = w + PW;
            d[w] = ((wp & 1) == 0 ? even : odd)[wp >> 1];
        }
    }

    /// <summary>
    /// Stride 2 along the width: one row of dx from its two phases, 16 columns at a time (column w is phase
    /// (w + PW) % 2, column (w + PW) / 2).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe void UnstagePairs(float* even, float* odd, float* d, int wEnd, Vector512<int> interleave, Vector512<int> interleaveOdd,
        float* tail)
    {
        for (int w0 = 0; w0 < wEnd; w0 += 16)
        {
            int wp = w0 + PW, v = wp >> 1;
            var r = Avx512F.PermuteVar16x32x2(Vector512.Load(even + v), (wp & 1) == 0 ? interleave : interleaveOdd, Vector512.Load(odd + v));
            int n = wEnd - w0;
            if (n >= 16) r.Store(d + w0);
            else StoreFirst(r, d + w0, n, tail);
        }
    }
}
