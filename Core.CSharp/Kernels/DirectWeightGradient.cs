using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// The weight gradient of a stride-1 convolution with a shallow column matrix, dW[f, r] = sum over output positions of
/// dY[f, p] x cols[r, p], computed from dY and the (staged) image where they lie: no column matrix, no transposes.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> The GEMM path contracts over output positions, the contiguous axis of both dY and the column
/// matrix, so it must pack both operands transposed (k-major panels) before its micro-kernel can run: on the image-size
/// benchmark's layers (C16 3x3 F16) the transposes and the column packing took twice the micro-kernel's time and dW ran
/// at 40-44 GFLOP/s on one Xeon thread against 120-130 for the forward pass. At stride 1 the values a column-matrix row
/// reads for 16 consecutive output positions of one output row are 16 consecutive floats of the staged image, and dY's
/// are 16 consecutive floats of its plane: this kernel multiplies those vectors lane by lane, 4 filters x 4 rows (16
/// accumulators) at a time, so each lane keeps a partial sum of its own.</para>
/// <para><b>Order of the sums.</b> Lane l of (f, r) adds, one fused multiply-add at a time, the products of the output
/// positions in lane l of every 16-position vector of every output row, images in order, vectors in order within an
/// image (within a band of rows, a row's partial last vectors after the band's whole ones); the 16 lanes are then summed
/// (<see cref="Vector512.Sum{T}(Vector512{T})"/>) and added to dW once per batch chunk (one call, or a run of calls that
/// carries the lane sums). That is not the GEMM path's order (one chain per depth block of 256 positions), so the bits
/// differ from it; the error is smaller, each lane's chain being a sixteenth as long. The order depends only on the
/// images of a chunk, so it is the same for any number of threads that splits the batch into the same chunks.</para>
/// <para><b>On AVX2.</b> CPUs with FMA but no AVX-512 (and <see cref="KernelWidth.ForceVector256"/>) run 8-lane vectors,
/// 4 filters x 3 rows (12 accumulators of the 16 registers; DirectWeightGradient.Vector256.cs): each lane's chain then
/// takes the positions in lane l of every 8-position vector, and 8 lanes are summed, so the bits differ from the 16-lane
/// kernel's as they do from the GEMM path's, by float32 rounding of a chain half as short as the 16-lane one's.</para>
/// </remarks>
internal static unsafe partial class DirectWeightGradient
{
    /// <summary>Filters (rows of dW) per tile.</summary>
    private const int Filters = 4;

    /// <summary>Column-matrix rows (columns of dW) per tile: 4 x 6 accumulators, 6 image vectors and one of dY in 31 registers.</summary>
    private const int Taps = 6;

    /// <summary>
    /// Output vectors of 16 per band (twice as many of 8; in whole output rows, at least one): each tile runs over a band while its dY and image
    /// rows stay in L1 (4 filters' dY rows of a band: 16 KB), and loads and stores its 24 lane sums once per band (from L2
    /// when there are more than L1 holds: 590 KB for 32 filters x 288 rows). 64 against 32 (one Xeon thread, best of 30,
    /// shared cores): dW of C32 30x30 output 3x3 F32 at N64 13.2-13.6 -> 12.6-12.8 ms, C16 32x32 pad 1 F16 3.4 -> 3.2-3.3 ms.
    /// </summary>
    private const int Band = 64;

    /// <summary>
    /// The most dW elements a thread keeps lane sums for (16 floats each, 1.3 MB at this bound: 64 filters x 320 rows): beyond it the lane sums
    /// would leave L2.
    /// </summary>
    private const int MaxElements = 20 * 1024;

    /// <summary>
    /// Whether the kernel covers the convolution on vectors of <paramref name="lanes"/> (<see cref="DirectConv.Lanes"/>): the
    /// shapes <see cref="DirectConv"/> takes (1-d or 2-d, stride 1, one group, a shallow column matrix, output rows at least
    /// a vector long that fill three-quarters of their vectors), and lane
    /// sums that fit L2. Rows of 13 (C32 15x15 F64, one vector per row, so a band is one small image) ran at half the
    /// GEMM path's speed: each tile then loads and stores its lane sums for a few hundred multiply-adds. Not 1x1 windows:
    /// there the GEMM reads the image as its own column matrix (no packing to save), and the bench's N64 C64 28x28 K128
    /// forward+backward fell from 1.2-1.45x LibTorch to 0.84x with the direct kernels.
    /// </summary>
    public static bool Covers(in ConvColumns l, int filters, int lanes) =>
        DirectConv.Covers(l, filters, lanes) && l.Taps > 1 && (long)RoundUp(filters, Filters) * RoundUp(l.Rows, TapsFor(lanes)) <= MaxElementsFor(lanes);

