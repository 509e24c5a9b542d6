using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// The input gradient of a stride-1 convolution with few filters, dx = col2im(W^T x dY), computed from dY where it lies
/// (zero-padded once per image) in the GEMM path's order: no dcols matrix and no fold.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> The GEMM path first writes dcols = W^T x dY, C x taps rows by every output position, with a depth of
/// only F, then adds every row into dx. With F = 16 (the image-size benchmark's layers) the product stores a C tile for
/// every 16 multiply-adds per lane and the fold rereads all of dcols: that pair ran at 65-80 GFLOP/s on one Xeon thread.
/// At stride 1, the dY values a tap needs for 16 consecutive positions of one row of dx are 16 consecutive floats of
/// dY's padded plane, so this kernel computes each tap's term for 4 channels x 3 row vectors in registers.</para>
/// <para><b>Same bits as the GEMM path.</b> There, each element of dcols is one fused multiply-add chain over the filters
/// from zero (F is at most one depth block, <see cref="GemmDepth"/>), and the fold adds a tap's element into dx (cleared to
/// zero) tap after tap, for the taps whose output position exists. This kernel computes each tap's term by the same chain
/// and adds the terms in the same order, under a lane mask of the positions where the tap exists (so a non-finite weight
/// reaches the same elements), so dx is bit for bit the GEMM path's when the fold runs in one block. The fused path folds
/// images of more than a block's positions (<c>ConvGemm.DcolsFloats</c>) block by block, which adds a few taps in another
/// order: there the two agree within rounding, and this kernel's order is the per-image path's, whole-image fold.</para>
/// <para><b>On AVX2.</b> CPUs with FMA but no AVX-512 (and <see cref="KernelWidth.ForceVector256"/>) run the same chains on
/// 8-lane vectors (DirectInputGradient.Vector256.cs), so the same bits.</para>
/// </remarks>
internal static unsafe partial class DirectInputGradient
{
    /// <summary>Input channels (rows of dx) per tile.</summary>
    private const int Channels = 4;

    /// <summary>Vectors (of 16 or 8 positions) per tile.</summary>
    private const int Slots = 3;

    /// <summary>
    /// Whether the kernel covers the convolution on vectors of <paramref name="lanes"/> (<see cref="DirectConv.Lanes"/>): 1-d
    /// or 2-d, stride 1, one group, filters times taps at most <see cref="DirectConv.MaxRows"/> with the filters one depth
    /// block, and input rows at least a vector long that fill three-quarters of their vectors. Not 1x1 windows, where the
    /// GEMM writes dx itself (no dcols, no fold to save).
    /// </summary>
    public static bool Covers(in ConvColumns l, int filters, int lanes) =>
        !DirectConv.Disabled && lanes > 0 && l.SH == 1 && l.SW == 1 && l.Groups == 1 && l.Taps > 1 && filters <= GemmDepth.MaxBlock
        && filters * l.Taps <= DirectConv.MaxRows && DirectConv.FillsVectors(l.InW, lanes);

    /// <summary>
    /// dx of images <c>[i0, i1)</c> (<c>[N, C, InH, InW]</c>, written whole) from dy (<c>[N, F, OutSize]</c>) and w
    /// (<c>[F, C, taps]</c>), on vectors of <paramref name="lanes"/> (16 or 8). Runs on the calling thread.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Compute(in ConvColumns l, float* dy, float* w, int f, float* dx, int i0, int i1, int lanes)
    {
        int kh = l.Taps / l.KW, kw = l.KW, taps = l.Taps, inW = l.InW, inH = l.InH, outW = l.OutW, outH = l.OutSize / outW;
        // dY's padded planes: row u, column v hold dY[u - (kh - 1) dh + ph, v - (kw - 1) dw + pw], zero outside.
        int padTop = (kh - 1) * l.DH - l.PH, padLeft = (kw - 1) * l.DW - l.PW;
        int pitch = inW + (kw - 1) * l.DW, rows = inH + (kh - 1) * l.DH, plane = rows * pitch;
        int perRow = (inW + lanes - 1) / lanes, vectors = inH * perRow;
        var buffers = ConvBuffers.Current;
        // A vector may read 15 floats past its row's end (lanes that are not stored).
        float* padded = buffers.Stage(f * plane + 16);
        new Span<float>(padded + (nint)f * plane, 16).Clear();
        // Per tap: its offset in a padded plane, and its output row and column shift. Per vector: where it reads and
        // writes, its row and first column, its lanes.
        int* tapOffset = (int*)buffers.Scratch(3 * taps + 5 * (vectors + Slots));
        int* tapRow = tapOffset + taps, tapCol = tapRow + taps;
        int* read = tapCol + taps, write = read + vectors + Slots, rowOf = write + vectors + Slots, colOf = rowOf + vectors + Slots;
        int* used = colOf + vectors + Slots;
        for (int t = 0; t < taps; t++)
        {
            int a = t / kw, b = t % kw;
            tapOffset[t] = (kh - 1 - a) * l.DH * pitch + (kw - 1 - b) * l.DW;
            tapRow[t] = l.PH - a * l.DH;
            tapCol[t] = l.PW - b * l.DW;
        }
        for (int v = 0; v < vectors + Slots; v++)
        {
            int y = Math.Min(v / perRow, inH - 1), x = v < vectors ? v % perRow * lanes : 0;
            read[v] = y * pitch + x;
            write[v] = y * inW + x;
            rowOf[v] = y;
            colOf[v] = x;
            used[v] = v < vectors ? Math.Min(lanes, inW - x) : 0;
        }
        int outSize = l.OutSize, inSize = l.C * inH * inW;
        var geometry = new Geometry(taps, plane, f, l.C, inH * inW, outH, outW);
        for (int i = i0; i < i1; i++)
        {
            Pad(dy + (nint)i * f * outSize, f, outH, outW, padTop, padLeft, rows, pitch, padded);
            float* dxi = dx + (nint)i * inSize;
            // Vectors outer: the padded dY rows a tile reads (its three vectors' rows, every filter) stay in L1 for every
            // channel; channels outer streamed all of dY from L2 per four channels.
            for (int v = 0; v < vectors; v += Slots)
                for (int c0 = 0; c0 < l.C; c0 += Channels)
                    if (lanes == 16)
                        Tile(padded, w, c0, geometry, tapOffset, tapRow, tapCol, read + v, write + v, rowOf + v, colOf + v, used + v, dxi);
                    else
                        Tile256(padded, w, c0, geometry, tapOffset, tapRow, tapCol, read + v, write + v, rowOf + v, colOf + v, used + v, dxi);
        }
    }

