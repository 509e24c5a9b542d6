namespace Cnn.Core.Kernels;

/// <summary>The gradients of a convolution with respect to its input, weight and bias.</summary>
/// <param name="Input">dL/dx, the input's shape.</param>
/// <param name="Weight">dL/dW, the weight's shape.</param>
/// <param name="Bias">dL/db, or null when the convolution has no bias.</param>
public sealed record ConvGradients(Tensor Input, Tensor Weight, Tensor? Bias);

/// <summary>
/// 2-d convolution (cross-correlation) over NCHW batches with a <see cref="Window2d"/>: weight <c>[F, C, KH, KW]</c>,
/// bias <c>[F]</c>. A thin front of <see cref="ConvKernel"/>, which holds the one implementation (im2col and GEMM).
/// </summary>
public static class Conv2dKernel
{
    /// <summary>y = conv(x, w) + b.</summary>
    /// <exception cref="ShapeException">The input is not NCHW, or the shapes do not fit each other or the window.</exception>
    public static Tensor Forward(Tensor x, Tensor w, Tensor? bias, Window2d g)
    {
        ArgumentNullException.ThrowIfNull(x);
        g.Validate("Conv2d", x.Shape);
        return ConvKernel.Forward(x, w, bias, ConvGeometry.From(g));
    }

    /// <summary>The gradients of a convolution given the upstream gradient <paramref name="dy"/>.</summary>
    /// <exception cref="ShapeException">The input is not NCHW, or the shapes do not fit each other or the window.</exception>
    public static ConvGradients Backward(Tensor x, Tensor w, bool hasBias, Tensor dy, Window2d g)
    {
        ArgumentNullException.ThrowIfNull(x);
        g.Validate("Conv2d", x.Shape);
        return ConvKernel.Backward(x, w, hasBias, dy, ConvGeometry.From(g));
    }
}