    /// <summary>
    /// <see cref="MaxElements"/>, and on 8 lanes no more than three quarters of the CPU's L2 holds: AVX2 CPUs have small
    /// ones (512 KB per core on Zen 3, where 64 filters x 288 rows of lane sums take 590 KB). Measured on Zen 3, N64 C32
    /// 15x15 K64 3x3 forward+backward, 2 threads: 18.2-19.8 ms with this kernel's dW against 8.9-10.7 with the GEMM's.
    /// The 16-lane bound was measured on the Xeon (2 MB L2) and stays.
    /// </summary>
    private static int MaxElementsFor(int lanes) => lanes == 16 ? MaxElements : L2Elements256;

    private static readonly int L2Elements256 =
        CpuCaches.L2 > 0 ? (int)Math.Min(MaxElements, CpuCaches.L2 * 3 / 4 / (8 * sizeof(float))) : MaxElements;

    /// <summary>Column-matrix rows per tile on vectors of <paramref name="lanes"/>.</summary>
    private static int TapsFor(int lanes) => lanes == 16 ? Taps : Taps256;

    /// <summary>
    /// <c>dw += dY x cols^T</c> over images <c>[i0, i1)</c>: dw is <c>[F, Rows]</c> row-major, dy <c>[N, F, OutSize]</c>, x
    /// the forward input. Runs on the calling thread. A run of images may come in several calls on one thread, in order and
    /// with no other call of this kernel in between: the first (<paramref name="begin"/>) starts the lane sums, the last
    /// (<paramref name="end"/>) adds them to dw, so the sums are those of one call over the whole run. Vectors of
    /// <paramref name="lanes"/> (16 or 8, <see cref="DirectConv.Lanes"/>; the same for every call of a run).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Accumulate(in ConvColumns l, float* x, float* dy, int f, float* dw, int i0, int i1, int lanes, bool begin = true, bool end = true)
    {
        int k = l.Rows, outSize = l.OutSize, outW = l.OutW, outH = outSize / outW, taps = TapsFor(lanes);
        // A band holds as many positions on either width.
        int full = outW / lanes, perRow = (outW + lanes - 1) / lanes, bandRows = Math.Max(1, Band * 16 / lanes / perRow);
        int fRound = RoundUp(f, Filters), kRound = RoundUp(k, taps);
        var buffers = ConvBuffers.Current;
        int* rowOffset = buffers.RowOffsets(kRound);
        // Rows past the last repeat it (their lane sums are never read), so every tile is whole.
        for (int r = 0; r < kRound; r++) rowOffset[r] = l.RowOffset(Math.Min(r, k - 1));
        // Images smaller than a band go several to a band, when their vectors are all whole or all partial (one tile call
        // a band): each lane still adds its products image after image, row after row, so the sums are those of one image
        // a band, and each tile loads and stores its lane sums once for several images instead of once for each.
        int group = bandRows >= outH && (full == 0 || full == perRow) ? Math.Max(1, Band * 16 / lanes / (outH * perRow)) : 1;
        float* stage = l.Staged ? buffers.Stage(group * l.ImageStride + ConvColumns.StageOverrun) : null;
        float* sums = buffers.LaneSums(fRound * kRound * lanes);
        if (begin) new Span<float>(sums, fRound * kRound * lanes).Clear();
        int inImage = l.C * l.InH * l.InW;
        for (int i = i0; i < i1; i += group)
        {
            int images = Math.Min(group, i1 - i);
            // Consecutive images: inImage apart in x (= ImageStride, read in place) or staged ImageStride apart.
            float* source = x + (nint)i * inImage;
            if (l.Staged)
            {
                for (int j = 0; j < images; j++) l.Stage(source + (nint)j * inImage, stage + (nint)j * l.ImageStride);
                source = stage;
            }
            var geometry = new Rows(l.Pitch, outW, full, outW % lanes, images, l.ImageStride, (nint)f * outSize);
            float* dyi = dy + (nint)i * f * outSize;
            for (int h0 = 0; h0 < outH; h0 += bandRows)
            {
                int h1 = Math.Min(outH, h0 + bandRows);
                for (int f0 = 0; f0 < fRound; f0 += Filters)
                {
                    // Filters past the last repeat it, like the rows.
                    int first = Math.Min(f0, f - 1);
                    float* d = dyi + (nint)first * outSize;
                    nint d1 = (nint)(Math.Min(f0 + 1, f - 1) - first) * outSize;
                    nint d2 = (nint)(Math.Min(f0 + 2, f - 1) - first) * outSize;
                    nint d3 = (nint)(Math.Min(f0 + 3, f - 1) - first) * outSize;
                    for (int r0 = 0; r0 < kRound; r0 += taps)
                    {
                        float* t = sums + ((nint)f0 * kRound + r0) * lanes;
                        if (lanes == 16)
                        {
                            Tile<Full>(source, rowOffset + r0, d, d1, d2, d3, geometry, h0, h1, 0, full, t, kRound * 16);
                            if (full < perRow) Tile<Masked>(source, rowOffset + r0, d, d1, d2, d3, geometry, h0, h1, full, perRow, t, kRound * 16);
                        }
                        else
                        {
                            Tile256<Full>(source, rowOffset + r0, d, d1, d2, d3, geometry, h0, h1, 0, full, t, kRound * 8);
                            if (full < perRow) Tile256<Masked>(source, rowOffset + r0, d, d1, d2, d3, geometry, h0, h1, full, perRow, t, kRound * 8);
                        }
                    }
                }
            }
        }
        if (!end) return;
        for (int fi = 0; fi < f; fi++)
            for (int r = 0; r < k; r++)
            {
                float* lane = sums + ((nint)fi * kRound + r) * lanes;
                dw[(nint)fi * k + r] += lanes == 16 ? Vector512.Sum(Vector512.Load(lane)) : Vector256.Sum(Vector256.Load(lane));
            }
    }

