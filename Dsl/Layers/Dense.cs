using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// Affine layer <c>y = x W^T + b</c> on a flat input <c>[InFeatures]</c> per sample. Weight shape
/// <c>[Units, InFeatures]</c> (PyTorch's layout), bias <c>[Units]</c>. A multi-axis input is an error:
/// put a <see cref="Flatten"/> before it, so that the flattening is explicit in the description.
/// </summary>
/// <param name="Units">Output features.</param>
/// <param name="UseBias">Whether the layer adds a bias (default true).</param>
public sealed record Dense(int Units, bool UseBias = true) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "dense";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Units < 1) throw new ShapeException($"Layer '{path}': Dense needs units >= 1; found {Units}.");
        if (input.Rank != 1)
            throw new ShapeException($"Layer '{path}': Dense expects a flat input [features] per sample; found {input}. Put a Flatten before it.");
        return new Shape(Units);
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input)
    {
        var w = new ParameterSpec("weight", new Shape(Units, input[0]), input[0], Units, false);
        return UseBias ? new[] { w, new ParameterSpec("bias", new Shape(Units), input[0], Units, true) } : new[] { w };
    }
}
