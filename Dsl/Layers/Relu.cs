using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>The rectifier <c>max(x, 0)</c>, element-wise; any input shape.</summary>
public sealed record Relu : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "relu";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) => input;
}