    /// <summary>Sizes a tile needs: taps, a padded plane's floats, filters, channels, a dx plane's floats, dY's rows and columns.</summary>
    private readonly record struct Geometry(int Taps, int Plane, int Filters, int C, int InPlane, int OutH, int OutW);

    /// <summary>Copies one image's dY planes into the zero-padded layout <see cref="Compute"/> reads.</summary>
    private static void Pad(float* dy, int f, int outH, int outW, int padTop, int padLeft, int rows, int pitch, float* dst)
    {
        for (int o = 0; o < f; o++)
            for (int u = 0; u < rows; u++)
            {
                float* d = dst + ((nint)o * rows + u) * pitch;
                int y = u - padTop;
                if (y < 0 || y >= outH)
                {
                    new Span<float>(d, pitch).Clear();
                    continue;
                }
                // Columns v hold dY column v - padLeft: [lo, hi) of them exist.
                int lo = Math.Clamp(padLeft, 0, pitch), hi = Math.Clamp(padLeft + outW, lo, pitch);
                new Span<float>(d, lo).Clear();
                new ReadOnlySpan<float>(dy + ((nint)o * outH + y) * outW + (lo - padLeft), hi - lo).CopyTo(new Span<float>(d + lo, hi - lo));
                new Span<float>(d + hi, pitch - hi).Clear();
            }
    }

