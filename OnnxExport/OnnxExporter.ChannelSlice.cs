using Cnn.Dsl;
using Cnn.Onnx.Proto;

namespace Cnn.Onnx;

public static partial class OnnxExporter
{
    private sealed partial class GraphBuilder
    {
        /// <summary>Slice on axis 1 with starts, ends, axes and steps as int64 inputs (inputs from opset 10 on).</summary>
        private void EmitChannelSlice(Node node, ChannelSlice slice, string x, string y) =>
            AddNode(node, "Slice", Inputs(x, Int64Vector(node, "starts", slice.Start), Int64Vector(node, "ends", (long)slice.Start + slice.Count),
                Int64Vector(node, "axes", 1), Int64Vector(node, "steps", 1)), y);

        /// <summary>A one-element int64 initializer.</summary>
        private string Int64Vector(Node node, string what, long value)
        {
            var proto = new TensorProto { Name = Fresh(_valueNames, node.Path + "/" + what), DataType = (int)TensorProto.Types.DataType.Int64 };
            proto.Dims.Add(1);
            proto.Int64Data.Add(value);
            Graph.Initializer.Add(proto);
            return proto.Name;
        }
    }
}
