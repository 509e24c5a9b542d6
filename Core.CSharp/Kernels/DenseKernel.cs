using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>The gradients of an affine layer.</summary>
/// <param name="Input">dL/dx <c>[N, F]</c>.</param>
/// <param name="Weight">dL/dW <c>[U, F]</c>.</param>
/// <param name="Bias">dL/db <c>[U]</c>, or null without bias.</param>
public sealed record DenseGradients(Tensor Input, Tensor Weight, Tensor? Bias);

/// <summary>The affine map <c>y = x W^T + b</c> with x <c>[N, F]</c>, W <c>[U, F]</c>, b <c>[U]</c>.</summary>
public static class DenseKernel
{
    /// <summary>y = x W^T + b.</summary>
    public static Tensor Forward(Tensor x, Tensor w, Tensor? bias)
    {
        var (n, f, u) = Check(x, w, bias);
        var y = TensorArena.Zeroed<float>(n * u);
        Gemm.Multiply(false, true, n, u, f, x.Span, w.Span, y);
        if (bias is not null)
            for (int i = 0; i < n; i++) TensorPrimitives.Add(y.AsSpan(i * u, u), bias.Span, y.AsSpan(i * u, u));
        return Tensor.Own(y, new Shape(n, u));
    }

    /// <summary>dx = dy W, dW = dy^T x, db = column sums of dy.</summary>
    public static DenseGradients Backward(Tensor x, Tensor w, bool hasBias, Tensor dy)
    {
        var (n, f, u) = Check(x, w, null);
        if (dy.Shape != new Shape(n, u)) throw new ShapeException($"Dense backward: expected an upstream gradient [{n}, {u}]; found {dy.Shape}.");
        var dx = TensorArena.Zeroed<float>(n * f);
        Gemm.Multiply(false, false, n, f, u, dy.Span, w.Span, dx);
        var dw = TensorArena.Zeroed<float>(u * f);
        Gemm.Multiply(true, false, u, f, n, dy.Span, x.Span, dw);
        Tensor? db = null;
        if (hasBias)
        {
            var b = TensorArena.Zeroed<float>(u);
            for (int i = 0; i < n; i++) TensorPrimitives.Add(b, dy.Span.Slice(i * u, u), b);
            db = Tensor.Own(b, new Shape(u));
        }
        return new DenseGradients(Tensor.Own(dx, x.Shape), Tensor.Own(dw, w.Shape), db);
    }

    private static (int n, int f, int u) Check(Tensor x, Tensor w, Tensor? bias)
    {
        if (x.Shape.Rank != 2) throw new ShapeException($"Dense: expected a flat input [N, F]; found {x.Shape}.");
        if (w.Shape.Rank != 2 || w.Shape[1] != x.Shape[1])
            throw new ShapeException($"Dense: expected a weight [U, {x.Shape[1]}] for input {x.Shape}; found {w.Shape}.");
        if (bias is not null && bias.Shape != new Shape(w.Shape[0]))
            throw new ShapeException($"Dense: expected a bias [{w.Shape[0]}]; found {bias.Shape}.");
        return (x.Shape[0], x.Shape[1], w.Shape[0]);
    }
}
