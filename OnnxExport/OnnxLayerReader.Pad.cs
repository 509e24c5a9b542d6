using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;

namespace Cnn.Onnx;

internal sealed partial class OnnxLayerReader
{
    /// <summary>Pad of a 4-d input on its spatial axes only, with constant pads (an input from opset 11 on, an attribute before).</summary>
    private LeafLayer Pad(NodeProto node, Attributes a, Shape input)
    {
        a.Allow("mode", "pads", "value");
        CheckRank(node, input, 3);
        if (HasInput(node, 3)) throw Unsupported(node, "an axes input; pads must name every axis");
        long[] pads;
        float value;
        if (HasInput(node, 1))
        {
            var p = Constant(node, 1, "pads");
            pads = p.Integers ?? throw new Cnn.Core.FormatException($"{Where(node)}: pads '{p.Name}' is not an integer tensor.");
            value = 0f;
            if (HasInput(node, 2))
            {
                var c = Constant(node, 2, "constant_value");
                if (c.Floats is not { Length: 1 }) throw Unsupported(node, $"a constant_value '{c.Name}' that is not one float");
                value = c.Floats[0];
            }
        }
        else
        {
            pads = a.Ints("pads") ?? throw new Cnn.Core.FormatException($"{Where(node)} has no pads.");
            value = a.Float("value", 0f);
        }
        CheckLength(node, "pads", pads, 8);
        if (pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0)
            throw Unsupported(node, $"pads [{string.Join(", ", pads)}] on the batch or channel axis; Pad2d pads height and width");
        if (pads.Any(v => v < 0 || v > int.MaxValue)) throw Unsupported(node, $"negative pads [{string.Join(", ", pads)}] (cropping)");
        var mode = a.String("mode", "constant") switch
        {
            "constant" => PadMode.Constant,
            "reflect" => PadMode.Reflect,
            "edge" => PadMode.Edge,
            var other => throw Unsupported(node, $"mode \"{other}\"; constant, reflect and edge are supported"),
        };
        // -0 (what the exporter writes for 0, see EmitPad) reads as 0: the layer pads with the same value either way.
        return new Pad2d((int)pads[2], (int)pads[6], (int)pads[3], (int)pads[7], mode, mode == PadMode.Constant && value != 0f ? value : 0f);
    }
}
