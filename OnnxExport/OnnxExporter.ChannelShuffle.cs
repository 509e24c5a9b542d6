using Cnn.Core;
using Cnn.Dsl;

namespace Cnn.Onnx;

public static partial class OnnxExporter
{
    private sealed partial class GraphBuilder
    {
        /// <summary>
        /// Channel shuffle as ONNX has no operation for it and PyTorch's exporter writes it: Reshape to
        /// <c>[N, g, C/g, spatial...]</c>, Transpose of the two group axes, Reshape back.
        /// </summary>
        private void EmitChannelShuffle(Node node, ChannelShuffle cs, string x, string y)
        {
            var rest = node.Input.Skip(1).ToArray();
            int perGroup = node.Input[0] / cs.Groups;
            var split = new Shape(new[] { cs.Groups, perGroup }.Concat(rest).ToArray());
            var swapped = new Shape(new[] { perGroup, cs.Groups }.Concat(rest).ToArray());
            string a = Fresh(_valueNames, node.Path + "/split"), b = Fresh(_valueNames, node.Path + "/swapped");
            AddNode(node, "Reshape", Inputs(x, ShapeConstant(node, split)), a, ReshapeAttributes());
            Graph.ValueInfo.Add(ValueInfo(a, split));
            var perm = new long[split.Rank + 1];
            for (int i = 0; i < perm.Length; i++) perm[i] = i;
            (perm[1], perm[2]) = (2, 1);
            AddNode(node, "Transpose", Inputs(a), b, Ints("perm", perm));
            Graph.ValueInfo.Add(ValueInfo(b, swapped));
            AddNode(node, "Reshape", Inputs(b, ShapeConstant(node, node.Output)), y, ReshapeAttributes());
        }
    }
}
