using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Cnn.Core.Kernels;

/// <summary>
/// The convolution's products on the GEMM's micro-kernels with the column matrix packed straight from the image
/// (<see cref="ColumnPacker"/>) and the weights packed once per call: forward, y = W x cols + b written into the output
/// directly; backward per block of output positions, dW += dY x cols^T and dcols = W^T x dY folded into dx. Every
/// element is summed as <see cref="Gemm"/> sums it (depth blocks of <see cref="GemmDepth"/>, each one FMA chain in k
/// order, added in order), so the results are those of im2col followed by <see cref="Gemm.Multiply(bool, bool, int, int, int, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, bool)"/>.
/// </summary>
internal static unsafe class ConvGemm<TK> where TK : struct, IGemmKernel
{
    /// <summary>Floats past a staged image (or unit of images) in the staging buffers: a window may read 32 floats from any column.</summary>
    private const int StageSlack = 32;

    /// <summary>
    /// Strips of at most this many column panels run each tile of weights over all the panels before the next tile (see
    /// <see cref="Forward"/>); wider ones run each panel over all the tiles, the GEMM's order (the panel stays in L1).
    /// </summary>
    private const int FewPanels = 4;

    /// <summary>Floats of packed column panels per strip: a KB x strip block that stays in L2 next to the packed weights.</summary>
    private const int StripFloats = 64 * 1024;

    /// <summary>
    /// Packs the weights of every group once: A = W_g (FG x RowsG) for the forward product, or A = W_g^T (RowsG x FG) for
    /// the backward one, as the GEMM's MR-tall panels of each depth block. Panel ir of block pc of group g starts at
    /// <c>g * MRound * K + pc * MRound + ir * kb</c>, MRound the rows rounded up to MR.
    /// </summary>
    public static void PackWeights(float* w, int groups, int fg, int rowsG, bool transposed, float* dst)
    {
        int m = transposed ? rowsG : fg, k = transposed ? fg : rowsG, mRound = RoundUp(m, TK.MR), kc = GemmDepth.Block(k);
        for (int g = 0; g < groups; g++)
        {
            float* wg = w + (nint)g * fg * rowsG;
            for (int pc = 0; pc < k; pc += kc)
            {
                int kb = Math.Min(kc, k - pc);
                float* block = dst + (nint)g * mRound * k + (nint)pc * mRound;
                for (int ir = 0; ir < m; ir += TK.MR)
                {
                    int rows = Math.Min(TK.MR, m - ir);
                    if (transposed) GemmDriver<TK>.PackRows(wg + (nint)pc * rowsG + ir, rowsG, kb, rows, TK.MR, block + (nint)ir * kb);
                    else GemmDriver<TK>.PackTransposed(wg + (nint)ir * rowsG + pc, rowsG, rows, kb, TK.MR, block + (nint)ir * kb);
                }
            }
        }
    }

    /// <summary>Floats <see cref="PackWeights"/> writes.</summary>
    public static int PackedWeightsLength(int groups, int fg, int rowsG, bool transposed) =>
        groups * RoundUp(transposed ? rowsG : fg, TK.MR) * (transposed ? fg : rowsG);

