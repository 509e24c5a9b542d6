namespace Cnn.Core.Kernels;

/// <summary>
/// 2-d transposed convolution over NCHW batches with one group and no dilation, in the argument style of
/// <see cref="Conv2dKernel"/>: <see cref="ConvTransposeKernel"/> with a 2-d window. Weight <c>[Cin, Cout, KH, KW]</c>
/// (PyTorch's layout), bias <c>[Cout]</c>; output size <c>(in - 1)*stride - 2*pad + kernel + outputPad</c> per axis.
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
    public static Tensor Forward(Tensor x, Tensor w, Tensor? bias, int strideH, int strideW, int padH, int padW, int outputPadH, int outputPadW) =>
        ConvTransposeKernel.Forward(x, w, bias, Geometry(x, w, strideH, strideW, padH, padW), new[] { outputPadH, outputPadW });

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
    public static ConvGradients Backward(Tensor x, Tensor w, bool hasBias, Tensor dy, int strideH, int strideW, int padH, int padW, int outputPadH, int outputPadW) =>
        ConvTransposeKernel.Backward(x, w, hasBias, dy, Geometry(x, w, strideH, strideW, padH, padW), new[] { outputPadH, outputPadW });

    /// <summary>
    /// The output height or width of a transposed convolution: <c>(size - 1)*stride - 2*pad + kernel + outputPad</c>.
    /// </summary>
    public static int OutputSize(int size, int kernel, int stride, int pad, int outputPad) =>
        (size - 1) * stride - 2 * pad + kernel + outputPad;

    private static ConvGeometry Geometry(Tensor x, Tensor w, int strideH, int strideW, int padH, int padW)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(w);
        if (x.Shape.Rank != 4) throw new ShapeException($"ConvTranspose2d: expected an NCHW input of rank 4; found {x.Shape}.");
        if (w.Shape.Rank != 4 || w.Shape[2] < 1 || w.Shape[3] < 1)
            throw new ShapeException($"ConvTranspose2d: expected a weight [{x.Shape[1]}, Cout, KH, KW] (PyTorch's layout) for input {x.Shape}; found {w.Shape}.");
        if (strideH < 1 || strideW < 1 || padH < 0 || padW < 0)
            throw new ShapeException($"ConvTranspose2d: expected stride >= 1 and padding >= 0; found stride ({strideH}, {strideW}), padding ({padH}, {padW}).");
        return ConvGeometry.Create(new[] { w.Shape[2], w.Shape[3] }, new[] { strideH, strideW }, new[] { padH, padW }, new[] { padH, padW });
    }
}
