using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// An inference convolution (AVX-512, one group) whose register tile has its vectors over output channels: each tile is
/// <see cref="Rows"/> output positions by <see cref="Filters"/> filters (two zmm of filters per position, 28 accumulators),
/// computing <c>Y^T = cols^T W^T</c>. The weights are packed once (<see cref="Pack"/>) as panels <c>[K, 32]</c>; the
/// positions are broadcast straight from the im2col matrix <c>[K, positions]</c>, whose <see cref="Rows"/> consecutive
/// entries of a row are the tile's rows, so they need no packing. The tile is transposed on write-out into NCHW, with the
/// bias and a ReLU applied to its filter vectors first.
/// </summary>
/// <remarks>
/// Why: the GEMM of <see cref="ConvGemm{TK}"/> has its vectors over output positions (32 of them), and ResNet's deep
/// stages have few positions and many filters (49 or 196 positions, 256 or 512 filters): a 49-wide product fills 49 of 64
/// lanes, and at batch 1 the packed weights (several megabytes) pass through the cache for very little work. Filter counts
/// are multiples of 32 in such networks, so this tile is always full across filters, and across positions it pads at most
/// 13 rows of a block. Like ONNX Runtime's NCHWc kernels, a filter panel is read once per tile while it sits in L2.
/// <para>
/// Bits: every output is summed as the GEMM sums it (fused multiply-add chains over the GEMM's depth blocks in im2col
/// order, the blocks added in order, then the bias, then the ReLU), so the output has the bits of the training forward
/// pass, whatever the batch, the blocks of positions or the thread split.
/// </para>
/// </remarks>
internal sealed unsafe class ChannelTileConv
{
    /// <summary>Output positions per register tile.</summary>
    public const int Rows = 14;

    /// <summary>Filters per register tile and per packed weight panel (two 16-lane vectors).</summary>
    public const int Filters = 32;

    /// <summary>
    /// At most this many floats of im2col columns per block (1 MB): with a filter panel (K x 32 floats) they stay in a 2 MB
    /// L2 while every tile of the block reads the panel and every panel reads the block.
    /// </summary>
    private const int BlockFloats = 1 << 18;

    /// <summary>
    /// At most this many tiles per block: a tile reads one row of the columns per depth step, and rows more than 2 KB apart
    /// (a block of 3,000 positions) defeat the L1 prefetcher and touch a new page per step: measured, ResNet's first layer
    /// (147 rows, 12,544 positions) ran three times slower in blocks of 1,568 positions than in blocks of 448.
    /// </summary>
    private const int BlockTiles = 32;

    private readonly WindowPlan _plan;
    private readonly int _c, _k, _f, _p, _panels, _inImage;

    /// <summary>Turns the kernel off (tests compare it with the GEMM path; profiling).</summary>
    internal static bool Disabled { get; set; }

    /// <summary>Whether this kernel can take a layer: AVX-512, one group, and at least a full panel of filters.</summary>
    public static bool Covers(int groups, int filters) =>
        !Disabled && groups == 1 && filters >= Filters && Avx512F.IsSupported && Vector512.IsHardwareAccelerated && !ColumnPacker.ForcePortable;

    /// <summary>
    /// Whether it is worth taking a layer with <paramref name="positions"/> output positions per image: at most half as many
    /// as filters. Measured in ResNet-18 at batch 1 (one thread, a loaded Xeon): the 7x7 stage (49 positions, 512 filters)
    /// 12-14 % faster than the GEMM path, the 14x14 stage (196, 256) even, the larger images and keras-cifar's 15x15 layers
    /// (225 positions, 64 filters) 10-30 % slower, where the GEMM's vectors over positions are full and this kernel's
    /// transposed write-out and padded last tile cost more than they save.
    /// </summary>
    public static bool Worth(int positions, int filters) => 2L * positions <= filters;

    /// <summary>
    /// The weight <c>[F, K]</c> as panels of <see cref="Filters"/> filters, <c>[panel][k][32]</c>, and the bias (null when
    /// there is none: a -0 sum stays -0 as in the GEMM path) as <c>[panel][32]</c>, the last panel zero-filled.
    /// </summary>
    public static (float[] Weights, float[]? Bias) Pack(ReadOnlySpan<float> w, Tensor? bias, int filters)
    {
        int k = w.Length / filters, panels = (filters + Filters - 1) / Filters;
        var packed = new float[panels * k * Filters];
        var b = bias is null ? null : new float[panels * Filters];
        PackInto(w, bias is null ? default : bias.Span, filters, packed, b);
        return (packed, b);
    }

