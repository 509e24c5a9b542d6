using Cnn.Dsl;
using Cnn.Onnx.Proto;

namespace Cnn.Onnx;

public static partial class OnnxExporter
{
    private sealed partial class GraphBuilder
    {
        /// <summary>
        /// Pad with the pads as an int64 input <c>[0, 0, top, left, 0, 0, bottom, right]</c> (an input from opset 11 on) and the
        /// constant as a float scalar input; the mode is ONNX's constant, reflect or edge. A constant 0 is written as -0: ONNX Runtime's
        /// graph optimizer fuses a Pad by exactly +0 into a following MaxPool or AveragePool's own pads, which for MaxPool means
        /// padding with -inf instead of 0 (other results where a window's inputs are all negative) and which it then refuses to
        /// load when the pads reach the window's size ("Pad should be smaller than kernel"). -0 compares and adds as 0, so every
        /// consumer computes the same values, up to the sign of an exact zero result.
        /// </summary>
        private void EmitPad(Node node, Pad2d pad, string x, string y)
        {
            var pads = new TensorProto { Name = Fresh(_valueNames, node.Path + "/pads"), DataType = (int)TensorProto.Types.DataType.Int64 };
            pads.Dims.Add(8);
            pads.Int64Data.AddRange(new long[] { 0, 0, pad.Top, pad.Left, 0, 0, pad.Bottom, pad.Right });
            Graph.Initializer.Add(pads);
            string mode = pad.Mode switch { PadMode.Reflect => "reflect", PadMode.Edge => "edge", _ => "constant" };
            var inputs = pad.Mode == PadMode.Constant ? Inputs(x, pads.Name, FloatScalar(node, "value", pad.Value == 0f ? -0f : pad.Value)) : Inputs(x, pads.Name);
            AddNode(node, "Pad", inputs, y, new AttributeProto { Name = "mode", Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8(mode) });
        }
    }
}
