using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;

namespace Cnn.Onnx;

// Pooling windows, channel pooling and LRN as ONNX nodes, and the Reshape they go through.
public static partial class OnnxExporter
{
    private sealed partial class GraphBuilder
    {
        /// <summary>
        /// Channel pooling as Reshape to <c>[N, 1, C, spatial]</c>, a <c>[k, 1]</c> MaxPool or AveragePool that slides along
        /// the channels, and Reshape back: the same maxima or means of the same elements, with no transposition.
        /// </summary>
        private void EmitChannelPool(Node node, string op, int kernel, int stride, string x, string y)
        {
            int channels = node.Input[0], positions = node.Input.Size / Math.Max(1, channels);
            var folded = new Shape(1, channels, positions);
            var pooled = new Shape(1, node.Output[0], positions);
            string a = Fresh(_valueNames, node.Path + "/folded"), b = Fresh(_valueNames, node.Path + "/pooled");
            AddNode(node, "Reshape", Inputs(x, ShapeConstant(node, folded)), a, ReshapeAttributes());
            Graph.ValueInfo.Add(ValueInfo(a, folded));
            var window = new[] { Ints("kernel_shape", kernel, 1), Ints("strides", stride, 1), Ints("pads", 0, 0, 0, 0), Int("ceil_mode", 0) };
            AddNode(node, op, Inputs(a), b, op == "MaxPool"
                ? window.Append(Ints("dilations", 1, 1)).Append(Int("storage_order", 0)).ToArray()
                : window.Append(Int("count_include_pad", 0)).ToArray());
            Graph.ValueInfo.Add(ValueInfo(b, pooled));
            AddNode(node, "Reshape", Inputs(b, ShapeConstant(node, node.Output)), y, ReshapeAttributes());
        }

        /// <summary>
        /// ONNX's ceil mode and pads for a 2-d pooling window. In ceil mode our window follows PyTorch's rule (no window
        /// starts in the end padding), which ONNX's shape inference lacks: where the rule drops a window, the same windows
        /// are written with ceil mode off or with less end padding (see <see cref="PoolWindows"/>).
        /// </summary>
        private static (bool Ceil, long[] Pads) Window(Node node, int[] kernel, int[] stride, int[] pad, bool ceil, bool padCounts)
        {
            var size = new[] { node.Input[1], node.Input[2] };
            var found = PoolWindows.ToOnnx(size, kernel, stride, pad, ceil, padCounts)
                ?? throw new CnnException(
                    $"ONNX export: layer '{node.Path}' ({node.Layer}) on input {node.Input}: no ONNX pooling window has the same windows and divisors " +
                    "(ceil mode drops a last window that starts in the padding, and an average that counts padding divides the windows at the edge " +
                    "differently); use ceil mode off or an average that does not count padding.");
            return (found.Ceil, new long[] { pad[0], pad[1], found.End[0], found.End[1] });
        }

        private static AttributeProto[] LrnAttributes(Lrn l) =>
            new[] { Float("alpha", l.Alpha), Float("beta", l.Beta), Float("bias", l.K), Int("size", l.Size) };

        /// <summary>
        /// LRN of a sample that is not <c>[C, H, W]</c>: ONNX Runtime's kernel takes only 4-d input, and the
        /// normalisation runs across channels alone, so the spatial axes are folded into one (<c>[N, C, positions, 1]</c>)
        /// around it.
        /// </summary>
        private void EmitFlatLrn(Node node, Lrn l, string x, string y)
        {
            int channels = node.Input[0];
            var folded = new Shape(channels, node.Input.Size / Math.Max(1, channels), 1);
            string a = Fresh(_valueNames, node.Path + "/folded"), b = Fresh(_valueNames, node.Path + "/normalised");
            AddNode(node, "Reshape", Inputs(x, ShapeConstant(node, folded)), a, ReshapeAttributes());
            Graph.ValueInfo.Add(ValueInfo(a, folded));
            AddNode(node, "LRN", Inputs(a), b, LrnAttributes(l));
            Graph.ValueInfo.Add(ValueInfo(b, folded));
            AddNode(node, "Reshape", Inputs(b, ShapeConstant(node, node.Output)), y, ReshapeAttributes());
        }

        private AttributeProto[] ReshapeAttributes() => _opset >= 14 ? new[] { Int("allowzero", 0) } : Array.Empty<AttributeProto>();

        /// <summary>An int64 initializer <c>[0, ...perSample]</c> for Reshape: 0 keeps the input's batch size.</summary>
        private string ShapeConstant(Node node, Shape perSample)
        {
            var proto = new TensorProto { Name = Fresh(_valueNames, node.Path + "/shape"), DataType = (int)TensorProto.Types.DataType.Int64 };
            proto.Dims.Add(perSample.Rank + 1);
            proto.Int64Data.Add(0);
            foreach (var d in perSample) proto.Int64Data.Add(d);
            Graph.Initializer.Add(proto);
            return proto.Name;
        }
    }
}