    /// <summary>
    /// <see cref="Pack"/> into arrays of at least its lengths (<paramref name="packedBias"/> null when there is no bias),
    /// the last panel's unused filters zero.
    /// </summary>
    public static void PackInto(ReadOnlySpan<float> w, ReadOnlySpan<float> bias, int filters, Span<float> packed, Span<float> packedBias)
    {
        int k = w.Length / filters, panels = (filters + Filters - 1) / Filters;
        if (filters % Filters != 0) packed.Slice(0, panels * k * Filters).Clear();
        if (!packedBias.IsEmpty)
        {
            packedBias.Slice(0, panels * Filters).Clear();
            bias.CopyTo(packedBias);
        }
        for (int f = 0; f < filters; f++)
        {
            int panel = f / Filters, lane = f % Filters;
            for (int r = 0; r < k; r++) packed[(panel * k + r) * Filters + lane] = w[f * k + r];
        }
    }

    /// <param name="plan">The window on the input's shape.</param>
    /// <param name="channels">Input channels.</param>
    /// <param name="filters">Output channels.</param>
    public ChannelTileConv(in WindowPlan plan, int channels, int filters)
    {
        _plan = plan;
        _c = channels;
        _f = filters;
        _k = channels * plan.Taps;
        _p = plan.OutSize;
        _panels = (filters + Filters - 1) / Filters;
        _inImage = channels * plan.InSize;
        Tiles = (_p + Rows - 1) / Rows;
        long byCache = ((long)_k * Tiles * Rows + BlockFloats - 1) / BlockFloats, byStride = (Tiles + BlockTiles - 1) / BlockTiles;
        Blocks = (int)Math.Min(Tiles, Math.Max(1, Math.Max(byCache, byStride)));
    }

    /// <summary>Register tiles of <see cref="Rows"/> positions covering an image's output positions.</summary>
    public int Tiles { get; }

    /// <summary>How many blocks of positions an image's columns are cut into so that a block fits <see cref="BlockFloats"/>.</summary>
    public int Blocks { get; }

    /// <summary>Packed weight panels.</summary>
    public int Panels => _panels;

    /// <summary>Positions <c>[q0, q1)</c> of block <paramref name="block"/> of <paramref name="count"/>: whole tiles, the last block the rest.</summary>
    public (int Q0, int Q1) Block(int block, int count) =>
        (Math.Min(_p, (int)((long)Tiles * block / count) * Rows), Math.Min(_p, (int)((long)Tiles * (block + 1) / count) * Rows));

    /// <summary>The im2col block's row length for <paramref name="width"/> positions: whole tiles.</summary>
    public static int Pitch(int width) => (width + Rows - 1) / Rows * Rows;

    /// <summary>Floats of the im2col block of <paramref name="width"/> positions (<see cref="Unfold"/>).</summary>
    public int ColumnsLength(int width) => _k * Pitch(width);

    /// <summary>
    /// Output positions <c>[q0, q1)</c> of image <paramref name="image"/>, filter panels <c>[panel0, panel1)</c>: im2col of
    /// the positions into a pooled block, then every tile of every panel.
    /// </summary>
    /// <param name="x">The batch's input.</param>
    /// <param name="packed">The weight panels from <see cref="Pack"/>.</param>
    /// <param name="bias">The padded bias from <see cref="Pack"/>, or null.</param>
    /// <param name="relu">Apply <c>max(y, 0)</c> with the bits of the ReLU kernel.</param>
    /// <param name="y">The batch's output.</param>
    /// <param name="image">The image.</param>
    /// <param name="q0">The first position.</param>
    /// <param name="q1">The position past the last.</param>
    /// <param name="panel0">The first filter panel.</param>
    /// <param name="panel1">The panel past the last.</param>
    public void Forward(float* x, float* packed, float* bias, bool relu, float* y, int image, int q0, int q1, int panel0, int panel1)
    {
        if (q1 <= q0 || panel1 <= panel0) return;
        var cols = Workspace.Rent(ColumnsLength(q1 - q0));
        try
        {
            fixed (float* pc = cols)
            {
                Unfold(x, image, q0, q1, pc, 0, _c);
                Compute(pc, packed, bias, relu, y, image, q0, q1, panel0, panel1);
            }
        }
        finally { Workspace.Return(cols); }
    }

