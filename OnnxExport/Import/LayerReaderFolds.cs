using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using Cnn.Onnx.Proto;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Onnx;

/// <summary>
/// The rules that read an operation into the layer before it (a constant Add, Sub, Mul or Div becomes that layer's
/// bias or scale) and the operations that are a layer only in some forms (MatMul by a constant matrix, a mean or
/// maximum over every spatial axis).
/// </summary>
internal sealed partial class OnnxLayerReader
{
    /// <summary>Element-wise operations with one constant operand, folded into the layer before them.</summary>
    public static readonly IReadOnlySet<string> FoldedOperations = new HashSet<string>(StringComparer.Ordinal) { "Add", "Sub", "Mul", "Div" };

    /// <summary>What the operation does, for messages ("adds", "multiplies by").</summary>
    public static string FoldedVerb(string op) => op switch { "Add" => "adds", "Sub" => "subtracts", "Mul" => "multiplies by", _ => "divides by" };

    /// <summary>
    /// <paramref name="previous"/> followed by <paramref name="node"/>, an Add, Sub, Mul or Div whose other operand is a
    /// constant with one value per output channel (or one value in all): the constant becomes part of the layer's bias,
    /// or scales its weight and bias, when the layer is a convolution, a Dense or a batch normalisation. Null when the
    /// constant or the layer is of another kind (the node is then a <see cref="ConstantOperand"/> of its own).
    /// </summary>
    public LeafItem? TryFold(LeafItem previous, NodeProto node)
    {
        new Attributes(node, Where(node)).Allow();
        CheckExtraOutputs(node);
        if (node.Input.Count != 2) throw new FormatException($"{Where(node)} should have two inputs.");
        bool constantFirst = constants.Contains(node.Input[0]);
        if (constantFirst && node.OpType is "Sub" or "Div") return null;
        var c = Constant(node, constantFirst ? 0 : 1, "operand");
        if (c.Floats is null) throw Unsupported(node, "an integer operand on float data");
        var output = previous.Output;
        if (PerChannel(node, c, output) is not { } perChannel) return null;
        bool scale = node.OpType is "Mul" or "Div";
        var values = perChannel.Select(v => node.OpType switch { "Sub" => -v, "Div" => 1f / v, _ => v }).ToArray();
        var layer = previous.Layer;
        var parameters = previous.Parameters.ToList();
        Tensor? Find(string local) => parameters.FirstOrDefault(p => p.Local == local).Value;
        void Set(string local, Tensor t)
        {
            int i = parameters.FindIndex(p => p.Local == local);
            if (i >= 0) parameters[i] = (local, t);
            else parameters.Add((local, t));
        }
        int channels = output[0];
        (LeafLayer WithBias, bool HasBias)? biased = layer switch
        {
            Dense d => (d with { UseBias = true }, d.UseBias),
            Conv1d d => (d with { UseBias = true }, d.UseBias),
            Conv2d d => (d with { UseBias = true }, d.UseBias),
            Conv3d d => (d with { UseBias = true }, d.UseBias),
            ConvTranspose2d d when !scale => (d with { UseBias = true }, d.UseBias),
            Cnn.Dsl.BatchNorm => (layer, true),
            _ => null,
        };
        if (biased is not var (withBias, hasBias)) return null;
        var bias = hasBias ? Find("bias")!.ToArray() : new float[channels];
        if (scale)
        {
            var w = Find("weight")!;
            var data = w.ToArray();
            int per = data.Length / channels;
            for (int k = 0; k < channels; k++)
                for (int i = 0; i < per; i++) data[k * per + i] *= values[k];
            Set("weight", Tensor.Own(data, w.Shape));
            for (int k = 0; k < channels; k++) bias[k] *= values[k];
        }
        else
        {
            for (int k = 0; k < channels; k++) bias[k] += values[k];
        }
        Set("bias", Tensor.Own(bias, new Shape(channels)));
        // The layer's tensors are no longer copies of the initializers it read: the report must not list them as shared.
        Uses.RemoveAll(u => u.Node == previous.NodeName);
        return previous with { Layer = withBias, Parameters = parameters };
    }

