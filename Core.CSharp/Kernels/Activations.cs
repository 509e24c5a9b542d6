using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>Element-wise activations and their pullbacks.</summary>
public static class Activations
{
    /// <summary><c>max(x, 0)</c> element-wise; NaN stays NaN.</summary>
    public static Tensor Relu(Tensor x)
    {
        var y = new float[x.Size];
        TensorPrimitives.Max(x.Span, 0f, y);
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>The pullback of ReLU: <c>dy</c> where <c>x &gt; 0</c>, else 0 (PyTorch's choice at 0).</summary>
    public static Tensor ReluBackward(Tensor x, Tensor dy)
    {
        if (x.Shape != dy.Shape) throw new ShapeException($"ReLU backward: gradient {dy.Shape} does not match input {x.Shape}.");
        var dx = new float[x.Size];
        var xs = x.Span;
        var ds = dy.Span;
        for (int i = 0; i < dx.Length; i++) dx[i] = xs[i] > 0f ? ds[i] : 0f;
        return Tensor.Own(dx, x.Shape);
    }

    /// <summary>Softmax along the last axis of a 2-d tensor <c>[N, K]</c>, computed stably (max subtracted).</summary>
    public static Tensor Softmax(Tensor logits)
    {
        if (logits.Shape.Rank != 2) throw new ShapeException($"Softmax: expected [N, K] logits; found {logits.Shape}.");
        int n = logits.Shape[0], k = logits.Shape[1];
        var p = new float[logits.Size];
        for (int i = 0; i < n; i++)
        {
            // TensorPrimitives.SoftMax exponentiates the logits as they are, so logits above ~88 overflow to NaN.
            var row = p.AsSpan(i * k, k);
            var z = logits.Span.Slice(i * k, k);
            TensorPrimitives.Subtract(z, TensorPrimitives.Max(z), row);
            TensorPrimitives.SoftMax(row, row);
        }
        return Tensor.Own(p, logits.Shape);
    }
}
