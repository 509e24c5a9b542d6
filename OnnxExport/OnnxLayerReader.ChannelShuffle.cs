using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;

namespace Cnn.Onnx;

internal sealed partial class OnnxLayerReader
{
    /// <summary>Reshape to <c>[N, g, C/g, spatial...]</c>, Transpose swapping axes 1 and 2, Reshape back to the input's shape.</summary>
    private LeafItem? TryChannelShuffle(NodeProto fold, NodeProto transpose, NodeProto unfold, Shape input)
    {
        if (fold.OpType != "Reshape" || unfold.OpType != "Reshape" || input.Rank < 1 || transpose.Output.Count != 1) return null;
        var split = TryReshapeTarget(fold, input);
        if (split is null || split.Rank != input.Rank + 1 || split[0] * split[1] != input[0] || !split.Skip(2).SequenceEqual(input.Skip(1))) return null;
        if (transpose.Attribute.Count != 1 || transpose.Attribute[0] is not { Name: "perm", Type: AttributeProto.Types.AttributeType.Ints } perm) return null;
        var expected = Enumerable.Range(0, split.Rank + 1).Select(i => (long)(i == 1 ? 2 : i == 2 ? 1 : i));
        if (!perm.Ints.SequenceEqual(expected)) return null;
        var swapped = new Shape(new[] { split[1], split[0] }.Concat(split.Skip(2)).ToArray());
        if (TryReshapeTarget(unfold, swapped) != input) return null;
        return new LeafItem(new ChannelShuffle(split[0]), fold.Name, input, Array.Empty<(string, Tensor)>(), Array.Empty<(string, Tensor)>());
    }
}
