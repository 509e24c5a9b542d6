using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Cnn.Core.Kernels;

/// <summary>
/// Convolution (cross-correlation) over 1, 2 or 3 spatial axes through im2col and GEMM, forward and backward:
/// inputs NCL, NCHW or NCDHW, weight <c>[F, C/groups, k1, ..., kr]</c>, bias <c>[F]</c>, with stride, dilation,
/// asymmetric zero padding and channel groups (depthwise when groups equals C). Work is split over the batch
/// (<see cref="BatchParallel"/>); weight and bias gradients are summed per chunk and then in chunk order
/// (<see cref="ChunkPartials"/>), so results are identical run to run.
/// </summary>
/// <remarks>
/// <para>Forward, small images are unfolded side by side into one block of columns (with the block's output, about half a
/// core's 1 MB L2 cache), so one product covers several images: the weights are packed once per block instead of once per
/// image and the product is wide enough to run at the micro-kernel's speed (measured 1.05-1.2x on 13x13 to 30x30 outputs).
/// An image that fills a block alone gets a product of its own, written straight into the output: splitting a large image
/// into cache-sized tiles of columns measured 10-15% slower (each tile repacks the weights; the GEMM's packing streams a
/// large column matrix well). Backward works image by image:
/// dW += dY_i x cols_i^T, and dcols = W^T x dY_i is folded into dx_i right after the product that wrote it, while it is in
/// the cache (col2im fused with the accumulation). Workspaces come from <see cref="Workspace"/> and outputs are allocated
/// uninitialised (every element is written), so the steady state allocates only the returned tensors.</para>
/// <para>A 1x1, stride-1, unpadded convolution of images with at least <see cref="DirectMinColumns"/> positions uses each
/// image as its own column matrix (no im2col at all).</para>
/// <para>Results do not depend on the blocking: every output element is one GEMM chain over the same k in the same order.</para>
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
    public static Tensor Forward(Tensor x, Tensor w, Tensor? bias, ConvGeometry g)
    {
        var s = Check(x, w, bias, g);
        int outSize = s.Plan.OutSize;
        var y = TensorArena.Uninitialized<float>(s.N * s.F * outSize);
        var gemm = GemmFor(s.N);
        BatchParallel.For(s.N, (_, start, end) =>
        {
            int images = ImagesPerBlock(s, end - start);
            if (images == 1)
            {
                // One image per product: the GEMM writes straight into y (from the image itself when pointwise).
                var cols = s.Direct ? null : Workspace.Rent(s.Rows * outSize);
                try
                {
                    for (int i = start; i < end; i++)
                    {
                        var yi = y.AsSpan(i * s.F * outSize, s.F * outSize);
                        var colSpan = Columns(x, i, s, cols);
                        for (int gi = 0; gi < s.Groups; gi++)
                            Gemm.Multiply(false, false, s.FG, outSize, s.RowsG, w.Span.Slice(gi * s.FG * s.RowsG, s.FG * s.RowsG),
                                colSpan.Slice(gi * s.RowsG * outSize, s.RowsG * outSize), yi.Slice(gi * s.FG * outSize, s.FG * outSize), false, gemm);
                        if (bias is not null)
                            for (int o = 0; o < s.F; o++)
                            {
                                var yo = yi.Slice(o * outSize, outSize);
                                AddBias(yo, bias[o], yo);
                            }
                    }
                }
                finally { if (cols is not null) Workspace.Return(cols); }
                return;
            }
            // Several small images per product: their columns side by side, one GEMM, the result scattered to the images.
            int block = images * outSize;
            var blockCols = Workspace.Rent(s.Rows * block);
            var output = Workspace.Rent(s.F * block);
            try
            {
                for (int first = start; first < end; first += images)
                {
                    int count = Math.Min(images, end - first), width = count * outSize;
                    for (int j = 0; j < count; j++)
                        ImToCol.UnfoldRange(Image(x.Span, first + j, s), s.C, s.Plan, 0, outSize, blockCols, width, j * outSize);
                    for (int gi = 0; gi < s.Groups; gi++)
                        Gemm.Multiply(false, false, s.FG, width, s.RowsG, w.Span.Slice(gi * s.FG * s.RowsG, s.FG * s.RowsG),
                            blockCols.AsSpan(gi * s.RowsG * width, s.RowsG * width), output.AsSpan(gi * s.FG * width, s.FG * width), false, gemm);
                    for (int j = 0; j < count; j++)
                        for (int o = 0; o < s.F; o++)
                        {
                            var src = output.AsSpan(o * width + j * outSize, outSize);
                            var dst = y.AsSpan(((first + j) * s.F + o) * outSize, outSize);
                            if (bias is null) src.CopyTo(dst);
                            else AddBias(src, bias[o], dst);
                        }
                }
            }
            finally
            {
                Workspace.Return(blockCols);
                Workspace.Return(output);
            }
        });
        return Tensor.Own(y, OutputShape(s, x.Shape));
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

    private static (Tensor? Input, Tensor Weight, Tensor? Bias) Gradients(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g, bool inputGradient)
    {
        var s = Check(x, w, null, g);
        ArgumentNullException.ThrowIfNull(dy);
        var expected = OutputShape(s, x.Shape);
        if (dy.Shape != expected)
            throw new ShapeException($"Conv{g.Rank}d backward: expected an upstream gradient of shape {expected} for input {x.Shape}; found {dy.Shape}.");
        int outSize = s.Plan.OutSize, inSize = s.C * s.Plan.InSize, wSize = s.F * s.RowsG;
        var dx = inputGradient ? TensorArena.Uninitialized<float>(x.Size) : null;
        var gemm = GemmFor(s.N);
        using var partials = new ChunkPartials(BatchParallel.Chunks(s.N), wSize, hasBias ? s.F : 0);
        BatchParallel.For(s.N, (chunk, start, end) =>
        {
            // Per image: dW += dY_i x cols_i^T, then dcols = W^T x dY_i folded into dx_i while it is in the cache. (Blocks
            // of several small images, as the forward pass uses, measured no faster here: these products are already
            // long along k or n.)
            var (dwp, dbp) = partials.Start(chunk);
            var cols = s.Direct ? null : Workspace.Rent(s.Rows * outSize);
            var dcols = s.Direct || dx is null ? null : Workspace.Rent(s.Rows * outSize);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var colSpan = Columns(x, i, s, cols);
                    var dyi = dy.Span.Slice(i * s.F * outSize, s.F * outSize);
                    for (int gi = 0; gi < s.Groups; gi++)
                    {
                        var dyg = dyi.Slice(gi * s.FG * outSize, s.FG * outSize);
                        Gemm.Multiply(false, true, s.FG, s.RowsG, outSize, dyg, colSpan.Slice(gi * s.RowsG * outSize, s.RowsG * outSize),
                            dwp.AsSpan(gi * s.FG * s.RowsG, s.FG * s.RowsG), true, gemm);
                        if (dx is not null)
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
    private static int ImagesPerBlock(in Setup s, int chunkImages)
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
    private static ReadOnlySpan<float> Image(ReadOnlySpan<float> x, int i, in Setup s)
    {
        int imageSize = s.C * s.Plan.InSize;
        return x.Slice(i * imageSize, imageSize);
    }

    // Image i's column matrix: the image itself for a pointwise window, else unfolded into cols.
    private static ReadOnlySpan<float> Columns(Tensor x, int i, in Setup s, float[]? cols)
    {
        var xi = Image(x.Span, i, s);
        if (cols is null) return xi;
        ImToCol.Unfold(xi, s.C, s.Plan, cols);
        return cols.AsSpan(0, s.Rows * s.Plan.OutSize);
    }

    private static Shape OutputShape(in Setup s, Shape x)
    {
        var dims = x.ToArray();
        dims[1] = s.F;
        for (int a = 0; a < s.Plan.Output.Length; a++) dims[2 + a] = s.Plan.Output[a];
        return new Shape(dims);
    }

    /// <summary>The sizes of one convolution call: channels, filters, groups, column rows, and the window plan.</summary>
    private readonly record struct Setup(int N, int C, int F, int Groups, int FG, int RowsG, int Rows, bool Direct, WindowPlan Plan);

    private static Setup Check(Tensor x, Tensor w, Tensor? bias, ConvGeometry g)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(g);
        g.Validate("Convolution");
        // Called for every layer of every step: nothing here allocates unless a check fails, but the plan's output sizes.
        string op = g.Rank switch { 1 => "Conv1d", 2 => "Conv2d", _ => "Conv3d" };
        string layout = g.Rank switch { 1 => "NCL", 2 => "NCHW", _ => "NCDHW" };
        if (x.Shape.Rank != g.Rank + 2)
            throw new ShapeException($"{op}: expected an {layout} input of rank {g.Rank + 2} for a {g.Rank}-d window; found {x.Shape}.");
        int n = x.Shape[0], c = x.Shape[1], groups = g.Groups;
        if (c % groups != 0)
            throw new ShapeException($"{op}: the input's {c} channels do not split into {groups} groups; input {x.Shape}.");
        bool weightFits = w.Shape.Rank == g.Rank + 2 && w.Shape[0] >= 1 && w.Shape[0] % groups == 0 && w.Shape[1] == c / groups;
        for (int a = 0; weightFits && a < g.Rank; a++) weightFits = w.Shape[2 + a] == g.Kernel[a];
        if (!weightFits)
            throw new ShapeException(
                $"{op}: expected a weight [F, {c / groups}, {string.Join(", ", g.Kernel)}] with F a positive multiple of {groups} groups, for input {x.Shape}; found {w.Shape}.");
        int f = w.Shape[0];
        if (bias is not null && (bias.Shape.Rank != 1 || bias.Shape[0] != f))
            throw new ShapeException($"{op}: expected a bias [{f}]; found {bias.Shape}.");
        var spatial = new int[g.Rank];
        for (int a = 0; a < spatial.Length; a++) spatial[a] = x.Shape[2 + a];
        WindowPlan plan;
        try
        {
            plan = new WindowPlan(spatial, g, op);
        }
        catch (ShapeException)
        {
            // Again, to name the input in the message (built only when it is needed).
            plan = new WindowPlan(spatial, g, $"{op} with input {x.Shape}");
        }
        int rowsG = c / groups * plan.Taps;
        return new Setup(n, c, f, groups, f / groups, rowsG, rowsG * groups, g.IsPointwise, plan);
    }
}

/// <summary>
/// Per-chunk partial sums of a batch-parallel reduction (a weight gradient and a bias gradient): each chunk of
/// <see cref="BatchParallel.For"/> sums into its own pooled, zeroed arrays, and <see cref="Sum"/> adds them in chunk order,
/// so the result depends only on the batch and the worker count, never on timing. Shared by the convolution kernels.
/// </summary>
internal sealed class ChunkPartials : IDisposable
{
    private readonly float[]?[] _weight, _bias;
    private readonly int _weightLength, _biasLength;

    /// <param name="chunks">The number of chunks (<see cref="BatchParallel.Chunks"/>).</param>
    /// <param name="weightLength">Elements of the weight gradient.</param>
    /// <param name="biasLength">Elements of the bias gradient; 0 without one.</param>
    public ChunkPartials(int chunks, int weightLength, int biasLength)
    {
        _weight = new float[chunks][];
        _bias = new float[chunks][];
        _weightLength = weightLength;
        _biasLength = biasLength;
    }

    /// <summary>
    /// The zeroed partial sums of one chunk (pooled arrays: only the first weight-length and bias-length elements are
    /// theirs); called once by the chunk's worker.
    /// </summary>
    public (float[] Weight, float[] Bias) Start(int chunk)
    {
        var w = _weight[chunk] = Workspace.Rent(_weightLength);
        var b = _bias[chunk] = Workspace.Rent(Math.Max(1, _biasLength));
        w.AsSpan(0, _weightLength).Clear();
        b.AsSpan(0, _biasLength).Clear();
        return (w, b);
    }

    /// <summary>The totals, chunk 0 first: new arrays the caller owns (the bias total is null without a bias).</summary>
    public (float[] Weight, float[]? Bias) Sum() => (Total(_weight, _weightLength), _biasLength > 0 ? Total(_bias, _biasLength) : null);

    private static float[] Total(float[]?[] parts, int length)
    {
        var total = TensorArena.Zeroed<float>(length);
        foreach (var part in parts)
            if (part is not null) TensorPrimitives.Add(total, part.AsSpan(0, length), total);
        return total;
    }

    /// <summary>Returns every partial array to the pool.</summary>
    public void Dispose()
    {
        for (int i = 0; i < _weight.Length; i++)
        {
            if (_weight[i] is { } w) Workspace.Return(w);
            if (_bias[i] is { } b) Workspace.Return(b);
            _weight[i] = _bias[i] = null;
        }
    }
}

/// <summary>
/// Workspace arrays of the convolution kernels (column matrices, partial sums), pooled by power-of-two size and shared by
/// all threads. Unlike <see cref="ArrayPool{T}.Shared"/>, whose per-thread caches miss whenever <see cref="BatchParallel"/>
/// lands a chunk on another pool thread and which it trims at every full collection (frequent when a training step allocates
/// megabytes of tensors), this pool keeps what it is given: measured, a batch-parallel convolution reallocated about 100 KB of
/// workspace per call from the shared pool, and nothing from this one. It holds at most <see cref="PerSize"/> arrays of each
/// size, so its memory is bounded by the largest workspaces in use at once.
/// </summary>
internal static class Workspace
{
    private const int PerSize = 8;

    private static readonly Stack<float[]>[] Pools = Enumerable.Range(0, 32).Select(_ => new Stack<float[]>()).ToArray();

    /// <summary>An array of at least <paramref name="length"/> floats, contents undefined.</summary>
    public static float[] Rent(int length)
    {
        if (length > 1 << 30) return GC.AllocateUninitializedArray<float>(length);
        int size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(length, 16));
        var pool = Pools[System.Numerics.BitOperations.Log2((uint)size)];
        lock (pool)
            if (pool.TryPop(out var array)) return array;
        return GC.AllocateUninitializedArray<float>(size);
    }

    /// <summary>Gives back an array from <see cref="Rent"/>.</summary>
    public static void Return(float[] array)
    {
        if (!System.Numerics.BitOperations.IsPow2(array.Length)) return;
        var pool = Pools[System.Numerics.BitOperations.Log2((uint)array.Length)];
        lock (pool)
            if (pool.Count < PerSize) pool.Push(array);
    }
}
