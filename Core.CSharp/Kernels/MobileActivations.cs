using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

// The activations of mobile and efficient networks (MobileNet v2/v3, EfficientNet, transformers' GELU), in PyTorch's
// definitions and with PyTorch's gradients at the kinks, so that the two backends agree element by element.
public static partial class Activations
{
    /// <summary>
    /// Hard tanh: <paramref name="x"/> clipped to [<paramref name="min"/>, <paramref name="max"/>] (PyTorch's <c>hardtanh</c>;
    /// ReLU6 is [0, 6]); NaN stays NaN.
    /// </summary>
    public static Tensor HardTanh(Tensor x, float min, float max)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        HardTanh(x.Span, min, max, y);
        return Tensor.Own(y, x.Shape);
    }

    /// <summary><see cref="HardTanh(Tensor, float, float)"/> into <paramref name="y"/> (the inference plan's own array).</summary>
    internal static void HardTanh(ReadOnlySpan<float> x, float min, float max, Span<float> y)
    {
        TensorPrimitives.Max(x, min, y);
        TensorPrimitives.Min(y, max, y);
    }

    /// <summary>The pullback of hard tanh: <c>dy</c> strictly inside (min, max), else 0 (also at the bounds, as PyTorch).</summary>
    public static Tensor HardTanhBackward(Tensor x, Tensor dy, float min, float max)
    {
        SameShape("HardTanh backward", x, dy);
        var dx = TensorArena.Uninitialized<float>(x.Size);
        var xs = x.Span;
        var ds = dy.Span;
        for (int i = 0; i < dx.Length; i++) dx[i] = xs[i] > min && xs[i] < max ? ds[i] : 0f;
        return Tensor.Own(dx, x.Shape);
    }

    /// <summary>Hard sigmoid <c>relu6(x + 3) / 6</c> (PyTorch's <c>hardsigmoid</c>; ONNX's HardSigmoid with alpha 1/6, beta 1/2).</summary>
    public static Tensor HardSigmoid(Tensor x)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        Relu6OfXPlus3(x.Span, y);
        TensorPrimitives.Divide(y, 6f, y);
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>The pullback of hard sigmoid: <c>dy * (1/6)</c> strictly inside (-3, 3), else 0 (as PyTorch, which multiplies by the rounded sixth).</summary>
    public static Tensor HardSigmoidBackward(Tensor x, Tensor dy)
    {
        SameShape("HardSigmoid backward", x, dy);
        var dx = TensorArena.Uninitialized<float>(x.Size);
        var xs = x.Span;
        var ds = dy.Span;
        for (int i = 0; i < dx.Length; i++) dx[i] = xs[i] > -3f && xs[i] < 3f ? ds[i] * OneSixth : 0f;
        return Tensor.Own(dx, x.Shape);
    }

    /// <summary>
    /// Hard sigmoid with any slope and offset, <c>clamp(alpha * x + beta, 0, 1)</c> (ONNX's HardSigmoid; Keras's is alpha 0.2, beta 0.5):
    /// the product and the sum each rounded, as an unfused <c>x * alpha + beta</c> computes them.
    /// </summary>
    public static Tensor HardSigmoid(Tensor x, float alpha, float beta)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        AlphaXPlusBeta(x.Span, alpha, beta, y);
        TensorPrimitives.Max(y, 0f, y);
        TensorPrimitives.Min(y, 1f, y);
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>The pullback of <see cref="HardSigmoid(Tensor, float, float)"/>: <c>dy * alpha</c> where <c>alpha * x + beta</c> lies strictly inside (0, 1), else 0.</summary>
    public static Tensor HardSigmoidBackward(Tensor x, Tensor dy, float alpha, float beta)
    {
        SameShape("HardSigmoid backward", x, dy);
        var dx = TensorArena.Uninitialized<float>(x.Size);
        AlphaXPlusBeta(x.Span, alpha, beta, dx);
        var ds = dy.Span;
        for (int i = 0; i < dx.Length; i++) dx[i] = dx[i] > 0f && dx[i] < 1f ? ds[i] * alpha : 0f;
        return Tensor.Own(dx, x.Shape);
    }

    /// <summary>Hard swish <c>x * relu6(x + 3) / 6</c> (PyTorch's <c>hardswish</c>, MobileNet v3's activation).</summary>
    public static Tensor HardSwish(Tensor x)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        Relu6OfXPlus3(x.Span, y);
        // PyTorch multiplies by x before dividing by 6: the same order rounds the same way.
        TensorPrimitives.Multiply(y, x.Span, y);
        TensorPrimitives.Divide(y, 6f, y);
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>
    /// The pullback of hard swish, as PyTorch's vectorised <c>hardswish_backward</c>: 0 up to -3 (included), <c>dy * (x / 3 + 1/2)</c>
    /// between -3 and 3, <c>dy</c> from 3 on. At exactly ±3 LibTorch's scalar loop (the last elements of a tensor whose length is
    /// not a multiple of the vector width) takes the inner branch instead (<c>-dy/2</c>, <c>1.5 dy</c>): both are one-sided
    /// derivatives, and one rule for every element is ours.
    /// </summary>
    public static Tensor HardSwishBackward(Tensor x, Tensor dy)
    {
        SameShape("HardSwish backward", x, dy);
        var dx = TensorArena.Uninitialized<float>(x.Size);
        var xs = x.Span;
        var ds = dy.Span;
        for (int i = 0; i < dx.Length; i++)
        {
            float v = xs[i];
            dx[i] = v <= -3f ? 0f : v < 3f ? ds[i] * (v / 3f + 0.5f) : ds[i];
        }
        return Tensor.Own(dx, x.Shape);
    }

    /// <summary>SiLU (swish) <c>x * sigmoid(x)</c> (PyTorch's <c>silu</c>, EfficientNet's activation).</summary>
    public static Tensor Silu(Tensor x)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        TensorPrimitives.Sigmoid(x.Span, y);
        TensorPrimitives.Multiply(y, x.Span, y);
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>The pullback of SiLU: <c>dy * s * (1 + x * (1 - s))</c> with <c>s = sigmoid(x)</c>.</summary>
    public static Tensor SiluBackward(Tensor x, Tensor dy)
    {
        SameShape("SiLU backward", x, dy);
        var dx = TensorArena.Uninitialized<float>(x.Size);
        var s = TensorArena.Uninitialized<float>(x.Size);
        TensorPrimitives.Sigmoid(x.Span, s);
        TensorPrimitives.Subtract(1f, s, dx);
        TensorPrimitives.MultiplyAdd(dx, x.Span, 1f, dx);
        TensorPrimitives.Multiply(dx, s, dx);
        TensorPrimitives.Multiply(dx, dy.Span, dx);
        return Tensor.Own(dx, x.Shape);
    }

    /// <summary>GELU, exact: <c>x * Φ(x)</c> with Φ the standard normal distribution function (PyTorch's <c>gelu</c>, approximate "none").</summary>
    public static Tensor Gelu(Tensor x)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        var xs = x.Span;
        for (int i = 0; i < y.Length; i++) y[i] = (float)(xs[i] * NormalCdf(xs[i]));
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>The pullback of exact GELU: <c>dy * (Φ(x) + x φ(x))</c>, φ the standard normal density.</summary>
    public static Tensor GeluBackward(Tensor x, Tensor dy)
    {
        SameShape("GELU backward", x, dy);
        var dx = TensorArena.Uninitialized<float>(x.Size);
        var xs = x.Span;
        var ds = dy.Span;
        for (int i = 0; i < dx.Length; i++)
        {
            double v = xs[i];
            dx[i] = (float)(ds[i] * (NormalCdf(v) + v * Math.Exp(-0.5 * v * v) * InverseSqrt2Pi));
        }
        return Tensor.Own(dx, x.Shape);
    }

    private const float OneSixth = 1f / 6f;

    private const double InverseSqrt2Pi = 0.398942280401432677939946059934;

    /// <summary><c>min(max(x + 3, 0), 6)</c>, the shared core of hard sigmoid and hard swish.</summary>
    private static void Relu6OfXPlus3(ReadOnlySpan<float> x, Span<float> y)
    {
        TensorPrimitives.Add(x, 3f, y);
        TensorPrimitives.Max(y, 0f, y);
        TensorPrimitives.Min(y, 6f, y);
    }

    /// <summary><c>alpha * x + beta</c>, the product rounded before the sum (no fused multiply-add), as LibTorch's two operations round.</summary>
    private static void AlphaXPlusBeta(ReadOnlySpan<float> x, float alpha, float beta, Span<float> y)
    {
        TensorPrimitives.Multiply(x, alpha, y);
        TensorPrimitives.Add(y, beta, y);
    }

    /// <summary>
    /// Φ(x) = erfc(-x / √2) / 2. Neither .NET nor TensorPrimitives has erf; this is Numerical Recipes' Chebyshev fit of erfc,
    /// whose relative error is below 1.2e-7 everywhere, so that both tails keep float32 accuracy (1 - erf would lose the left one).
    /// </summary>
    private static double NormalCdf(double x)
    {
        double z = Math.Abs(x) * 0.707106781186547524400844362105;
        double t = 1.0 / (1.0 + 0.5 * z);
        double erfc = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        // erfc of -x/√2: for x >= 0 the argument is negative, and erfc(-z) = 2 - erfc(z).
        return 0.5 * (x >= 0 ? 2.0 - erfc : erfc);
    }
}
