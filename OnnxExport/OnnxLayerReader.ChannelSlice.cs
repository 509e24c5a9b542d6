using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;

namespace Cnn.Onnx;

internal sealed partial class OnnxLayerReader
{
    /// <summary>Slice of the channel axis alone with step 1 (starts, ends, axes and steps as constant inputs, from opset 10 on).</summary>
    private LeafLayer Slice(NodeProto node, Attributes a, Shape input)
    {
        a.Allow();
        if (input.Rank < 1) throw Unsupported(node, "an input without a channel axis");
        // Without axes every axis is sliced, the batch axis 0 among them.
        var allAxes = HasInput(node, 3) ? Constant(node, 3, "axes").Integers : Enumerable.Range(0, input.Rank + 1).Select(i => (long)i).ToArray();
        if (allAxes is not null && allAxes.Any(x => x == 0 || x == -(input.Rank + 1)))
            throw Unsupported(node, $"a slice along axes [{string.Join(", ", allAxes)}], the batch axis 0 among them, which a batch-first network cannot mean (a layer takes every sample of a batch)");
        long[] Ints(int index, string role, long fallback)
        {
            if (!HasInput(node, index)) return new[] { fallback };
            var c = Constant(node, index, role);
            return c.Integers is { Length: 1 } v ? v : throw Unsupported(node, $"{role} '{c.Name}' that is not one integer; only the channel axis is sliced");
        }
        long axis = Ints(3, "axes", 1)[0], step = Ints(4, "steps", 1)[0];
        if (axis != 1 && axis != 1 - (input.Rank + 1)) throw Unsupported(node, $"axis {axis}; only the channel axis 1 is sliced");
        if (step != 1) throw Unsupported(node, $"step {step}; channel slices are contiguous");
        long channels = input[0];
        // ONNX counts negative bounds from the end and clamps both to [0, channels].
        long Bound(long v) => Math.Clamp(v < 0 ? v + channels : v, 0, channels);
        long start = Bound(Ints(1, "starts", 0)[0]), end = Bound(Ints(2, "ends", channels)[0]);
        if (end <= start) throw Unsupported(node, $"an empty slice [{start}, {end}) of {channels} channels");
        return new ChannelSlice((int)start, (int)(end - start));
    }
}