    /// <summary>The constant's value for each channel of <paramref name="output"/>, or null when it is not one value per channel.</summary>
    private static float[]? PerChannel(NodeProto node, OnnxConstant c, Shape output)
    {
        int rank = output.Rank + 1;
        if (output.Rank == 0 || c.Dims.Length > rank) return null;
        int channels = output[0];
        if (c.Count == 1) return Enumerable.Repeat(c.Floats![0], channels).ToArray();
        var dims = Enumerable.Repeat(1L, rank - c.Dims.Length).Concat(c.Dims).ToArray();
        return dims[0] == 1 && dims[1] == channels && dims.Skip(2).All(d => d == 1) ? c.Floats : null;
    }

    /// <summary>
    /// An Add, Sub, Mul or Div of the data (per-sample shape <paramref name="input"/>) and a constant that broadcasts over each
    /// sample, as a <see cref="ConstantOperand"/> holding the constant: the constant's axes are aligned from the right as ONNX
    /// broadcasts, and its batch axis, if it has one, must be 1 (a constant that differs from one sample of the batch to the next
    /// is no layer's). A constant first operand is read for the commutative Add and Mul only.
    /// </summary>
    public LeafItem ConstantOperand(NodeProto node, Shape input)
    {
        new Attributes(node, Where(node)).Allow();
        CheckExtraOutputs(node);
        if (node.Input.Count != 2) throw new FormatException($"{Where(node)} should have two inputs.");
        bool constantFirst = constants.Contains(node.Input[0]);
        if (constantFirst && node.OpType is "Sub" or "Div")
            throw Unsupported(node, $"a constant first operand ({node.OpType} of a constant by the data); ConstantOperand computes the data {FoldedVerb(node.OpType)} the constant, not the reverse");
        var c = Constant(node, constantFirst ? 0 : 1, "value");
        if (c.Floats is null) throw Unsupported(node, "an integer operand on float data");
        int rank = input.Rank + 1;
        string data = $"data [N{string.Concat(input.Select(d => ", " + d))}]", constant = $"a constant operand '{c.Name}' of shape [{string.Join(", ", c.Dims)}]";
        if (c.Dims.Length > rank) throw Unsupported(node, $"{constant} on {data}, of a higher rank than the data");
        var dims = Enumerable.Repeat(1L, rank - c.Dims.Length).Concat(c.Dims).ToArray();
        if (dims[0] != 1)
            throw Unsupported(node,
                $"{constant} on {data}, whose first axis is the batch axis: it differs from one sample of a batch to the next, which a batch-first network cannot mean " +
                "(a layer's tensors are the same for every sample)");
        for (int i = 1; i < rank; i++)
            if (dims[i] != 1 && dims[i] != input[i - 1])
                throw Unsupported(node, $"{constant} on {data}: its axis {i} of size {dims[i]} does not broadcast over the data's {input[i - 1]}");
        var shape = new Shape(dims.Skip(1).Select(d => (int)d).ToArray());
        var op = node.OpType switch { "Add" => BinaryOp.Add, "Sub" => BinaryOp.Subtract, "Mul" => BinaryOp.Multiply, _ => BinaryOp.Divide };
        var layer = new ConstantOperand(op, shape);
        return new LeafItem(layer, node.Name, OutputShape(layer, node, input), new[] { ("value", Tensor.FromArray(c.Floats.ToArray(), shape)) }, Array.Empty<(string, Tensor)>());
    }

    private LeafLayer MatMul(NodeProto node, Shape input, List<(string, Tensor)> parameters)
    {
        if (input.Rank != 1) return BatchedMatMul(node, input, parameters);
        var b = Constant(node, 1, "weight");
        if (b.Floats is null || b.Dims.Length != 2) throw Unsupported(node, $"a second operand '{b.Name}' that is not a 2-d float matrix");
        int features = checked((int)b.Dims[0]), units = checked((int)b.Dims[1]);
        if (features != input[0]) throw new FormatException($"{Where(node)}: the matrix '{b.Name}' has shape [{features}, {units}], which does not fit {input[0]} input features.");
        var w = new float[units * features];
        for (int u = 0; u < units; u++)
            for (int f = 0; f < features; f++) w[u * features + f] = b.Floats[f * units + u];
        parameters.Add(("weight", Tensor.Own(w, new Shape(units, features))));
        return new Dense(units, UseBias: false);
    }