    /// <summary>
    /// How output rows lie: the image's row pitch, dY's row length, whole vectors per row and the last one's lanes; the
    /// images a band covers and the floats between consecutive ones in the source and in dY.
    /// </summary>
    private readonly record struct Rows(int Pitch, int OutW, int Full, int Tail, int Images, nint ImageStride, nint DyStride);

    /// <summary>
    /// Four filters (dY planes at <paramref name="d"/> and the three offsets) x six column-matrix rows over vectors
    /// <c>[j0, j1)</c> of output rows <c>[h0, h1)</c>, added to their lane sums (<paramref name="sums"/>: filter a's row b at
    /// <c>a * ld + b * 16</c>). <typeparamref name="TM"/> is <see cref="Masked"/> for a row's last, partial vector: its lanes
    /// past the row are loaded as zero from both operands, so whatever lies there (the next row, a non-finite pixel) adds
    /// nothing. Whole vectors and the partial one run as separate calls so the loop has no branch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TM>(float* source, int* rowOffset, float* d, nint d1, nint d2, nint d3, Rows g, int h0, int h1, int j0, int j1,
        float* sums, int ld) where TM : struct, IConstant
    {
        if (j0 >= j1) return;
        float* s0 = source + rowOffset[0], s1 = source + rowOffset[1], s2 = source + rowOffset[2];
        float* s3 = source + rowOffset[3], s4 = source + rowOffset[4], s5 = source + rowOffset[5];
        float* t0 = sums, t1 = sums + ld, t2 = sums + 2 * ld, t3 = sums + 3 * ld;
        var a0 = Vector512.Load(t0); var a1 = Vector512.Load(t0 + 16); var a2 = Vector512.Load(t0 + 32);
        var a3 = Vector512.Load(t0 + 48); var a4 = Vector512.Load(t0 + 64); var a5 = Vector512.Load(t0 + 80);
        var b0 = Vector512.Load(t1); var b1 = Vector512.Load(t1 + 16); var b2 = Vector512.Load(t1 + 32);
        var b3 = Vector512.Load(t1 + 48); var b4 = Vector512.Load(t1 + 64); var b5 = Vector512.Load(t1 + 80);
        var c0 = Vector512.Load(t2); var c1 = Vector512.Load(t2 + 16); var c2 = Vector512.Load(t2 + 32);
        var c3 = Vector512.Load(t2 + 48); var c4 = Vector512.Load(t2 + 64); var c5 = Vector512.Load(t2 + 80);
        var e0 = Vector512.Load(t3); var e1 = Vector512.Load(t3 + 16); var e2 = Vector512.Load(t3 + 32);
        var e3 = Vector512.Load(t3 + 48); var e4 = Vector512.Load(t3 + 64); var e5 = Vector512.Load(t3 + 80);
        var m = ImToCol.Lanes(g.Tail);
        for (int img = 0; img < g.Images; img++)
        {
            for (int h = h0; h < h1; h++)
            {
                nint at = img * g.ImageStride + (nint)h * g.Pitch + 16 * j0, to = img * g.DyStride + (nint)h * g.OutW + 16 * j0;
                for (int j = j0; j < j1; j++, at += 16, to += 16)
                {
                    var x0 = Load<TM>(s0 + at, m); var x1 = Load<TM>(s1 + at, m); var x2 = Load<TM>(s2 + at, m);
                    var x3 = Load<TM>(s3 + at, m); var x4 = Load<TM>(s4 + at, m); var x5 = Load<TM>(s5 + at, m);
                    var y = Load<TM>(d + to, m);
                    a0 = Avx512F.FusedMultiplyAdd(y, x0, a0); a1 = Avx512F.FusedMultiplyAdd(y, x1, a1); a2 = Avx512F.FusedMultiplyAdd(y, x2, a2);
                    a3 = Avx512F.FusedMultiplyAdd(y, x3, a3); a4 = Avx512F.FusedMultiplyAdd(y, x4, a4); a5 = Avx512F.FusedMultiplyAdd(y, x5, a5);
                    y = Load<TM>(d + d1 + to, m);
                    b0 = Avx512F.FusedMultiplyAdd(y, x0, b0); b1 = Avx512F.FusedMultiplyAdd(y, x1, b1); b2 = Avx512F.FusedMultiplyAdd(y, x2, b2);
                    b3 = Avx512F.FusedMultiplyAdd(y, x3, b3); b4 = Avx512F.FusedMultiplyAdd(y, x4, b4); b5 = Avx512F.FusedMultiplyAdd(y, x5, b5);
                    y = Load<TM>(d + d2 + to, m);
                    c0 = Avx512F.FusedMultiplyAdd(y, x0, c0); c1 = Avx512F.FusedMultiplyAdd(y, x1, c1); c2 = Avx512F.FusedMultiplyAdd(y, x2, c2);
                    c3 = Avx512F.FusedMultiplyAdd(y, x3, c3); c4 = Avx512F.FusedMultiplyAdd(y, x4, c4); c5 = Avx512F.FusedMultiplyAdd(y, x5, c5);
                    y = Load<TM>(d + d3 + to, m);
                    e0 = Avx512F.FusedMultiplyAdd(y, x0, e0); e1 = Avx512F.FusedMultiplyAdd(y, x1, e1); e2 = Avx512F.FusedMultiplyAdd(y, x2, e2);
                    e3 = Avx512F.FusedMultiplyAdd(y, x3, e3); e4 = Avx512F.FusedMultiplyAdd(y, x4, e4); e5 = Avx512F.FusedMultiplyAdd(y, x5, e5);
                }
            }
        }
        a0.Store(t0); a1.Store(t0 + 16); a2.Store(t0 + 32); a3.Store(t0 + 48); a4.Store(t0 + 64); a5.Store(t0 + 80);
        b0.Store(t1); b1.Store(t1 + 16); b2.Store(t1 + 32); b3.Store(t1 + 48); b4.Store(t1 + 64); b5.Store(t1 + 80);
        c0.Store(t2); c1.Store(t2 + 16); c2.Store(t2 + 32); c3.Store(t2 + 48); c4.Store(t2 + 64); c5.Store(t2 + 80);
        e0.Store(t3); e1.Store(t3 + 16); e2.Store(t3 + 32); e3.Store(t3 + 48); e4.Store(t3 + 64); e5.Store(t3 + 80);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load<TM>(float* p, Vector512<float> mask) where TM : struct, IConstant =>
        TM.Value == 1 ? Avx512F.MaskLoad(p, mask, Vector512<float>.Zero) : Vector512.Load(p);

    private static int RoundUp(int x, int y) => (x + y - 1) / y * y;
}
