using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>Flattens each sample to one axis (row-major, as PyTorch's <c>nn.Flatten</c> and ONNX's Flatten with axis 1).</summary>
public sealed record Flatten : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "flatten";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) => new(input.Size);
}

/// <summary>Gives each sample a new shape with the same number of elements (row-major; no copy).</summary>
/// <param name="Target">The per-sample shape, e.g. <c>[128, 7, 7]</c>.</param>
public sealed record Reshape(Shape Target) : LeafLayer
{
    /// <summary>Reshapes each sample to the given dimensions.</summary>
    public Reshape(params int[] dims) : this(new Shape(dims)) { }

    /// <inheritdoc />
    public override string Kind => "reshape";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) =>
        input.Size == Target.Size ? Target
        : throw new ShapeException($"Layer '{path}': cannot reshape a sample of shape {input} ({input.Size} elements) to {Target} ({Target.Size} elements).");
}

/// <summary>The identity: the shortcut of a residual block.</summary>
public sealed record Identity : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "identity";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) => input;
}

/// <summary>
/// ShuffleNet's channel shuffle: the channels, seen as <c>Groups</c> groups of <c>C/Groups</c>, are interleaved (output channel
/// <c>j*Groups + i</c> is input channel <c>i*(C/Groups) + j</c>), as PyTorch's <c>ChannelShuffle</c>; so that grouped
/// convolutions that follow see channels of every group.
/// </summary>
/// <param name="Groups">The number of groups; the channels must be a multiple of it.</param>
public sealed record ChannelShuffle(int Groups) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "shuffle";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) =>
        Groups >= 1 && input.Rank >= 1 && input[0] % Groups == 0 ? input
        : throw new ShapeException($"Layer '{path}': ChannelShuffle needs [C, ...] per sample with C a multiple of its {Groups} groups (at least 1); found {input}.");
}
