using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// Channels <c>[Start, Start + Count)</c> of each sample (ONNX's Slice on axis 1): ShuffleNet v2's channel split is a
/// <see cref="FanOut"/> whose branches begin with slices of the input's two halves, joined by concatenation.
/// </summary>
/// <param name="Start">The first channel taken.</param>
/// <param name="Count">How many channels are taken (at least 1).</param>
public sealed record ChannelSlice(int Start, int Count) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "slice";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (input.Rank < 1 || Start < 0 || Count < 1 || (long)Start + Count > input[0])
            throw new ShapeException($"Layer '{path}': ChannelSlice takes channels [{Start}, {(long)Start + Count}), which must lie within the {(input.Rank < 1 ? 0 : input[0])} channels of {input}.");
        var dims = input.ToArray();
        dims[0] = Count;
        return new Shape(dims);
    }
}
