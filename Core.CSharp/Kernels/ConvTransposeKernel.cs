using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// Transposed convolution (the adjoint of a convolution, "deconvolution") over 1, 2 or 3 spatial axes, forward and backward:
/// inputs NCL, NCHW or NCDHW, weight <c>[Cin, Cout/groups, k1, ..., kr]</c> (PyTorch's layout), bias <c>[Cout]</c>, with
/// per-axis stride, padding, output padding and dilation, and channel groups. Output size per axis
/// <c>(in - 1)*stride - padBegin - padEnd + dilation*(kernel - 1) + 1 + outputPad</c>.
/// </summary>
/// <remarks>
/// The window is that of the convolution this one is the adjoint of: that convolution maps the output back to the input,
/// and output padding below the stride is what its floor drops. So one column layout serves both (<see cref="ImToCol"/>):
/// forward, per image and group, cols = W_g^T x X_g and then col2im; backward, dY is unfolded once, dX_g = W_g x cols_g
/// and dW_g += X_g x cols_g^T. Weight and bias gradients are summed per chunk of the batch and then in chunk order
/// (<see cref="ChunkPartials"/>, shared with <see cref="ConvKernel"/>), so results are identical run to run.
/// </remarks>
public static class ConvTransposeKernel
{
    /// <summary>The transposed convolution of <paramref name="x"/> with <paramref name="w"/>, plus the bias.</summary>
    /// <param name="x">Input <c>[N, Cin, spatial...]</c> with as many spatial axes as <paramref name="g"/> has.</param>
    /// <param name="w">Weight <c>[Cin, Cout/groups, kernel...]</c>.</param>
    /// <param name="bias">Bias <c>[Cout]</c>, or null.</param>
    /// <param name="g">Kernel, stride, padding removed from the start and end of each axis, dilation and groups.</param>
    /// <param name="outputPad">Elements added at the end of each axis, each below that axis's stride; null for none.</param>
    /// <returns>Output <c>[N, Cout, output...]</c>, sizes from <see cref="OutputSize"/>.</returns>
    /// <exception cref="ShapeException">The shapes do not fit, output padding is not below the stride, or the output would be empty.</exception>
    public static Tensor Forward(Tensor x, Tensor w, Tensor? bias, ConvGeometry g, IReadOnlyList<int>? outputPad = null)
    {
        var s = Check(x, w, bias, g, outputPad);
        int inSize = s.Plan.OutSize, outSize = s.Plan.InSize, rowsG = s.CoutG * s.Plan.Taps;
        var y = TensorArena.Uninitialized<float>(s.N * s.Cout * outSize);
        var gemm = ConvKernel.GemmFor(s.N);
        BatchParallel.For(s.N, (_, start, end) =>
        {
            float[]? cols = s.Direct ? null : Workspace.Rent(s.Groups * rowsG * inSize);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var xi = x.Span.Slice(i * s.Cin * inSize, s.Cin * inSize);
                    var yi = y.AsSpan(i * s.Cout * outSize, s.Cout * outSize);
                    // Pointwise: the columns are the output itself.
                    Span<float> target = cols is null ? yi : cols.AsSpan(0, s.Groups * rowsG * inSize);
                    for (int gi = 0; gi < s.Groups; gi++)
                        Gemm.Multiply(true, false, rowsG, inSize, s.CinG, w.Span.Slice(gi * s.CinG * rowsG, s.CinG * rowsG),
                            xi.Slice(gi * s.CinG * inSize, s.CinG * inSize), target.Slice(gi * rowsG * inSize, rowsG * inSize), false, gemm);
                    if (cols is not null)
                    {
                        yi.Clear();
                        ImToCol.FoldAdd(target, s.Cout, s.Plan, yi);
                    }
                    if (bias is not null)
                        for (int o = 0; o < s.Cout; o++)
                        {
                            var yo = yi.Slice(o * outSize, outSize);
                            ConvKernel.AddBias(yo, bias[o], yo);
                        }
                }
            }
            finally { if (cols is not null) Workspace.Return(cols); }
        });
        return Tensor.Own(y, s.OutShape);
    }

    /// <summary>The gradients of a transposed convolution given the upstream gradient <paramref name="dy"/>.</summary>
    /// <param name="x">The forward input.</param>
    /// <param name="w">The weight <c>[Cin, Cout/groups, kernel...]</c>.</param>
    /// <param name="hasBias">Whether there is a bias (then its gradient is returned).</param>
    /// <param name="dy">dL/dy, the forward output's shape.</param>
    /// <param name="g">The window, as given to <see cref="Forward"/>.</param>
    /// <param name="outputPad">The output padding, as given to <see cref="Forward"/>.</param>
    /// <exception cref="ShapeException">The shapes do not fit, or output padding is not below the stride.</exception>
    public static ConvGradients Backward(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g, IReadOnlyList<int>? outputPad = null)
    {
        var s = Check(x, w, null, g, outputPad);
        ArgumentNullException.ThrowIfNull(dy);
        if (dy.Shape != s.OutShape)
            throw new ShapeException($"{s.Op} backward: expected an upstream gradient of shape {s.OutShape} for input {x.Shape}; found {dy.Shape}.");
        int inSize = s.Plan.OutSize, outSize = s.Plan.InSize, rowsG = s.CoutG * s.Plan.Taps, wSize = s.Cin * rowsG;
        var dx = TensorArena.Uninitialized<float>(x.Size);
        var gemm = ConvKernel.GemmFor(s.N);
        using var partials = new ChunkPartials(BatchParallel.Chunks(s.N), wSize, hasBias ? s.Cout : 0);
        BatchParallel.For(s.N, (chunk, start, end) =>
        {
            var (dwp, dbp) = partials.Start(chunk);
            float[]? cols = s.Direct ? null : Workspace.Rent(s.Groups * rowsG * inSize);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var xi = x.Span.Slice(i * s.Cin * inSize, s.Cin * inSize);
                    var dyi = dy.Span.Slice(i * s.Cout * outSize, s.Cout * outSize);
                    ReadOnlySpan<float> colSpan = dyi;
                    if (cols is not null)
                    {
                        ImToCol.Unfold(dyi, s.Cout, s.Plan, cols);
                        colSpan = cols.AsSpan(0, s.Groups * rowsG * inSize);
                    }
                    var dxi = dx.AsSpan(i * s.Cin * inSize, s.Cin * inSize);
                    for (int gi = 0; gi < s.Groups; gi++)
                    {
                        var colsG = colSpan.Slice(gi * rowsG * inSize, rowsG * inSize);
                        Gemm.Multiply(false, false, s.CinG, inSize, rowsG, w.Span.Slice(gi * s.CinG * rowsG, s.CinG * rowsG), colsG,
                            dxi.Slice(gi * s.CinG * inSize, s.CinG * inSize), false, gemm);
                        Gemm.Multiply(false, true, s.CinG, rowsG, inSize, xi.Slice(gi * s.CinG * inSize, s.CinG * inSize), colsG,
                            dwp.AsSpan(gi * s.CinG * rowsG, s.CinG * rowsG), true, gemm);
                    }
                    if (hasBias)
                        for (int o = 0; o < s.Cout; o++) dbp[o] += TensorPrimitives.Sum(dyi.Slice(o * outSize, outSize));
                }
            }
            finally { if (cols is not null) Workspace.Return(cols); }
        });
        var (dw, db) = partials.Sum();
        return new ConvGradients(Tensor.Own(dx, x.Shape), Tensor.Own(dw, w.Shape), db is null ? null : Tensor.Own(db, new Shape(s.Cout)));
    }

    /// <summary>
    /// The output size along each spatial axis: <c>(in - 1)*stride - padBegin - padEnd + dilation*(kernel - 1) + 1 + outputPad</c>
    /// (possibly below 1: the caller checks).
    /// </summary>
    /// <param name="inputSpatial">The input's spatial sizes, one per axis of <paramref name="g"/>.</param>
    /// <param name="g">The window.</param>
    /// <param name="outputPad">Output padding per axis; null for none.</param>
    public static int[] OutputSize(IReadOnlyList<int> inputSpatial, ConvGeometry g, IReadOnlyList<int>? outputPad = null)
    {
        ArgumentNullException.ThrowIfNull(inputSpatial);
        ArgumentNullException.ThrowIfNull(g);
        var o = new int[inputSpatial.Count];
        for (int a = 0; a < o.Length; a++)
            o[a] = (inputSpatial[a] - 1) * g.Stride[a] - g.PadBegin[a] - g.PadEnd[a] + g.Dilation[a] * (g.Kernel[a] - 1) + 1 + (outputPad?[a] ?? 0);
        return o;
    }

    /// <summary>
    /// The sizes of one call. <see cref="Plan"/> is the plan of the convolution this one is the adjoint of: it maps the
    /// output (its input) to the input (its output).
    /// </summary>
    private readonly record struct Setup(string Op, int N, int Cin, int Cout, int Groups, int CinG, int CoutG, bool Direct, Shape OutShape, WindowPlan Plan);

    private static Setup Check(Tensor x, Tensor w, Tensor? bias, ConvGeometry g, IReadOnlyList<int>? outputPad)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(g);
        g.Validate("ConvTranspose");
        int rank = g.Rank;
        string op = $"ConvTranspose{rank}d";
        if (outputPad is not null && outputPad.Count != rank)
            throw new ShapeException($"{op}: expected {rank} output paddings; found [{string.Join(", ", outputPad)}].");
        for (int a = 0; a < rank; a++)
        {
            int q = outputPad?[a] ?? 0;
            if (q < 0 || q >= g.Stride[a])
                throw new ShapeException($"{op}: output padding must be at least 0 and smaller than the stride; found {q} with stride {g.Stride[a]} on spatial axis {a} ({g}).");
        }
        if (x.Shape.Rank != rank + 2) throw new ShapeException($"{op}: expected an input of rank {rank + 2} for a {rank}-d window; found {x.Shape}.");
        int n = x.Shape[0], cin = x.Shape[1], groups = g.Groups;
        if (cin % groups != 0)
            throw new ShapeException($"{op}: the input's {cin} channels do not split into {groups} groups; input {x.Shape}.");
        bool weightFits = w.Shape.Rank == rank + 2 && w.Shape[0] == cin && w.Shape[1] >= 1;
        for (int a = 0; weightFits && a < rank; a++) weightFits = w.Shape[2 + a] == g.Kernel[a];
        if (!weightFits)
            throw new ShapeException($"{op}: expected a weight [{cin}, Cout/groups, {string.Join(", ", g.Kernel)}] (PyTorch's layout) for input {x.Shape}; found {w.Shape}.");
        int cout = w.Shape[1] * groups;
        if (bias is not null && (bias.Shape.Rank != 1 || bias.Shape[0] != cout))
            throw new ShapeException($"{op}: expected a bias [{cout}]; found {bias.Shape}.");
        var spatial = new int[rank];
        for (int a = 0; a < rank; a++)
        {
            spatial[a] = x.Shape[2 + a];
            if (spatial[a] < 1) throw new ShapeException($"{op}: expected a non-empty input; found {x.Shape}.");
        }
        var output = OutputSize(spatial, g, outputPad);
        if (output.Any(o => o < 1))
            throw new ShapeException(
                $"{op}: input {x.Shape} with {g} and output padding [{string.Join(", ", outputPad ?? new int[rank])}] gives output [{string.Join(", ", output)}]: " +
                "(in-1)*stride - padBegin - padEnd + dilation*(kernel-1) + 1 + outputPad must be >= 1.");
        var plan = new WindowPlan(output, g, op);
        var outShape = new Shape(new[] { n, cout }.Concat(output).ToArray());
        return new Setup(op, n, cin, cout, groups, cin / groups, w.Shape[1], g.IsPointwise, outShape, plan);
    }
}