    /// <summary>
    /// Four channels (the last <c>4 - n</c> repeat channel C - 1 and are not written) times three vectors of dx: per tap,
    /// each element's term is one fused multiply-add chain over the filters from zero, added to the element's sum (from
    /// zero) where the tap's output position exists; then one masked store.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile(float* padded, float* w, int c0, Geometry g, int* tapOffset, int* tapRow, int* tapCol, int* read, int* write,
        int* rowOf, int* colOf, int* lanes, float* dx)
    {
        int last = g.C - 1;
        int k1 = Math.Min(c0 + 1, last) - c0, k2 = Math.Min(c0 + 2, last) - c0, k3 = Math.Min(c0 + 3, last) - c0;
        nint fStride = (nint)g.C * g.Taps, o1 = (nint)k1 * g.Taps, o2 = (nint)k2 * g.Taps, o3 = (nint)k3 * g.Taps;
        Vector512<float> a0 = default, a1 = default, a2 = default, b0 = default, b1 = default, b2 = default;
        Vector512<float> c0v = default, c1v = default, c2v = default, e0 = default, e1 = default, e2 = default;
        var lane = Vector512<int>.Indices;
        for (int t = 0; t < g.Taps; t++)
        {
            // Where the tap's output position exists: its row in [0, OutH), each lane's column in [0, OutW).
            var m0 = Exists(rowOf[0] + tapRow[t], colOf[0] + tapCol[t], lane, g);
            var m1 = Exists(rowOf[1] + tapRow[t], colOf[1] + tapCol[t], lane, g);
            var m2 = Exists(rowOf[2] + tapRow[t], colOf[2] + tapCol[t], lane, g);
            if (Vector512.EqualsAll((m0 | m1 | m2).AsInt32(), Vector512<int>.Zero)) continue;
            // One offset steps all three vectors a plane and all four weights a filter, so the loop adds two registers.
            float* s0 = padded + tapOffset[t] + read[0], s1 = padded + tapOffset[t] + read[1], s2 = padded + tapOffset[t] + read[2];
            float* w0 = w + (nint)c0 * g.Taps + t, w1 = w0 + o1, w2 = w0 + o2, w3 = w0 + o3;
            Vector512<float> p0 = default, p1 = default, p2 = default, q0 = default, q1 = default, q2 = default;
            Vector512<float> r0 = default, r1 = default, r2 = default, u0 = default, u1 = default, u2 = default;
            nint at = 0, wAt = 0;
            for (int o = 0; o < g.Filters; o++, at += g.Plane, wAt += fStride)
            {
                var x0 = Vector512.Load(s0 + at);
                var x1 = Vector512.Load(s1 + at);
                var x2 = Vector512.Load(s2 + at);
                var v = Vector512.Create(w0[wAt]);
                p0 = Avx512F.FusedMultiplyAdd(v, x0, p0); p1 = Avx512F.FusedMultiplyAdd(v, x1, p1); p2 = Avx512F.FusedMultiplyAdd(v, x2, p2);
                v = Vector512.Create(w1[wAt]);
                q0 = Avx512F.FusedMultiplyAdd(v, x0, q0); q1 = Avx512F.FusedMultiplyAdd(v, x1, q1); q2 = Avx512F.FusedMultiplyAdd(v, x2, q2);
                v = Vector512.Create(w2[wAt]);
                r0 = Avx512F.FusedMultiplyAdd(v, x0, r0); r1 = Avx512F.FusedMultiplyAdd(v, x1, r1); r2 = Avx512F.FusedMultiplyAdd(v, x2, r2);
                v = Vector512.Create(w3[wAt]);
                u0 = Avx512F.FusedMultiplyAdd(v, x0, u0); u1 = Avx512F.FusedMultiplyAdd(v, x1, u1); u2 = Avx512F.FusedMultiplyAdd(v, x2, u2);
            }
            a0 = Vector512.ConditionalSelect(m0, a0 + p0, a0); a1 = Vector512.ConditionalSelect(m1, a1 + p1, a1); a2 = Vector512.ConditionalSelect(m2, a2 + p2, a2);
            b0 = Vector512.ConditionalSelect(m0, b0 + q0, b0); b1 = Vector512.ConditionalSelect(m1, b1 + q1, b1); b2 = Vector512.ConditionalSelect(m2, b2 + q2, b2);
            c0v = Vector512.ConditionalSelect(m0, c0v + r0, c0v); c1v = Vector512.ConditionalSelect(m1, c1v + r1, c1v); c2v = Vector512.ConditionalSelect(m2, c2v + r2, c2v);
            e0 = Vector512.ConditionalSelect(m0, e0 + u0, e0); e1 = Vector512.ConditionalSelect(m1, e1 + u1, e1); e2 = Vector512.ConditionalSelect(m2, e2 + u2, e2);
        }
        // No calls from here on (see DirectConv.Tile): the stores under each vector's lane mask.
        var n0 = ImToCol.Lanes(lanes[0]);
        var n1 = ImToCol.Lanes(lanes[1]);
        var n2 = ImToCol.Lanes(lanes[2]);
        float* d = dx + (nint)c0 * g.InPlane;
        Avx512F.MaskStore(d + write[0], n0, a0); Avx512F.MaskStore(d + write[1], n1, a1); Avx512F.MaskStore(d + write[2], n2, a2);
        if (k1 == 0) return;
        d += g.InPlane;
        Avx512F.MaskStore(d + write[0], n0, b0); Avx512F.MaskStore(d + write[1], n1, b1); Avx512F.MaskStore(d + write[2], n2, b2);
        if (k2 == k1) return;
        d += g.InPlane;
        Avx512F.MaskStore(d + write[0], n0, c0v); Avx512F.MaskStore(d + write[1], n1, c1v); Avx512F.MaskStore(d + write[2], n2, c2v);
        if (k3 == k2) return;
        d += g.InPlane;
        Avx512F.MaskStore(d + write[0], n0, e0); Avx512F.MaskStore(d + write[1], n1, e1); Avx512F.MaskStore(d + write[2], n2, e2);
    }

    /// <summary>Lanes whose output position (row <paramref name="row"/>, column <paramref name="col"/> + lane) exists.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exists(int row, int col, Vector512<int> lane, Geometry g)
    {
        if ((uint)row >= (uint)g.OutH) return Vector512<float>.Zero;
        var c = lane + Vector512.Create(col);
        return (Vector512.GreaterThanOrEqual(c, Vector512<int>.Zero) & Vector512.LessThan(c, Vector512.Create(g.OutW))).AsSingle();
    }
}
