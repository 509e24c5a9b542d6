using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>An element-wise layer: any input shape, the same output shape, no parameters.</summary>
public abstract record ElementwiseLayer : LeafLayer
{
    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) => input;
}

/// <summary>The rectifier <c>max(x, 0)</c>.</summary>
public sealed record Relu : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "relu";
}

/// <summary>Leaky rectifier: <c>x</c> for positive x, <c>Slope * x</c> otherwise (PyTorch's default slope 0.01; Keras's is 0.3).</summary>
/// <param name="Slope">The slope for negative inputs.</param>
public sealed record LeakyRelu(float Slope = 0.01f) : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "lrelu";
}

/// <summary>Exponential linear unit: <c>x</c> for positive x, <c>Alpha * (exp(x) - 1)</c> otherwise.</summary>
/// <param name="Alpha">The saturation value for large negative inputs (default 1).</param>
public sealed record Elu(float Alpha = 1f) : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "elu";
}

/// <summary>The logistic function <c>1 / (1 + exp(-x))</c>.</summary>
public sealed record Sigmoid : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "sigmoid";
}

/// <summary>The hyperbolic tangent.</summary>
public sealed record Tanh : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "tanh";
}

/// <summary>
/// Hard tanh: the input clipped to [<c>Min</c>, <c>Max</c>] (PyTorch's <c>Hardtanh</c>, ONNX's Clip). <see cref="Relu6"/>, the
/// clip to [0, 6] of MobileNet, is this layer with bounds 0 and 6. A bound may be infinite, which leaves that side unclipped:
/// <c>new HardTanh(float.NegativeInfinity, 0f)</c> is <c>min(x, 0)</c>, ONNX's Clip with only a maximum.
/// </summary>
/// <param name="Min">The lower bound (default -1); finite or negative infinity.</param>
/// <param name="Max">The upper bound (default 1); above <c>Min</c>, finite or positive infinity.</param>
public sealed record HardTanh(float Min = -1f, float Max = 1f) : ElementwiseLayer
{
    /// <summary>ReLU6, <c>min(max(x, 0), 6)</c>: MobileNet's activation.</summary>
    public static HardTanh Relu6 => new(0f, 6f);

    /// <inheritdoc />
    public override string Kind => "hardtanh";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) =>
        Min < Max && Min != float.PositiveInfinity && Max != float.NegativeInfinity ? input
        : throw new ShapeException($"Layer '{path}': HardTanh needs min < max, each finite or infinite on its own side (min -inf, max +inf); found min {Min}, max {Max}.");
}

/// <summary>
/// Hard sigmoid <c>clamp(Alpha * x + Beta, 0, 1)</c> (ONNX's HardSigmoid). The defaults, alpha 1/6 and beta 1/2, are PyTorch's
/// <c>Hardsigmoid</c>, <c>relu6(x + 3) / 6</c>, and are computed as PyTorch computes it; Keras's is alpha 0.2, beta 0.5 (ONNX's defaults).
/// </summary>
/// <param name="Alpha">The slope (default 1/6); finite.</param>
/// <param name="Beta">The offset (default 1/2); finite.</param>
public sealed record HardSigmoid(float Alpha = 1f / 6f, float Beta = 0.5f) : ElementwiseLayer
{
    /// <summary>True for PyTorch's hard sigmoid, alpha 1/6 and beta 1/2, which every interpreter writes as PyTorch's own operation.</summary>
    public bool IsPyTorch => Alpha == 1f / 6f && Beta == 0.5f;

    /// <inheritdoc />
    public override string Kind => "hardsigmoid";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) =>
        float.IsFinite(Alpha) && float.IsFinite(Beta) ? input
        : throw new ShapeException($"Layer '{path}': HardSigmoid needs a finite alpha and beta; found alpha {Alpha}, beta {Beta}.");
}

/// <summary>Hard swish <c>x * relu6(x + 3) / 6</c>, PyTorch's <c>Hardswish</c>: MobileNet v3's activation.</summary>
public sealed record HardSwish : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "hardswish";
}

/// <summary>SiLU (swish) <c>x * sigmoid(x)</c>, PyTorch's <c>SiLU</c>: EfficientNet's activation.</summary>
public sealed record Silu : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "silu";
}

/// <summary>GELU <c>x * Φ(x)</c>, Φ the standard normal distribution function: PyTorch's exact <c>GELU</c> (approximate "none").</summary>
public sealed record Gelu : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "gelu";
}

/// <summary>
/// Softmax along an axis of the batched tensor (as PyTorch's <c>dim</c> and ONNX's <c>axis</c>; default -1, the
/// last). The batch axis 0 is not allowed. For classification, train on logits with softmax cross-entropy
/// rather than ending the network in Softmax.
/// </summary>
/// <param name="Axis">The axis, counted on the batched tensor; negative counts from the end.</param>
public sealed record Softmax(int Axis = -1) : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "softmax";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        AxisRule.Check(Axis, input, path, "Softmax");
        return input;
    }
}

/// <summary>Log-softmax along an axis of the batched tensor (default -1); pair it with the negative log-likelihood loss.</summary>
/// <param name="Axis">The axis, counted on the batched tensor; negative counts from the end.</param>
public sealed record LogSoftmax(int Axis = -1) : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "logsoftmax";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        AxisRule.Check(Axis, input, path, "LogSoftmax");
        return input;
    }
}

/// <summary>Axes of layers are counted on the batched tensor, as in PyTorch and ONNX.</summary>
internal static class AxisRule
{
    /// <summary>The non-negative axis of the batched tensor, or an error if it is the batch axis or out of range.</summary>
    public static int Check(int axis, Shape perSample, string path, string type)
    {
        int rank = perSample.Rank + 1;
        int a = axis < 0 ? axis + rank : axis;
        if (a < 1 || a >= rank)
            throw new ShapeException($"Layer '{path}': {type} axis {axis} must name a non-batch axis of the batched input (rank {rank}, shape [N, {string.Join(", ", perSample)}]).");
        return a;
    }
}
