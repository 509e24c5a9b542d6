using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Cnn.Core.Kernels;

/// <summary>
/// Convolution (cross-correlation) over 1, 2 or 3 spatial axes as GEMM products over the column matrix (im2col), forward
/// and backward: inputs NCL, NCHW or NCDHW, weight <c>[F, C/groups, k1, ..., kr]</c>, bias <c>[F]</c>, with stride,
/// dilation, asymmetric zero padding and channel groups (depthwise when groups equals C). Work is split over the batch
/// (<see cref="BatchParallel"/>); weight and bias gradients are summed per chunk and then in chunk order
/// (<see cref="ChunkPartials"/>), so results are identical run to run.
/// </summary>
/// <remarks>
/// <para><b>1-d and 2-d windows with more than four filters per group</b> (<see cref="ConvGemm{TK}"/>) never write a column
/// matrix: its values are packed straight from the image into the GEMM's B panels (<see cref="ColumnPacker"/>), as ONNX
/// Runtime's MLAS does. Every row of the column matrix reads the same positions of an output row, shifted, so the packer
/// describes each 16 columns once (16 consecutive floats, or a window of 32 floats and a permute when they span output
/// rows narrower than 16, or single floats across images) and then copies whole vectors for every row. Padded or strided
/// inputs are first copied into a padded, stride-phase-split layout (<see cref="ConvColumns"/>) in which every tap again
/// reads consecutive floats. The weights are packed once per call and shared by every image and thread, instead of once
/// per product. Forward, small images go side by side into one strip of columns (the product stays wide enough for the
/// micro-kernel, panels that straddle two images are computed aside and scattered), large ones in strips of about 64 K
/// packed floats, and the micro-tiles write y directly (no output block and copy), the bias added while the strip is in
/// the cache. Backward, per image: dW += dY x cols^T over the GEMM's depth blocks of output positions, each block's column
/// panel packed from the image and transposed; dcols = W^T x dY in blocks of whole output rows (up to 320 K floats), each
/// folded into dx right after the product that wrote it (in the staged layout, whole vectors, when the width is strided).
/// Only when the batch is smaller than the workers does the backward pass keep the path below (the GEMM splits a single
/// image's products between threads).</para>
/// <para>Measured against the im2col-and-GEMM path it replaces (2 threads, AMD Zen 5, outputs recycled by a
/// <see cref="TensorArena"/> as in training): forward 1.74x on N64 C1 28x28 K30 5x5, 1.30x on N64 C32 15x15 K64 3x3,
/// 1.51x on N64 C3 32x32 K32 3x3, 1.22x on N32 C64 56x56 K64 3x3, 1.31x on N64 C32 32x32 K64 3x3 stride 2 pad 1, even on
/// N64 C64 28x28 K128 1x1; forward and backward 1.37x, 1.12x, 1.13x, 1.06x, 1.25x and 1.03x. Where the time went before:
/// im2col was a quarter of the forward product on small images and a third with stride 2 (a strided gather per output
/// row), the output block's copy into y another tenth, and a 56x56 image's 6.7 MB column matrix went to memory and back
/// twice per product.</para>
/// <para><b>Forward, 2-d windows of whole panels of 32 filters</b> that are 1x1, strided, or unpadded with output rows
/// at most 16 wide (<see cref="BlockedForward.Worth"/>) run on the inference plan's blocked kernel instead
/// (<see cref="BlockedForward"/>): each image read where it lies, or copied into a bordered buffer when the window reads
/// padding, and each item of outputs transposed into NCHW while in L1. Same bits (it sums in the GEMM's depth blocks);
/// measured on Zen 3, 1.1-1.5x on such layers and 1.9-2.4x on resnet-mini's 1x1 stride-2 shortcuts.</para>
/// <para><b>2-d depthwise windows</b> (one input channel per group, at most four filters per group) run directly (<see cref="DepthwiseConv2d"/>): no column
/// matrix and no GEMM, whose one-row products per channel the micro-kernel could not fill.</para>
/// <para><b>Otherwise</b> (3-d windows; four filters or fewer per group, whose products read the column matrix in place),
/// small images are unfolded side by side into one block of columns (with the block's output, about half a core's 1 MB L2
/// cache), so one product covers several images. An image that fills a block alone gets a product of its own, written
/// straight into the output. Backward works image by image: dW += dY_i x cols_i^T, and dcols = W^T x dY_i is folded into
/// dx_i right after the product that wrote it. A 1x1, stride-1, unpadded convolution of images with at least
/// <see cref="DirectMinColumns"/> positions uses each image as its own column matrix.</para>
/// <para>Workspaces are pooled (<see cref="Workspace"/>, and the thread's <see cref="ConvBuffers"/>) and outputs allocated
/// uninitialised (every element is written), so the steady state allocates only the returned tensors and a few hundred
/// bytes of per-call objects (the forward pass's <see cref="ConvForward"/>, the backward pass's closures); an inference
/// plan makes its <see cref="ConvForward"/> once per input shape and allocates nothing per call.</para>
/// <para>Results do not depend on the path, the blocking or the thread count: every output element is summed as
/// <see cref="Gemm"/> sums it, over the same k in the same depth blocks and order, and the fused path gives im2col and
/// GEMM's bits for y, dW and db (tested on every micro-kernel). dx is folded in blocks of output rows, so for an image whose
/// dcols takes more than one block (column-matrix rows x output positions over 320 K floats) its sums are added in another
/// order than one fold of the whole image, and their last bits can differ from the other path's.</para>
/// </remarks>
public static partial class ConvKernel
{
    /// <summary>A block's column matrix and GEMM output, in bytes: half a 1 MB L2, leaving room for the GEMM's packed panels.</summary>
    private const int BlockBytes = 512 * 1024;