    /// <summary>
    /// Images <c>[i0, i1)</c>, output positions <c>[c0, c1)</c> of each, filters <c>[r0, r1)</c> of every group (all of
    /// them when <paramref name="r1"/> is negative; otherwise <paramref name="r0"/> a multiple of the micro-kernel's MR), of
    /// the forward product into y (<c>[N, F, OutSize]</c>), plus the bias. Runs on the calling thread. Columns go in units:
    /// several whole small images side by side (one strip, so the product is wide enough for the micro-kernel whatever the
    /// image size), or one large image in strips; the column groups of a unit are described once and reused for every unit
    /// of the same shape. Each output element is the same sum whatever the ranges, so splitting the work by images, columns
    /// or filters gives the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(in ConvColumns l, float* x, float* packedW, float* bias, int f, float* y, int i0, int i1, int c0, int c1, bool relu = false,
        int r0 = 0, int r1 = -1)
    {
        int nr = TK.NR, mr = TK.MR, fg = f / l.Groups, fRound = RoundUp(fg, mr), k = l.RowsG, kc = GemmDepth.Block(k);
        int outSize = l.OutSize, width = c1 - c0;
        if (r1 < 0) r1 = fg;
        int strip = Math.Clamp(StripFloats / kc / nr * nr, 4 * nr, 32 * nr);
        // Small images: as many whole images per unit as fit in a strip.
        int perUnit = width == outSize ? Math.Max(1, strip / outSize) : 1;
        int stripGroups = RoundUp(strip, 16) / 16;
        int maxStrips = (Math.Max(width, perUnit * outSize) + strip - 1) / strip;

        var buffers = ConvBuffers.Current;
        float* pb = buffers.Panels(kc * RoundUp(strip, 16));
        float* scratch = buffers.Scratch(strip / nr * fRound * nr);
        int* desc = buffers.Descriptors(maxStrips * stripGroups * ColumnPacker.DescriptorInts);
        int* rowOffset = buffers.RowOffsets(l.Rows);
        for (int r = 0; r < l.Rows; r++) rowOffset[r] = l.RowOffset(r);
        float* stage = l.Staged ? buffers.Stage(perUnit * l.ImageStride + StageSlack) : null;
        int described = 0;

        for (int b = i0; b < i1; b += perUnit)
        {
            int images = Math.Min(perUnit, i1 - b);
            int u0 = images > 1 ? 0 : c0, u1 = images > 1 ? images * outSize : c1;
            if (images != described)
            {
                for (int s = u0, t = 0; s < u1; s += strip, t++)
                {
                    int nc = Math.Min(strip, u1 - s);
                    ColumnPacker.Describe(l, s, nc, RoundUp(RoundUp(nc, nr), 16) / 16, desc + t * stripGroups * ColumnPacker.DescriptorInts,
                        (long)images * l.ImageStride + (l.Staged ? StageSlack : 0));
                }
                described = images;
            }
            float* source;
            if (l.Staged)
            {
                for (int j = 0; j < images; j++) l.Stage(x + (nint)(b + j) * l.C * l.InH * l.InW, stage + (nint)j * l.ImageStride);
                source = stage;
            }
            else source = x + (nint)b * l.ImageStride;

            for (int s = u0, t = 0; s < u1; s += strip, t++)
            {
                int nc = Math.Min(strip, u1 - s), panels = (nc + nr - 1) / nr, groups = RoundUp(panels * nr, 16) / 16;
                int* sd = desc + t * stripGroups * ColumnPacker.DescriptorInts;
                for (int g = 0; g < l.Groups; g++)
                {
                    float* wg = packedW + (nint)g * fRound * k;
                    for (int pc = 0; pc < k; pc += kc)
                    {
                        int kb = Math.Min(kc, k - pc);
                        ColumnPacker.Pack(source, sd, groups, rowOffset + g * k + pc, kb, nr, pb);
                        float* a = wg + (nint)pc * fRound;
                        // Few panels: each tile of weights is read once (from L3 when the weights exceed L2) and used
                        // for every panel while it is in L1, instead of streaming all the weights at the full rate for
                        // the first panel and rereading them from L2 for the others.
                        int rowStep = panels <= FewPanels ? mr : r1 - r0;
                        for (int ir0 = r0; ir0 < r1; ir0 += rowStep)
                            for (int p = 0; p < panels; p++)
                            {
                                int u = s + p * nr, cols = Math.Min(nr, nc - p * nr);
                                int image = b + u / outSize, q = u % outSize;
                                float* c;
                                nint ldc;
                                int tileCols = cols;
                                if (!Aside(q, cols, outSize))
                                {
                                    c = y + ((nint)image * f + g * fg) * outSize + q;
                                    ldc = outSize;
                                }
                                else
                                {
                                    // Computed aside and copied out after the last depth block (see Aside); a ragged panel
                                    // at the micro-kernel's width (the packed panel is whole), which needs no copy per tile.
                                    c = scratch + (nint)p * fRound * nr;
                                    ldc = nr;
                                    if (cols < nr) tileCols = cols <= nr / 2 ? nr / 2 : nr;
                                }
                                float* bp = pb + (nint)p * nr * kb;
                                for (int ir = ir0, ir1 = Math.Min(r1, ir0 + rowStep); ir < ir1; ir += mr)
                                    TK.Tile(kb, a + (nint)ir * kb, bp, c + ir * ldc, ldc, Math.Min(mr, r1 - ir), tileCols, pc > 0);
                            }
                    }
                    Finish(l, bias, relu, f, g, fg, fRound, y, scratch, b, s, nc, panels, r0, r1);
                }
            }
        }
    }

    /// <summary>
    /// Whether a panel of <paramref name="cols"/> columns starting at output position <paramref name="q"/> is computed in
    /// the scratch and copied out at the end: when it straddles images, and when it is ragged (narrower than the
    /// micro-kernel), which the micro-kernel would otherwise run through a scratch tile of its own, copying C in and out
    /// for every tile and depth block (a 7x7 image's 49 columns are a whole panel and a 17-column one).
    /// </summary>
    private static bool Aside(int q, int cols, int outSize) => q + cols > outSize || cols < TK.NR;

    /// <summary>
    /// Adds the bias to a strip's columns of group g (unit columns <c>[s, s + nc)</c> of the unit starting at image
    /// <paramref name="b"/>, filters <c>[r0, r1)</c> of the group) and copies the panels computed aside (<see cref="Aside"/>) out of the scratch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Finish(in ConvColumns l, float* bias, bool relu, int f, int g, int fg, int fRound, float* y, float* scratch, int b, int s, int nc,
        int panels, int r0, int r1)
    {
        int nr = TK.NR, outSize = l.OutSize;
        // The rows of panels computed aside are written by the scatter below, after this pass: they get bias and ReLU there.
        if (bias is not null || relu)
            for (int u = s; u < s + nc;)
            {
                int image = b + u / outSize, q = u % outSize, len = Math.Min(outSize - q, s + nc - u);
                for (int o = r0; o < r1; o++)
                {
                    var row = new Span<float>(y + ((nint)image * f + g * fg + o) * outSize + q, len);
                    if (bias is not null) ConvKernel.AddBias(row, bias[g * fg + o], row);
                    if (relu) TensorPrimitives.Max(row, 0f, row);
                }
                u += len;
            }
        for (int p = 0; p < panels; p++)
        {
            int u = s + p * nr, cols = Math.Min(nr, nc - p * nr), image = b + u / outSize, q = u % outSize;
            if (!Aside(q, cols, outSize)) continue;
            float* panel = scratch + (nint)p * fRound * nr;
            for (int t = 0; t < cols;)
            {
                int len = Math.Min(outSize - q, cols - t);
                for (int o = r0; o < r1; o++)
                {
                    var src = new ReadOnlySpan<float>(panel + (nint)o * nr + t, len);
                    var dst = new Span<float>(y + ((nint)image * f + g * fg + o) * outSize + q, len);
                    if (bias is null) src.CopyTo(dst);
                    else ConvKernel.AddBias(src, bias[g * fg + o], dst);
                    if (relu) TensorPrimitives.Max(dst, 0f, dst);
                }
                t += len;
                image++;
                q = 0;
            }
        }
    }

    /// <summary>
    /// Floats of one block of dcols, in whole output rows: measured on N32 C64 56x56 K64 3x3 (one thread), 80 K floats
    /// (2 rows of 54) 0.90x the whole-image fold, 160 K 0.95x, 320 K 0.97x: each block's fold pays a fixed cost per
    /// column-matrix row, so larger blocks fold faster than the cache they lose costs.
    /// </summary>
    private const int DcolsFloats = 320 * 1024;

    /// <summary>
    /// The gradients of images <c>[i0, i1)</c>: dW += dY_i x cols_i^T into <paramref name="dw"/> block by block of output
    /// positions (the depth blocks of that product, so its sums are the GEMM's), each block's columns packed from the image a
    /// panel of rows at a time; and, when <paramref name="dx"/> is not null, dx_i = col2im(W^T x dY_i) in blocks of
    /// positions sized to stay in L2, each block's dcols folded into dx right after the product that wrote it. A pointwise
    /// window reads the image as its own column matrix and writes dcols straight into dx. With <paramref name="dw"/> null
    /// only dx is computed (<see cref="DirectWeightGradient"/> computes dW).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward(in ConvColumns l, in WindowPlan plan, float* x, float* dy, int f, float* packedWT, float* dw,
        float* dx, int i0, int i1)
    {
        int nr = TK.NR, mr = TK.MR, fg = f / l.Groups, fRound = RoundUp(fg, mr), rowsG = l.RowsG, rRound = RoundUp(rowsG, mr);
        int outSize = l.OutSize, kc = GemmDepth.Block(outSize), ld = RoundUp(kc, 16), kcF = GemmDepth.Block(fg);
        bool pointwise = l.Taps == 1 && !l.Staged;
        // dx blocks: as many whole output rows as fit DcolsFloats (a fold of whole rows has no ragged ends), else whole
        // panels; the whole image when pointwise (dcols is dx itself).
        int lines = DcolsFloats / l.Rows / l.OutW;
        int xb = pointwise ? outSize
            : lines >= 1 ? Math.Min(outSize, lines * l.OutW)
            : Math.Min(outSize, Math.Max(nr, DcolsFloats / l.Rows / nr * nr));
        int groups16 = ld / 16, xGroups = RoundUp(xb, 16) / 16;

        var buffers = ConvBuffers.Current;
        // One panel of rows of a block's columns (row-major, ld wide), transposed into the dW product's packed B.
        float* rows = buffers.PanelRows(nr * ld);
        float* dcols = pointwise || dx is null ? null : buffers.Columns(l.Rows * xb);
        float* pa = buffers.Scratch(fRound * kc);
        float* pb = buffers.Panels(Math.Max(kc, kcF) * nr);
        int blocks = (outSize + kc - 1) / kc, blockInts = groups16 * ColumnPacker.DescriptorInts;
        int xBlocks = (outSize + xb - 1) / xb, xBlockInts = xGroups * ColumnPacker.DescriptorInts;
        // Strided along the width, dcols is folded into a gradient in the staged layout (whole vectors, no strided
        // scatter), unstaged into dx at the end of the image; otherwise straight into dx.
        bool foldStaged = l.Staged && l.SW > 1 && dx is not null;
        // Every block's column groups, relative to the image: the same for every image.
        int* desc = buffers.Descriptors(blocks * blockInts + xBlocks * xBlockInts);
        int* xDesc = desc + blocks * blockInts;
        if (!pointwise)
            for (int q0 = 0, t = 0; q0 < outSize; q0 += kc, t++)
                ColumnPacker.Describe(l, q0, Math.Min(kc, outSize - q0), groups16, desc + t * blockInts, l.ImageStride + (l.Staged ? StageSlack : 0));
        if (foldStaged)
            for (int q0 = 0, t = 0; q0 < outSize; q0 += xb, t++)
                ColumnPacker.Describe(l, q0, Math.Min(xb, outSize - q0), xGroups, xDesc + t * xBlockInts, l.ImageStride + StageSlack);
        int* rowOffset = buffers.RowOffsets(l.Rows);
        for (int r = 0; r < l.Rows; r++) rowOffset[r] = l.RowOffset(r);
        float* stage = l.Staged ? buffers.Stage(l.ImageStride + StageSlack) : null;
        float* stagedGrad = foldStaged ? buffers.StagedGradient(l.ImageStride + StageSlack) : null;
        int imageSize = l.C * l.InH * l.InW;

        for (int i = i0; i < i1; i++)
        {
            float* source = x + (nint)i * imageSize;
            if (l.Staged && dw is not null)
            {
                l.Stage(source, stage);
                source = stage;
            }
            float* dyi = dy + (nint)i * f * outSize;
            for (int q0 = 0, t = 0; q0 < outSize && dw is not null; q0 += kc, t++)
            {
                int kb = Math.Min(kc, outSize - q0);
                for (int g = 0; g < l.Groups; g++)
                {
                    // dW_g (FG x RowsG) += dY_g[:, q0 : q0 + kb] (FG x kb) x cols^T (kb x RowsG).
                    float* dyg = dyi + (nint)g * fg * outSize + q0;
                    for (int ir = 0; ir < fg; ir += mr)
                        GemmDriver<TK>.PackTransposed(dyg + (nint)ir * outSize, outSize, Math.Min(mr, fg - ir), kb, mr, pa + (nint)ir * kb);
                    float* dwg = dw + (nint)g * fg * rowsG;
                    for (int jr = 0; jr < rowsG; jr += nr)
                    {
                        int n = Math.Min(nr, rowsG - jr);
                        float* panelRows = source + (nint)(g * rowsG + jr) * outSize + q0;
                        nint panelLd = outSize;
                        if (!pointwise)
                        {
                            ColumnPacker.Pack(source, desc + t * blockInts, groups16, rowOffset + g * rowsG + jr, n, ld, rows);
                            panelRows = rows;
                            panelLd = ld;
                        }
                        GemmDriver<TK>.PackTransposed(panelRows, panelLd, n, kb, nr, pb);
                        for (int ir = 0; ir < fg; ir += mr)
                            TK.Tile(kb, pa + (nint)ir * kb, pb, dwg + (nint)ir * rowsG + jr, rowsG, Math.Min(mr, fg - ir), n, true);
                    }
                }
            }
            if (dx is null) continue;
            float* dxi = dx + (nint)i * imageSize;
            // Where dcols is folded: dx itself, or the staged gradient.
            float* grad = foldStaged ? stagedGrad : dxi;
            if (!pointwise) new Span<float>(grad, foldStaged ? l.ImageStride : imageSize).Clear();
            for (int q0 = 0, t = 0; q0 < outSize; q0 += xb, t++)
            {
                int kb = Math.Min(xb, outSize - q0);
                // dcols (Rows x kb) = W^T x dY[:, q0 : q0 + kb], group by group (pointwise: into dx_i itself).
                float* c0 = pointwise ? dxi + q0 : dcols;
                nint ldc = pointwise ? outSize : kb;
                for (int g = 0; g < l.Groups; g++)
                {
                    float* dyg = dyi + (nint)g * fg * outSize + q0;
                    float* wg = packedWT + (nint)g * rRound * fg;
                    float* cg = c0 + g * rowsG * ldc;
                    for (int jr = 0; jr < kb; jr += nr)
                    {
                        int n = Math.Min(nr, kb - jr);
                        for (int pc = 0; pc < fg; pc += kcF)
                        {
                            int kbF = Math.Min(kcF, fg - pc);
                            GemmDriver<TK>.PackRows(dyg + (nint)pc * outSize + jr, outSize, kbF, n, nr, pb);
                            float* a = wg + (nint)pc * rRound;
                            for (int ir = 0; ir < rowsG; ir += mr)
                                TK.Tile(kbF, a + (nint)ir * kbF, pb, cg + ir * ldc + jr, ldc, Math.Min(mr, rowsG - ir), n, pc > 0);
                        }
                    }
                }
                if (foldStaged) ColumnPacker.FoldAdd(dcols, kb, xDesc + t * xBlockInts, xGroups, rowOffset, l.Rows, l.Taps, grad);
                else if (!pointwise)
                    ImToCol.FoldAddRange(new ReadOnlySpan<float>(dcols, l.Rows * kb), kb, 0, l.C, plan, q0, q0 + kb, new Span<float>(dxi, imageSize));
            }
            if (foldStaged) l.Unstage(stagedGrad, dxi);
        }
    }

    private static int RoundUp(int x, int y) => (x + y - 1) / y * y;
}

