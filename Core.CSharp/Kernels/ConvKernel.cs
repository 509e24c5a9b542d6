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
public static class ConvKernel
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
    /// The gradients of a convolution given the upstream gradient <paramref name="dy"/>: dW = dY x cols^T summed over the
    /// batch, db the sums of dY, and dX = col2im(W^T x dY).
    /// </summary>
    /// <param name="x">The forward input.</param>
    /// <param name="w">The weight.</param>
    /// <param name="hasBias">Whether the convolution has a bias (then its gradient is returned).</param>
    /// <param name="dy">dL/dy, the forward output's shape.</param>
    /// <param name="g">The window and the number of groups.</param>
    /// <exception cref="ShapeException">The shapes do not fit each other or the window.</exception>
    public static ConvGradients Backward(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g)
    {
        var (dx, dw, db) = Gradients(x, w, hasBias, dy, g, inputGradient: true);
        return new ConvGradients(dx!, dw, db);
    }

    /// <summary>
    /// The weight and bias gradients alone, as <see cref="Backward"/> computes them (bit for bit), without the input gradient:
    /// for a first layer, whose input (the data) needs none. Skips the GEMM W^T x dY and the col2im, about a third of the
    /// backward pass.
    /// </summary>
    /// <param name="x">The forward input.</param>
    /// <param name="w">The weight.</param>
    /// <param name="hasBias">Whether the convolution has a bias (then its gradient is returned).</param>
    /// <param name="dy">dL/dy, the forward output's shape.</param>
    /// <param name="g">The window and the number of groups.</param>
    /// <exception cref="ShapeException">The shapes do not fit each other or the window.</exception>
    public static (Tensor Weight, Tensor? Bias) ParameterGradients(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g)
    {
        var (_, dw, db) = Gradients(x, w, hasBias, dy, g, inputGradient: false);
        return (dw, db);
    }

    /// <summary>
    /// <see cref="Backward"/> and <see cref="ParameterGradients"/> on a chosen micro-kernel (to test each path); with
    /// <paramref name="reluOutput"/> (the output of the forward pass with <c>relu: true</c>), those of the convolution and
    /// the ReLU after it: dY masked as <see cref="Activations.ReluBackward"/> masks it, bit for bit, a few images at a time
    /// just before the kernels read them (see <see cref="FusedGradients{TK}"/>), instead of in a pass of its own.
    /// </summary>
    internal static (Tensor? Input, Tensor Weight, Tensor? Bias) Gradients(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g, bool inputGradient,
        GemmInstructionSet isa = GemmInstructionSet.Auto, Tensor? reluOutput = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        var s = Check(x.Shape, w, null, g);
        ArgumentNullException.ThrowIfNull(dy);
        var expected = OutputShape(s, x.Shape);
        if (dy.Shape != expected)
            throw new ShapeException($"Conv{g.Rank}d backward: expected an upstream gradient of shape {expected} for input {x.Shape}; found {dy.Shape}.");
        if (reluOutput is not null && reluOutput.Shape != expected)
            throw new ShapeException($"Conv{g.Rank}d backward: expected a ReLU output of shape {expected} for input {x.Shape}; found {reluOutput.Shape}.");
        isa = Gemm.Resolve(isa);
        bool fusedBackward = Fused(s) && s.N >= BatchParallel.Chunks(int.MaxValue) && !DepthwiseConv2d.Covers(g, s.C, s.F);
        if (reluOutput is not null && !fusedBackward)
        {
            dy = Activations.ReluBackward(reluOutput, dy);
            reluOutput = null;
        }
        if (DepthwiseConv2d.Covers(g, s.C, s.F))
        {
            var (ddx, ddw, ddb) = DepthwiseConv2d.Backward(x, w, hasBias, dy, g, s.Plan.Output, inputGradient);
            return (ddx is null ? null : Tensor.Own(ddx, x.Shape), Tensor.Own(ddw, w.Shape), ddb is null ? null : Tensor.Own(ddb, new Shape(s.F)));
        }
        // Image by image needs every worker busy with images: a batch smaller than the workers keeps the GEMM's own split.
        if (fusedBackward)
            return isa switch
            {
                GemmInstructionSet.Vector512 => FusedGradients<GemmKernel512>(x, w, hasBias, dy, s, inputGradient, reluOutput),
                GemmInstructionSet.Vector256 => FusedGradients<GemmKernel256>(x, w, hasBias, dy, s, inputGradient, reluOutput),
                _ => FusedGradients<GemmKernelScalar>(x, w, hasBias, dy, s, inputGradient, reluOutput),
            };
        int outSize = s.Plan.OutSize, inSize = s.C * s.Plan.InSize, wSize = s.F * s.RowsG;
        var dx = inputGradient ? TensorArena.Uninitialized<float>(x.Size) : null;
        var gemm = GemmFor(s.N) with { InstructionSet = isa };
        using var partials = new ChunkPartials(BatchParallel.Chunks(s.N), wSize, hasBias ? s.F : 0);
        // dW as the fused path computes it where that path would take the direct kernel, so a batch's bits do not depend
        // on which of the two paths the worker count picks.
        bool layout = ConvColumns.Covers(s.Plan);
        var columns = layout ? new ConvColumns(s.N, s.C, s.Groups, s.Plan) : default;
        var (direct, directDx, lanes) = layout ? DirectGradients(columns, s.F, dx is not null, isa) : (false, false, 0);
        BatchParallel.For(s.N, (chunk, start, end) =>
        {
            // Per image: dW += dY_i x cols_i^T, then dcols = W^T x dY_i folded into dx_i while it is in the cache, except
            // what the direct kernels compute for the whole chunk first. (Blocks of several small images, as the
            // forward pass uses, measured no faster here: these products are already long along k or n.)
            var (dwp, dbp) = partials.Start(chunk);
            if (direct) DirectWeights(columns, x, dy, s.F, dwp, start, end, lanes);
            if (directDx) DirectInput(columns, dy, w, s.F, dx!, start, end, lanes);
            var cols = s.Direct || direct ? null : Workspace.Rent(s.Rows * outSize);
            var dcols = s.Direct || dx is null || directDx ? null : Workspace.Rent(s.Rows * outSize);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var colSpan = direct ? default : Columns(x, i, s, cols);
                    var dyi = dy.Span.Slice(i * s.F * outSize, s.F * outSize);
                    for (int gi = 0; gi < s.Groups; gi++)
                    {
                        var dyg = dyi.Slice(gi * s.FG * outSize, s.FG * outSize);
                        if (!direct)
                            Gemm.Multiply(false, true, s.FG, s.RowsG, outSize, dyg, colSpan.Slice(gi * s.RowsG * outSize, s.RowsG * outSize),
                                dwp.AsSpan(gi * s.FG * s.RowsG, s.FG * s.RowsG), true, gemm);
                        if (dx is not null && !directDx)
                        {
                            // Pointwise: dcols is dx_i itself, written whole by the product.
                            var target = dcols is null ? dx.AsSpan(i * inSize, inSize) : dcols.AsSpan();
                            Gemm.Multiply(true, false, s.RowsG, outSize, s.FG, w.Span.Slice(gi * s.FG * s.RowsG, s.FG * s.RowsG), dyg,
                                target.Slice(gi * s.RowsG * outSize, s.RowsG * outSize), false, gemm);
                        }
                    }
                    if (dcols is not null)
                    {
                        var dxi = dx.AsSpan(i * inSize, inSize);
                        dxi.Clear();
                        ImToCol.FoldAdd(dcols, s.C, s.Plan, dxi);
                    }
                    if (hasBias)
                        for (int o = 0; o < s.F; o++) dbp[o] += TensorPrimitives.Sum(dyi.Slice(o * outSize, outSize));
                }
            }
            finally
            {
                if (cols is not null) Workspace.Return(cols);
                if (dcols is not null) Workspace.Return(dcols);
            }
        });
        var (dw, db) = partials.Sum();
        return (dx is null ? null : Tensor.Own(dx, x.Shape), Tensor.Own(dw, w.Shape), db is null ? null : Tensor.Own(db, new Shape(s.F)));
    }

    /// <summary>
    /// Which gradients the direct kernels compute (<see cref="DirectWeightGradient"/>, <see cref="DirectInputGradient"/>) beside
    /// the micro-kernel <paramref name="isa"/>, and on vectors of how many lanes (<see cref="DirectConv.Lanes"/>: none beside
    /// the scalar one, which keeps the GEMM's dW and its bits).
    /// </summary>
    private static (bool Weights, bool Input, int Lanes) DirectGradients(in ConvColumns l, int f, bool inputGradient, GemmInstructionSet isa)
    {
        int lanes = DirectConv.Lanes(isa);
        return (DirectWeightGradient.Covers(l, f, lanes), inputGradient && DirectInputGradient.Covers(l, f, lanes), lanes);
    }

    private static unsafe void DirectWeights(in ConvColumns l, Tensor x, Tensor dy, int f, float[] dw, int start, int end, int lanes)
    {
        fixed (float* px = x.Span, pdy = dy.Span, pdw = dw)
            DirectWeightGradient.Accumulate(l, px, pdy, f, pdw, start, end, lanes);
    }

    private static unsafe void DirectInput(in ConvColumns l, Tensor dy, Tensor w, int f, float[] dx, int start, int end, int lanes)
    {
        fixed (float* pdy = dy.Span, pw = w.Span, pdx = dx)
            DirectInputGradient.Compute(l, pdy, pw, f, pdx, start, end, lanes);
    }

    /// <summary>
    /// Whether the products run on <see cref="ConvGemm{TK}"/>, the column matrix packed straight from the image: windows of
    /// one or two axes, with more than <see cref="GemmParallel.SmallRows"/> filters per group (fewer are the GEMM's small
    /// products, which read the column matrix in place and sum dW in another order).
    /// </summary>
    internal static bool Fused(in Setup s) => ConvColumns.Covers(s.Plan) && s.FG > GemmParallel.SmallRows;

    /// <summary>
    /// Bytes of dY masked by a ReLU's pullback at a time (<see cref="FusedGradients{TK}"/>): a few images, which the kernels
    /// then read from L2 (2 MB a core on the Intel Xeon, 1 MB on AMD Zen 5) with their inputs. Tests set it low, so that a
    /// chunk's images come in several groups.
    /// </summary>
    internal static int MaskedBytes { get; set; } = 256 * 1024;

    /// <remarks>
    /// With <paramref name="reluOutput"/>, each chunk masks dY a group of images at a time (<see cref="MaskedBytes"/>) into an
    /// arena array and runs the kernels on that group before masking the next: a pass of its own (read y and dY, write the
    /// masked copy, which the kernels then read back from L3 or memory) cost 2 % of keras-cifar's training step. The kernels
    /// see the images of a chunk in order, the weight gradient's lane sums carried from group to group, so every sum is
    /// that of the unmasked path on <see cref="Activations.ReluBackward"/>'s output.
    /// </remarks>
    private static unsafe (Tensor? Input, Tensor Weight, Tensor? Bias) FusedGradients<TK>(Tensor x, Tensor w, bool hasBias, Tensor dy, Setup s,
        bool inputGradient, Tensor? reluOutput) where TK : struct, IGemmKernel
    {
        var l = new ConvColumns(s.N, s.C, s.Groups, s.Plan);
        int outSize = s.Plan.OutSize, wSize = s.F * s.RowsG;
        var dx = inputGradient ? TensorArena.Uninitialized<float>(x.Size) : null;
        var isa = typeof(TK) == typeof(GemmKernel512) ? GemmInstructionSet.Vector512
            : typeof(TK) == typeof(GemmKernel256) ? GemmInstructionSet.Vector256 : GemmInstructionSet.Scalar;
        var (direct, directDx, lanes) = DirectGradients(l, s.F, inputGradient, isa);
        var packed = inputGradient && !directDx ? Workspace.Rent(ConvGemm<TK>.PackedWeightsLength(s.Groups, s.FG, s.RowsG, transposed: true)) : null;
        using var partials = new ChunkPartials(BatchParallel.Chunks(s.N), wSize, hasBias ? s.F : 0);
        try
        {
            if (packed is not null)
                fixed (float* pw = w.Span, pp = packed) ConvGemm<TK>.PackWeights(pw, s.Groups, s.FG, s.RowsG, transposed: true, pp);
            int imageSize = s.F * outSize;
            var masked = reluOutput is null ? null : TensorArena.Uninitialized<float>(dy.Size);
            int group = masked is null ? s.N : Math.Max(1, MaskedBytes / (4 * imageSize));
            BatchParallel.For(s.N, (chunk, start, end) =>
            {
                var (dwp, dbp) = partials.Start(chunk);
                for (int g0 = start; g0 < end; g0 += group)
                {
                    int g1 = Math.Min(end, g0 + group);
                    if (masked is not null)
                        Activations.ReluMask(reluOutput!.Span[(g0 * imageSize)..(g1 * imageSize)], dy.Span[(g0 * imageSize)..(g1 * imageSize)],
                            masked.AsSpan((g0 * imageSize)..(g1 * imageSize)));
                    var grad = masked is null ? dy.Span : masked;
                    fixed (float* px = x.Span, pdy = grad, pw = w.Span, pp = packed, pdw = dwp, pdx = dx)
                    {
                        if (direct) DirectWeightGradient.Accumulate(l, px, pdy, s.F, pdw, g0, g1, lanes, begin: g0 == start, end: g1 == end);
                        if (directDx) DirectInputGradient.Compute(l, pdy, pw, s.F, pdx, g0, g1, lanes);
                        if (!direct || (pdx != null && !directDx))
                            ConvGemm<TK>.Backward(l, s.Plan, px, pdy, s.F, pp, direct ? null : pdw, directDx ? null : pdx, g0, g1);
                    }
                    if (hasBias)
                        for (int i = g0; i < g1; i++)
                        {
                            var dyi = grad.Slice(i * imageSize, imageSize);
                            for (int o = 0; o < s.F; o++) dbp[o] += TensorPrimitives.Sum(dyi.Slice(o * outSize, outSize));
                        }
                }
            });
        }
        finally
        {
            if (packed is not null) Workspace.Return(packed);
        }
        var (dw, db) = partials.Sum();
        return (dx is null ? null : Tensor.Own(dx, x.Shape), Tensor.Own(dw, w.Shape), db is null ? null : Tensor.Own(db, new Shape(s.F)));
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