    /// <summary>Blocks are at least this many columns wide (a few GEMM tiles), however many rows the column matrix has.</summary>
    private const int MinBlockColumns = 128;

    /// <summary>A pointwise image at least this wide is its own column matrix; narrower ones are copied into shared blocks.</summary>
    private const int DirectMinColumns = 256;

    /// <summary>y = conv(x, w) + b.</summary>
    /// <param name="x">Input <c>[N, C, spatial...]</c> with 1 to 3 spatial axes, as many as <paramref name="g"/> has.</param>
    /// <param name="w">Weight <c>[F, C/groups, kernel...]</c>.</param>
    /// <param name="bias">Bias <c>[F]</c>, or null.</param>
    /// <param name="g">The window and the number of groups.</param>
    /// <returns>Output <c>[N, F, output...]</c>, sizes from <see cref="ConvGeometry.OutputSize(IReadOnlyList{int})"/>.</returns>
    /// <exception cref="ShapeException">The shapes do not fit each other or the window.</exception>
    public static Tensor Forward(Tensor x, Tensor w, Tensor? bias, ConvGeometry g) => Forward(x, w, bias, g, GemmInstructionSet.Auto);

    /// <summary><see cref="Forward(Tensor, Tensor, Tensor?, ConvGeometry)"/> on a chosen micro-kernel (to test each path).</summary>
    internal static Tensor Forward(Tensor x, Tensor w, Tensor? bias, ConvGeometry g, GemmInstructionSet isa) =>
        Forward(x, w, bias, g, isa, relu: false, packedWeights: null);

    /// <summary>
    /// The forward pass, then <c>max(y, 0)</c> when <paramref name="relu"/> (on the fused path while each strip of y is in the
    /// cache, the same bits as <see cref="Activations.Relu"/> after it), from weights packed beforehand for <paramref name="isa"/>
    /// (<see cref="PackWeights"/>) when given.
    /// </summary>
    internal static Tensor Forward(Tensor x, Tensor w, Tensor? bias, ConvGeometry g, GemmInstructionSet isa, bool relu, float[]? packedWeights)
    {
        ArgumentNullException.ThrowIfNull(x);
        var call = new ConvForward(x.Shape, w, bias, g, isa, relu, packedWeights);
        var y = TensorArena.Uninitialized<float>(call.OutputShape.Size);
        call.Run(x, y);
        return Tensor.Own(y, call.OutputShape);
    }

    /// <summary>
    /// The weight <paramref name="w"/> (<c>[F, C/groups, kernel...]</c> for <paramref name="groups"/> groups) packed once for
    /// the fused forward pass on <paramref name="isa"/>, or null when that path does not take it (four filters or fewer per
    /// group). The packing depends on the weight's shape and the micro-kernel alone, not on the input's size.
    /// </summary>
    internal static unsafe float[]? PackWeights(Tensor w, int groups, GemmInstructionSet isa)
    {
        int f = w.Shape[0], fg = f / groups, rowsG = w.Size / f;
        if (fg <= GemmParallel.SmallRows) return null;
        return Gemm.Resolve(isa) switch
        {
            GemmInstructionSet.Vector512 => Pack<GemmKernel512>(w, groups, fg, rowsG),
            GemmInstructionSet.Vector256 => Pack<GemmKernel256>(w, groups, fg, rowsG),
            _ => Pack<GemmKernelScalar>(w, groups, fg, rowsG),
        };
    }

    private static unsafe float[] Pack<TK>(Tensor w, int groups, int fg, int rowsG) where TK : struct, IGemmKernel
    {
        var packed = new float[ConvGemm<TK>.PackedWeightsLength(groups, fg, rowsG, transposed: false)];
        fixed (float* pw = w.Span, pp = packed) ConvGemm<TK>.PackWeights(pw, groups, fg, rowsG, transposed: false, pp);
        return packed;
    }

    /// <summary>
    /// The GEMM's threads inside a batch-parallel loop: one when the batch is split (the chunks already use every worker, and
    /// a GEMM waking a third thread on two cores only gets in the way); the default when one chunk runs alone (batch 1), so a
    /// single image's products still use every core.
    /// </summary>
    internal static GemmOptions GemmFor(int batch) => BatchParallel.Chunks(batch) > 1 ? new GemmOptions { Threads = 1 } : default;