/// <summary>
/// The calling thread's workspaces for <see cref="ConvGemm{TK}"/>: packed column panels, a scratch block, group
/// descriptors, row offsets and staged images. Thread-static, pinned and reused like <see cref="GemmPackBuffers"/>, so
/// the steady state allocates nothing; 64-byte aligned so packed panel rows start on cache lines.
/// </summary>
internal sealed unsafe class ConvBuffers
{
    [ThreadStatic] private static ConvBuffers? t_current;

    private float[] _panels = [], _scratch = [], _stage = [], _panelRows = [], _columns = [], _grad = [], _desc = [], _rows = [], _sums = [];
    private float* _panelsPtr, _scratchPtr, _stagePtr, _panelRowsPtr, _columnsPtr, _gradPtr, _descPtr, _rowsPtr, _sumsPtr;

    public static ConvBuffers Current => t_current ??= new ConvBuffers();

    /// <summary>Packed panels: the forward product's B for a strip, or one panel of the backward products' B.</summary>
    public float* Panels(int floats) => Ensure(ref _panels, ref _panelsPtr, floats);

    /// <summary>The forward pass's straddling output panels, or the dW product's packed A (dY).</summary>
    public float* Scratch(int floats) => Ensure(ref _scratch, ref _scratchPtr, floats);

