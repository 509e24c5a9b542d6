using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// Batch normalisation over the channel axis (axis 1 of the batch), as PyTorch's <c>BatchNorm1d</c> (input
/// <c>[C]</c> or <c>[C, L]</c>) and <c>BatchNorm2d</c> (input <c>[C, H, W]</c>). In training it normalises with the
/// batch's statistics and returns updated running statistics in the state
/// (<c>running = (1 - Momentum) * running + Momentum * batch</c>, the variance unbiased, as PyTorch); in inference it
/// uses the running statistics. Parameters <c>weight</c> (γ, ones) and <c>bias</c> (β, zeros); state
/// <c>running_mean</c> (zeros) and <c>running_var</c> (ones).
/// </summary>
/// <param name="Momentum">Weight of the new batch in the running statistics (PyTorch's 0.1; Keras's momentum 0.99 is 0.01 here).</param>
/// <param name="Epsilon">Added to the variance (default 1e-5, PyTorch's; Keras uses 1e-3).</param>
public sealed record BatchNorm(float Momentum = 0.1f, float Epsilon = 1e-5f) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "bn";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Momentum is < 0f or > 1f || !(Epsilon > 0f))
            throw new ShapeException($"Layer '{path}': BatchNorm needs 0 <= momentum <= 1 and epsilon > 0; found {this}.");
        if (input.Rank < 1) throw new ShapeException($"Layer '{path}': BatchNorm expects [C, ...] per sample; found {input}.");
        return input;
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input) => new[]
    {
        new ParameterSpec("weight", new Shape(input[0]), 1, 1, false) { Init = ParameterInit.Ones },
        new ParameterSpec("bias", new Shape(input[0]), 1, 1, true) { Init = ParameterInit.Zeros },
    };

    /// <inheritdoc />
    public override IReadOnlyList<StateSpec> StateSpecs(Shape input) => new[]
    {
        new StateSpec("running_mean", new Shape(input[0]), 0f),
        new StateSpec("running_var", new Shape(input[0]), 1f),
    };
}

/// <summary>
/// Local response normalisation across channels (AlexNet), in PyTorch's and ONNX's convention:
/// <c>b_c = a_c / (K + Alpha/Size * Σ a_c'²)^Beta</c> over a window of <c>Size</c> channels around c.
/// The AlexNet paper writes <c>Alpha</c> without the division by the size: use <see cref="FromPaper"/> for its numbers.
/// </summary>
/// <param name="Size">Channels in the window (default 5).</param>
/// <param name="Alpha">Scale, divided by <c>Size</c> in the formula (default 1e-4, PyTorch's).</param>
/// <param name="Beta">Exponent (default 0.75).</param>
/// <param name="K">Additive constant (default 1, PyTorch's; the paper uses 2).</param>
public sealed record Lrn(int Size = 5, float Alpha = 1e-4f, float Beta = 0.75f, float K = 1f) : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "lrn";

    /// <summary>The layer for the AlexNet paper's constants (n = 5, α = 1e-4, β = 0.75, k = 2 there), whose α is not divided by n.</summary>
    public static Lrn FromPaper(int size, float paperAlpha, float beta, float k) => new(size, paperAlpha * size, beta, k);

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Size < 1) throw new ShapeException($"Layer '{path}': LRN needs size >= 1; found {Size}.");
        if (input.Rank < 2) throw new ShapeException($"Layer '{path}': LRN expects [C, spatial...] per sample; found {input}.");
        return input;
    }
}

/// <summary>
/// Inverted dropout: in training, each element is zeroed with probability <c>P</c> and the survivors scaled by
/// <c>1/(1-P)</c>, drawn from the random generator given to apply; in inference it is the identity.
/// </summary>
/// <param name="P">Drop probability in [0, 1).</param>
public sealed record Dropout(float P = 0.5f) : ElementwiseLayer
{
    /// <inheritdoc />
    public override string Kind => "dropout";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) =>
        P is >= 0f and < 1f ? input : throw new ShapeException($"Layer '{path}': Dropout needs 0 <= p < 1; found {P}.");
}