    /// <summary>
    /// How many images the forward pass unfolds side by side into one column block: as many as fit in
    /// <see cref="BlockBytes"/> of columns, at most the chunk. One (a product per image) when an image alone fills a block, or
    /// when a pointwise image is wide enough (at least <see cref="DirectMinColumns"/> positions) to be its own column matrix.
    /// </summary>
    internal static int ImagesPerBlock(in Setup s, int chunkImages)
    {
        int outSize = s.Plan.OutSize;
        if (s.Direct && outSize >= DirectMinColumns) return 1;
        long columns = Math.Max(MinBlockColumns, BlockBytes / (4L * (s.Rows + s.F)));
        return (int)Math.Clamp(columns / outSize, 1, chunkImages);
    }

    /// <summary>
    /// <c>dst[i] = src[i] + b</c> (as TensorPrimitives.Add, bit for bit). Optimised from the first call: the library's generic
    /// code runs its slow first tier for the first hundreds of calls, which a short run or a benchmark's warm-up spends there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AddBias(ReadOnlySpan<float> src, float b, Span<float> dst)
    {
        ref float s = ref MemoryMarshal.GetReference(src);
        ref float d = ref MemoryMarshal.GetReference(dst);
        int n = Math.Min(src.Length, dst.Length), i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var bv = Vector512.Create(b);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
                (Vector512.LoadUnsafe(ref s, (nuint)i) + bv).StoreUnsafe(ref d, (nuint)i);
        }
        var bh = Vector256.Create(b);
        for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            (Vector256.LoadUnsafe(ref s, (nuint)i) + bh).StoreUnsafe(ref d, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref d, i) = Unsafe.Add(ref s, i) + b;
    }

    /// <summary>Image i of the batch, <c>C x spatial</c>.</summary>
    internal static ReadOnlySpan<float> Image(ReadOnlySpan<float> x, int i, in Setup s)
    {
        int imageSize = s.C * s.Plan.InSize;
        return x.Slice(i * imageSize, imageSize);
    }

    // Image i's column matrix: the image itself for a pointwise window, else unfolded into cols.
    internal static ReadOnlySpan<float> Columns(Tensor x, int i, in Setup s, float[]? cols)
    {
        var xi = Image(x.Span, i, s);
        if (cols is null) return xi;
        ImToCol.Unfold(xi, s.C, s.Plan, cols);
        return cols.AsSpan(0, s.Rows * s.Plan.OutSize);
    }

    internal static Shape OutputShape(in Setup s, Shape x)
    {
        var dims = x.ToArray();
        dims[1] = s.F;
        for (int a = 0; a < s.Plan.Output.Length; a++) dims[2 + a] = s.Plan.Output[a];
        return new Shape(dims);
    }

    /// <summary>The sizes of one convolution call: channels, filters, groups, column rows, and the window plan.</summary>
    internal readonly record struct Setup(int N, int C, int F, int Groups, int FG, int RowsG, int Rows, bool Direct, WindowPlan Plan);

    internal static Setup Check(Shape x, Tensor w, Tensor? bias, ConvGeometry g)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(g);
        g.Validate("Convolution");
        // Called for every layer of every step: nothing here allocates unless a check fails, but the plan's output sizes.
        string op = g.Rank switch { 1 => "Conv1d", 2 => "Conv2d", _ => "Conv3d" };
        string layout = g.Rank switch { 1 => "NCL", 2 => "NCHW", _ => "NCDHW" };
        if (x.Rank != g.Rank + 2)
            throw new ShapeException($"{op}: expected an {layout} input of rank {g.Rank + 2} for a {g.Rank}-d window; found {x}.");
        int n = x[0], c = x[1], groups = g.Groups;
        if (c % groups != 0)
            throw new ShapeException($"{op}: the input's {c} channels do not split into {groups} groups; input {x}.");
        bool weightFits = w.Shape.Rank == g.Rank + 2 && w.Shape[0] >= 1 && w.Shape[0] % groups == 0 && w.Shape[1] == c / groups;
        for (int a = 0; weightFits && a < g.Rank; a++) weightFits = w.Shape[2 + a] == g.Kernel[a];
        if (!weightFits)
            throw new ShapeException(
                $"{op}: expected a weight [F, {c / groups}, {string.Join(", ", g.Kernel)}] with F a positive multiple of {groups} groups, for input {x}; found {w.Shape}.");
        int f = w.Shape[0];
        if (bias is not null && (bias.Shape.Rank != 1 || bias.Shape[0] != f))
            throw new ShapeException($"{op}: expected a bias [{f}]; found {bias.Shape}.");
        var spatial = new int[g.Rank];
        for (int a = 0; a < spatial.Length; a++) spatial[a] = x[2 + a];
        WindowPlan plan;
        try
        {
            plan = new WindowPlan(spatial, g, op);
        }
        catch (ShapeException)
        {
            // Again, to name the input in the message (built only when it is needed).
            plan = new WindowPlan(spatial, g, $"{op} with input {x}");
        }
        int rowsG = c / groups * plan.Taps;
        return new Setup(n, c, f, groups, f / groups, rowsG, rowsG * groups, g.IsPointwise, plan);
    }
}