    /// <summary>Staged images.</summary>
    public float* Stage(int floats) => Ensure(ref _stage, ref _stagePtr, floats);

    /// <summary>One panel of rows of the column matrix, row-major, before the dW product transposes it.</summary>
    public float* PanelRows(int floats) => Ensure(ref _panelRows, ref _panelRowsPtr, floats);

    /// <summary>A block of dcols.</summary>
    public float* Columns(int floats) => Ensure(ref _columns, ref _columnsPtr, floats);

    /// <summary>An image's gradient in the staged layout.</summary>
    public float* StagedGradient(int floats) => Ensure(ref _grad, ref _gradPtr, floats);

    /// <summary>Group descriptors (<see cref="ColumnPacker.DescriptorInts"/> ints each).</summary>
    public int* Descriptors(int ints) => (int*)Ensure(ref _desc, ref _descPtr, ints);

    /// <summary>The lane sums of <see cref="DirectWeightGradient"/>.</summary>
    public float* LaneSums(int floats) => Ensure(ref _sums, ref _sumsPtr, floats);

    /// <summary>Each row's offset in the source (<see cref="ConvColumns.RowOffset"/>).</summary>
    public int* RowOffsets(int ints) => (int*)Ensure(ref _rows, ref _rowsPtr, ints);

    /// <summary>Arrays at least this long are large objects (85,000 bytes).</summary>
    private const int LargeFloats = 85_000 / sizeof(float);

