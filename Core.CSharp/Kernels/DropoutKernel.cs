using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>The output of dropout and the mask it multiplied by, which the backward pass needs.</summary>
/// <param name="Output">The input times the mask.</param>
/// <param name="Mask">Each element 0 (dropped) or <c>1 / (1 - p)</c> (kept and rescaled), the input's shape.</param>
public sealed record DropoutResult(Tensor Output, Tensor Mask);

/// <summary>
/// Inverted dropout, as PyTorch's <c>dropout</c> in training: each element is dropped with probability <c>p</c> and the
/// survivors are scaled by <c>1 / (1 - p)</c>, so the expectation is unchanged and evaluation is the identity.
/// </summary>
public static class DropoutKernel
{
    /// <summary>
    /// Drops each element of <paramref name="x"/> independently with probability <paramref name="p"/>, drawing one
    /// <see cref="Random.NextDouble"/> per element in row-major order: the same seed gives the same mask.
    /// <c>p = 0</c> is the identity and draws nothing.
    /// </summary>
    /// <exception cref="CnnException"><paramref name="p"/> is not in [0, 1).</exception>
    public static DropoutResult Forward(Tensor x, float p, Random rng)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rng);
        if (!(p >= 0f && p < 1f))
            throw new CnnException($"Dropout: expected a drop probability p in [0, 1); found {p}. (p = 1 would drop everything and scale by 1/0.)");
        if (p == 0f) return new DropoutResult(x, Tensor.Full(x.Shape, 1f));
        float keep = 1f / (1f - p);
        var mask = TensorArena.Uninitialized<float>(x.Size);
        for (int i = 0; i < mask.Length; i++) mask[i] = rng.NextDouble() < p ? 0f : keep;
        var y = TensorArena.Uninitialized<float>(x.Size);
        TensorPrimitives.Multiply(x.Span, mask, y);
        return new DropoutResult(Tensor.Own(y, x.Shape), Tensor.Own(mask, x.Shape));
    }

    /// <summary>The pullback of dropout: <c>dy * mask</c>.</summary>
    /// <exception cref="ShapeException">The gradient's shape is not the mask's.</exception>
    public static Tensor Backward(Tensor dy, Tensor mask)
    {
        if (dy.Shape != mask.Shape)
            throw new ShapeException($"Dropout backward: expected an upstream gradient of the mask's shape {mask.Shape}; found {dy.Shape}.");
        var dx = TensorArena.Uninitialized<float>(dy.Size);
        TensorPrimitives.Multiply(dy.Span, mask.Span, dx);
        return Tensor.Own(dx, dy.Shape);
    }
}