    /// <summary>
    /// A product of each of a sample's matrices <c>[N, G..., R, K]</c> with a constant <c>[G..., K, M]</c> (a leading 1 for the
    /// batch allowed, as numpy broadcasts it): <see cref="Dsl.MatMul"/>. A constant whose leading axes broadcast inside the
    /// sample would tie several of the layer's matrices together, and one whose first axis is the batch's differs per sample.
    /// </summary>
    private LeafLayer BatchedMatMul(NodeProto node, Shape input, List<(string, Tensor)> parameters)
    {
        var b = Constant(node, 1, "weight");
        if (b.Floats is null) throw Unsupported(node, $"a second operand '{b.Name}' that is not a float tensor");
        var dims = b.Dims.Length == input.Rank + 1 && b.Dims[0] == 1 ? b.Dims[1..] : b.Dims;
        var lead = input.Take(input.Rank - 2).Select(d => (long)d).ToArray();
        if (dims.Length != input.Rank || !dims[..^2].SequenceEqual(lead) || dims[^2] != input[input.Rank - 1])
            throw Unsupported(node, b.Dims.Length == input.Rank + 1 && b.Dims[0] != 1
                ? $"a constant operand '{b.Name}' of shape [{string.Join(", ", b.Dims)}] on data [N, {string.Join(", ", input)}], whose first axis is the batch axis: it differs from one sample of a batch to the next, which a batch-first network cannot mean"
                : $"a constant operand '{b.Name}' of shape [{string.Join(", ", b.Dims)}] on data [N, {string.Join(", ", input)}]; MatMul takes one [K, M] matrix per matrix of the sample, shape [{string.Join(", ", lead.Append(input[input.Rank - 1]))}, M]");
        parameters.Add(("weight", Tensor.FromArray(b.Floats, dims.Select(d => checked((int)d)).ToArray())));
        return new Dsl.MatMul(checked((int)dims[^1]));
    }

    /// <summary>
    /// ReduceMean or ReduceMax over every spatial axis (global pooling) or over the channel axis alone (channel pooling
    /// whose one window holds every channel, output <c>[1, spatial...]</c>); keepdims 0 was rewritten into keepdims 1
    /// and a Squeeze (<see cref="GraphRewrites"/>).
    /// </summary>
    private LeafLayer Reduce(NodeProto node, Attributes a, Shape input)
    {
        a.Allow("axes", "keepdims", "noop_with_empty_axes");
        // Opset 18 moved ReduceMean's and ReduceMax's axes from an attribute to an optional second input.
        long[]? axes = HasInput(node, 1) ? Constant(node, 1, "axes").Integers : a.Ints("axes");
        int rank = input.Rank + 1;
        bool mean = node.OpType == "ReduceMean";
        string over = $"a reduction over axes [{string.Join(", ", axes ?? Array.Empty<long>())}] of input [N, {string.Join(", ", input)}]";
        if (axes is null or { Length: 0 })
            throw Unsupported(node, $"{over}: no axes reduce every axis, the batch axis 0 included, which mixes the samples of a batch");
        var given = axes.Select(x => x < 0 ? x + rank : x).ToHashSet();
        if (given.Contains(0)) throw Unsupported(node, $"{over}, which include the batch axis 0");
        var spatial = Enumerable.Range(2, Math.Max(0, rank - 2)).Select(i => (long)i).ToHashSet();
        if (given.SetEquals(spatial) && spatial.Count > 0) return new GlobalPool(mean ? PoolOp.Average : PoolOp.Max);
        if (given.SetEquals(new[] { 1L }) && input.Rank >= 2)
            return mean ? new ChannelAvgPool(input[0], input[0]) : new ChannelMaxPool(input[0], input[0]);
        throw Unsupported(node, $"{over}; only every spatial axis (global pooling) or the channel axis of a sample with spatial axes (channel pooling) is read");
    }
}