    /// <summary>
    /// Rows of input channels <c>[c0, c1)</c> of the im2col block of positions <c>[q0, q1)</c> (rows of
    /// <see cref="Pitch"/> floats), the columns past <paramref name="q1"/> zero.
    /// </summary>
    public void Unfold(float* x, int image, int q0, int q1, float* cols, int c0, int c1)
    {
        int width = q1 - q0, ld = Pitch(width), taps = _plan.Taps, inSize = _plan.InSize;
        float* rows = cols + (long)c0 * taps * ld;
        int count = (c1 - c0) * taps;
        ImToCol.UnfoldRange(new ReadOnlySpan<float>(x + (long)image * _inImage + (long)c0 * inSize, (c1 - c0) * inSize), c1 - c0, _plan, q0, q1,
            new Span<float>(rows, count * ld), ld, 0);
        // The last tile's rows past the block read these columns: zeros, not whatever the pool held (NaN or denormals).
        if (ld > width)
            for (int r = 0; r < count; r++) new Span<float>(rows + (long)r * ld + width, ld - width).Clear();
    }

    /// <summary>Filter panels <c>[panel0, panel1)</c> of positions <c>[q0, q1)</c> from their im2col block (<see cref="Unfold"/>).</summary>
    public void Compute(float* cols, float* packed, float* bias, bool relu, float* y, int image, int q0, int q1, int panel0, int panel1)
    {
        int width = q1 - q0, ld = Pitch(width);
        var sums = Workspace.Rent(ld * Filters);
        try
        {
            fixed (float* ps = sums)
            {
                float* yi = y + (long)image * _f * _p;
                int kc = GemmDepth.Block(_k);
                for (int panel = panel0; panel < panel1; panel++)
                {
                    int f0 = panel * Filters;
                    float* w = packed + (long)panel * _k * Filters;
                    // Depth blocks outside the tiles: a block of the panel (kc x 32 floats) stays in L1 for every tile.
                    for (int k0 = 0; k0 < _k; k0 += kc)
                        for (int t = 0; t < ld; t += Rows)
                            Depth(cols + (long)k0 * ld + t, ld, w + (long)k0 * Filters, Math.Min(kc, _k - k0), ps + t * Filters, k0 > 0,
                                t == 0, (nint)kc * Filters);
                    for (int t = 0; t < ld; t += Rows)
                        Finish(ps + t * Filters, bias is null ? null : bias + f0, relu, yi + (long)f0 * _p + q0 + t, _p, Math.Min(Rows, width - t), Math.Min(Filters, _f - f0));
                }
            }
        }
        finally { Workspace.Return(sums); }
    }

    /// <summary>
    /// A tile's sums <paramref name="t"/> (<c>[row][filter]</c>) plus the bias (if any), then the ReLU, written to
    /// <c>y[f * ldy + r]</c> for the first <paramref name="rows"/> rows and <paramref name="filters"/> filters.
    /// </summary>
    private static void Finish(float* t, float* bias, bool relu, float* y, nint ldy, int rows, int filters)
    {
        if (bias is not null || relu)
        {
            var bl = bias is null ? default : Vector512.Load(bias);
            var bh = bias is null ? default : Vector512.Load(bias + 16);
            for (int r = 0; r < Rows; r++)
            {
                var lo = Vector512.Load(t + r * Filters);
                var hi = Vector512.Load(t + r * Filters + 16);
                if (bias is not null) (lo, hi) = (lo + bl, hi + bh);
                if (relu) (lo, hi) = (DirectConv.Relu(lo), DirectConv.Relu(hi));
                lo.Store(t + r * Filters);
                hi.Store(t + r * Filters + 16);
            }
        }
        for (int f = 0; f < filters; f++, y += ldy)
            for (int r = 0; r < rows; r++) y[r] = t[r * Filters + f];
    }