    private readonly Dictionary<float[], GCHandle> _handles = new(ReferenceEqualityComparer.Instance);

    /// <remarks>
    /// A large buffer is an ordinary large object pinned by a handle, not an array of the pinned-object heap: living in the
    /// large-object heap next to the kernels' outputs, it makes the collector keep more of the space a freed output leaves
    /// there instead of decommitting it, so fewer pages of the next output are faulted in one by one. Measured one call
    /// after another without an arena (where outputs are fresh arrays): N64 C1 28x28 K30 5x5 forward 1,064 page faults and
    /// 0.72-0.90 ms a call with pinned-heap buffers, 524 and 0.63 ms with these; N64 C3 32x32 K32 3x3 forward+backward
    /// 1,527 and 531 faults. How many remain depends on the heap's layout (im2col's pooled workspaces, large objects too,
    /// left 81 and 524 in the same two loops); with an arena there are none.
    /// </remarks>
    private float* Ensure(ref float[] array, ref float* aligned, int floats)
    {
        if (array.Length < floats + 16)
        {
            if (_handles.Remove(array, out var old)) old.Free();
            if (floats + 16 >= LargeFloats)
            {
                array = GC.AllocateUninitializedArray<float>(floats + 16);
                _handles[array] = GCHandle.Alloc(array, GCHandleType.Pinned);
            }
            else array = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
            nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
            aligned = (float*)((start + 63) & ~(nint)63);
        }
        return aligned;
    }
}
