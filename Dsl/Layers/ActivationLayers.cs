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