    /// <summary>
    /// The register tile over one depth block (<see cref="GemmDepth.Block"/>, as <see cref="ConvGemm{TK}"/> blocks the
    /// depth, so that the sums have the training forward pass's bits): 28 accumulators from zero, a fused multiply-add chain over the block, then
    /// added to the tile's running sum <paramref name="t"/> (<c>block + t</c>, as the GEMM's micro-kernel adds C) when
    /// <paramref name="add"/>, else stored to it. Optimised from the first call: an instrumented first tier of a loop this
    /// hot runs many times slower.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Depth(float* a, nint lda, float* w, int k, float* t, bool add, bool prefetch, nint ahead)
    {
        Vector512<float> l0 = default, l1 = default, l2 = default, l3 = default, l4 = default, l5 = default, l6 = default;
        Vector512<float> l7 = default, l8 = default, l9 = default, l10 = default, l11 = default, l12 = default, l13 = default;
        Vector512<float> h0 = default, h1 = default, h2 = default, h3 = default, h4 = default, h5 = default, h6 = default;
        Vector512<float> h7 = default, h8 = default, h9 = default, h10 = default, h11 = default, h12 = default, h13 = default;
        for (int i = 0; i < k; i++, a += lda, w += Filters)
        {
            var b0 = Vector512.Load(w);
            var b1 = Vector512.Load(w + 16);
            // The first tile asks for the next depth block of the panel into L2: the weights stream from L3 (ResNet's deep
            // stages have megabytes of them) and the hardware prefetcher alone left the first tile of each block waiting
            // for them (measured, ResNet-18 at batch 1 on one thread: 8 % faster in all).
            if (prefetch)
            {
                Sse.Prefetch1(w + ahead);
                Sse.Prefetch1(w + ahead + 16);
            }
            Vector512<float> av;
            av = Vector512.Create(a[0]); l0 = Avx512F.FusedMultiplyAdd(av, b0, l0); h0 = Avx512F.FusedMultiplyAdd(av, b1, h0);
            av = Vector512.Create(a[1]); l1 = Avx512F.FusedMultiplyAdd(av, b0, l1); h1 = Avx512F.FusedMultiplyAdd(av, b1, h1);
            av = Vector512.Create(a[2]); l2 = Avx512F.FusedMultiplyAdd(av, b0, l2); h2 = Avx512F.FusedMultiplyAdd(av, b1, h2);
            av = Vector512.Create(a[3]); l3 = Avx512F.FusedMultiplyAdd(av, b0, l3); h3 = Avx512F.FusedMultiplyAdd(av, b1, h3);
            av = Vector512.Create(a[4]); l4 = Avx512F.FusedMultiplyAdd(av, b0, l4); h4 = Avx512F.FusedMultiplyAdd(av, b1, h4);
            av = Vector512.Create(a[5]); l5 = Avx512F.FusedMultiplyAdd(av, b0, l5); h5 = Avx512F.FusedMultiplyAdd(av, b1, h5);
            av = Vector512.Create(a[6]); l6 = Avx512F.FusedMultiplyAdd(av, b0, l6); h6 = Avx512F.FusedMultiplyAdd(av, b1, h6);
            av = Vector512.Create(a[7]); l7 = Avx512F.FusedMultiplyAdd(av, b0, l7); h7 = Avx512F.FusedMultiplyAdd(av, b1, h7);
            av = Vector512.Create(a[8]); l8 = Avx512F.FusedMultiplyAdd(av, b0, l8); h8 = Avx512F.FusedMultiplyAdd(av, b1, h8);
            av = Vector512.Create(a[9]); l9 = Avx512F.FusedMultiplyAdd(av, b0, l9); h9 = Avx512F.FusedMultiplyAdd(av, b1, h9);
            av = Vector512.Create(a[10]); l10 = Avx512F.FusedMultiplyAdd(av, b0, l10); h10 = Avx512F.FusedMultiplyAdd(av, b1, h10);
            av = Vector512.Create(a[11]); l11 = Avx512F.FusedMultiplyAdd(av, b0, l11); h11 = Avx512F.FusedMultiplyAdd(av, b1, h11);
            av = Vector512.Create(a[12]); l12 = Avx512F.FusedMultiplyAdd(av, b0, l12); h12 = Avx512F.FusedMultiplyAdd(av, b1, h12);
            av = Vector512.Create(a[13]); l13 = Avx512F.FusedMultiplyAdd(av, b0, l13); h13 = Avx512F.FusedMultiplyAdd(av, b1, h13);
        }
        Put(l0, h0, t + 0 * Filters, add); Put(l1, h1, t + 1 * Filters, add); Put(l2, h2, t + 2 * Filters, add);
        Put(l3, h3, t + 3 * Filters, add); Put(l4, h4, t + 4 * Filters, add); Put(l5, h5, t + 5 * Filters, add);
        Put(l6, h6, t + 6 * Filters, add); Put(l7, h7, t + 7 * Filters, add); Put(l8, h8, t + 8 * Filters, add);
        Put(l9, h9, t + 9 * Filters, add); Put(l10, h10, t + 10 * Filters, add); Put(l11, h11, t + 11 * Filters, add);
        Put(l12, h12, t + 12 * Filters, add); Put(l13, h13, t + 13 * Filters, add);
    }

    /// <summary>A tile row's two vectors of 16 filters stored at <paramref name="t"/>, added to what is there when <paramref name="add"/> (a later depth block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Put(Vector512<float> lo, Vector512<float> hi, float* t, bool add)
    {
        if (add)
        {
            lo += Vector512.Load(t);
            hi += Vector512.Load(t + 16);
        }
        lo.Store(t);
        hi.Store(t + 16);
    }
}
