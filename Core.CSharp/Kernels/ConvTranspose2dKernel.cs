using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// 2-d transposed convolution (the adjoint of a convolution, as DCGAN's generator uses it) over NCHW batches, forward
/// and backward. Weight <c>[Cin, Cout, KH, KW]</c> (PyTorch's layout), bias <c>[Cout]</c>, one group, no dilation.
/// Output size <c>(in - 1)*stride - 2*pad + kernel + outputPad</c> per axis. Forward is cols = W^T x X, then col2im;
/// the input gradient is the convolution of dY (im2col, then W x cols), and dW = X x cols^T. Weight and bias gradients are
/// summed per chunk of the batch and then in chunk order (<see cref="ChunkPartials"/>, shared with <see cref="ConvKernel"/>).
/// </summary>
public static class ConvTranspose2dKernel
{
    /// <summary>The transposed convolution of <paramref name="x"/> with <paramref name="w"/>, plus the bias.</summary>
    /// <param name="x">Input <c>[N, Cin, H, W]</c>.</param>
    /// <param name="w">Weight <c>[Cin, Cout, KH, KW]</c>.</param>
    /// <param name="bias">Bias <c>[Cout]</c>, or null.</param>
    /// <param name="strideH">Vertical stride, at least 1.</param>
    /// <param name="strideW">Horizontal stride, at least 1.</param>
    /// <param name="padH">Rows removed from the top and from the bottom of the full output.</param>
    /// <param name="padW">Columns removed from the left and from the right of the full output.</param>
    /// <param name="outputPadH">Rows added at the bottom, below the stride (resolves which input size a strided convolution came from).</param>
    /// <param name="outputPadW">Columns added at the right, below the stride.</param>
    /// <returns>Output <c>[N, Cout, OH, OW]</c>.</returns>
    /// <exception cref="ShapeException">The shapes do not fit, output padding is not below the stride, or the output would be empty.</exception>
    public static Tensor Forward(Tensor x, Tensor w, Tensor? bias, int strideH, int strideW, int padH, int padW, int outputPadH, int outputPadW)
    {
        var s = Check(x, w, bias, strideH, strideW, padH, padW, outputPadH, outputPadW);
        int inSize = s.Plan.OutSize, outSize = s.Plan.InSize, rows = s.Cout * s.Plan.Taps;
        var y = TensorArena.Uninitialized<float>(s.N * s.Cout * outSize);
        var gemm = ConvKernel.GemmFor(s.N);
        BatchParallel.For(s.N, (_, start, end) =>
        {
            float[]? cols = s.Direct ? null : Workspace.Rent(rows * inSize);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var xi = x.Span.Slice(i * s.Cin * inSize, s.Cin * inSize);
                    var yi = y.AsSpan(i * s.Cout * outSize, s.Cout * outSize);
                    if (cols is null) Gemm.Multiply(true, false, rows, inSize, s.Cin, w.Span, xi, yi, false, gemm);
                    else
                    {
                        Gemm.Multiply(true, false, rows, inSize, s.Cin, w.Span, xi, cols, false, gemm);
                        yi.Clear();
                        ImToCol.FoldAdd(cols.AsSpan(0, rows * inSize), s.Cout, s.Plan, yi);
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
    /// <param name="x">The forward input <c>[N, Cin, H, W]</c>.</param>
    /// <param name="w">The weight <c>[Cin, Cout, KH, KW]</c>.</param>
    /// <param name="hasBias">Whether there is a bias (then its gradient is returned).</param>
    /// <param name="dy">dL/dy, the forward output's shape.</param>
    /// <param name="strideH">Vertical stride.</param>
    /// <param name="strideW">Horizontal stride.</param>
    /// <param name="padH">Vertical padding.</param>
    /// <param name="padW">Horizontal padding.</param>
    /// <param name="outputPadH">Vertical output padding.</param>
    /// <param name="outputPadW">Horizontal output padding.</param>
    /// <exception cref="ShapeException">The shapes do not fit, or output padding is not below the stride.</exception>
    public static ConvGradients Backward(Tensor x, Tensor w, bool hasBias, Tensor dy, int strideH, int strideW, int padH, int padW, int outputPadH, int outputPadW)
    {
        var s = Check(x, w, null, strideH, strideW, padH, padW, outputPadH, outputPadW);
        ArgumentNullException.ThrowIfNull(dy);
        if (dy.Shape != s.OutShape)
            throw new ShapeException($"ConvTranspose2d backward: expected an upstream gradient of shape {s.OutShape} for input {x.Shape}; found {dy.Shape}.");
        int inSize = s.Plan.OutSize, outSize = s.Plan.InSize, rows = s.Cout * s.Plan.Taps, wSize = s.Cin * rows;
        var dx = TensorArena.Uninitialized<float>(x.Size);
        var gemm = ConvKernel.GemmFor(s.N);
        using var partials = new ChunkPartials(BatchParallel.Chunks(s.N), wSize, hasBias ? s.Cout : 0);
        BatchParallel.For(s.N, (chunk, start, end) =>
        {
            var (dwp, dbp) = partials.Start(chunk);
            float[]? cols = s.Direct ? null : Workspace.Rent(rows * inSize);
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
                        colSpan = cols.AsSpan(0, rows * inSize);
                    }
                    Gemm.Multiply(false, false, s.Cin, inSize, rows, w.Span, colSpan, dx.AsSpan(i * s.Cin * inSize, s.Cin * inSize), false, gemm);
                    Gemm.Multiply(false, true, s.Cin, rows, inSize, xi, colSpan, dwp.AsSpan(0, wSize), true, gemm);
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
    /// The output height or width of a transposed convolution: <c>(size - 1)*stride - 2*pad + kernel + outputPad</c>.
    /// </summary>
    public static int OutputSize(int size, int kernel, int stride, int pad, int outputPad) =>
        (size - 1) * stride - 2 * pad + kernel + outputPad;

    /// <summary>
    /// The sizes of one call. <see cref="Plan"/> is the plan of the convolution this one is the adjoint of: it maps the
    /// output (its input) to the input (its output); output padding below the stride is what its floor drops.
    /// </summary>
    private readonly record struct Setup(int N, int Cin, int Cout, bool Direct, Shape OutShape, WindowPlan Plan);

    private static Setup Check(Tensor x, Tensor w, Tensor? bias, int strideH, int strideW, int padH, int padW, int outputPadH, int outputPadW)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(w);
        const string op = "ConvTranspose2d";
        string args = $"stride ({strideH}, {strideW}), padding ({padH}, {padW}), output padding ({outputPadH}, {outputPadW})";
        if (strideH < 1 || strideW < 1 || padH < 0 || padW < 0 || outputPadH < 0 || outputPadW < 0)
            throw new ShapeException($"{op}: expected stride >= 1 and padding and output padding >= 0; found {args}.");
        if (outputPadH >= strideH || outputPadW >= strideW)
            throw new ShapeException($"{op}: output padding must be smaller than the stride; found {args}.");
        if (x.Shape.Rank != 4) throw new ShapeException($"{op}: expected an NCHW input of rank 4; found {x.Shape}.");
        int n = x.Shape[0], cin = x.Shape[1], h = x.Shape[2], wd = x.Shape[3];
        if (w.Shape.Rank != 4 || w.Shape[0] != cin || w.Shape[1] < 1 || w.Shape[2] < 1 || w.Shape[3] < 1)
            throw new ShapeException($"{op}: expected a weight [{cin}, Cout, KH, KW] (PyTorch's layout) for input {x.Shape}; found {w.Shape}.");
        int cout = w.Shape[1], kh = w.Shape[2], kw = w.Shape[3];
        if (bias is not null && (bias.Shape.Rank != 1 || bias.Shape[0] != cout))
            throw new ShapeException($"{op}: expected a bias [{cout}]; found {bias.Shape}.");
        if (h < 1 || wd < 1) throw new ShapeException($"{op}: expected a non-empty input; found {x.Shape}.");
        int oh = OutputSize(h, kh, strideH, padH, outputPadH), ow = OutputSize(wd, kw, strideW, padW, outputPadW);
        if (oh < 1 || ow < 1)
            throw new ShapeException(
                $"{op}: input {x.Shape} with kernel ({kh}, {kw}) and {args} gives output ({oh}, {ow}): (in-1)*stride - 2*pad + kernel + outputPad must be >= 1.");
        var g = ConvGeometry.Create(new[] { kh, kw }, new[] { strideH, strideW }, new[] { padH, padW }, new[] { padH, padW });
        var plan = new WindowPlan(new[] { oh, ow }, g, op);
        return new Setup(n, cin, cout, g.IsPointwise, new Shape(n, cout, oh, ow), plan);
    }
}
