using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>Flattens each sample to one axis (row-major, as PyTorch's and ONNX's Flatten with axis 1).</summary>
public sealed record Flatten : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "flatten";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) => new(input.Size);
}
