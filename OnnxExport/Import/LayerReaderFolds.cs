using Cnn.Core;
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
    /// or scales its weight and bias, when the layer is a convolution, a Dense or a batch normalisation.
    /// </summary>
    public LeafItem Fold(LeafItem previous, NodeProto node)
    {
        new Attributes(node, Where(node)).Allow();
        CheckExtraOutputs(node);
        bool constantFirst = node.Input.Count == 2 && constants.Contains(node.Input[0]);
        if (node.Input.Count != 2) throw new FormatException($"{Where(node)} should have two inputs.");
        if (constantFirst && node.OpType is "Sub" or "Div")
            throw Unsupported(node, $"a constant first operand ({node.OpType} of a constant by the data), which no layer computes");
        var c = Constant(node, constantFirst ? 0 : 1, "operand");
        if (c.Floats is null) throw Unsupported(node, "an integer operand on float data");
        var output = previous.Output;
        var perChannel = PerChannel(node, c, output);
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
        if (biased is not var (withBias, hasBias))
            throw Unsupported(node,
                $"a constant operand after a {layer.Kind} layer (node '{previous.NodeName}'); a constant that {FoldedVerb(node.OpType)} per channel is folded only into " +
                "a convolution, Dense or batch normalisation right before it, and no layer of its own expresses it");
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

    /// <summary>The constant's value for each channel of <paramref name="output"/>, or why it is not per channel.</summary>
    private float[] PerChannel(NodeProto node, OnnxConstant c, Shape output)
    {
        int rank = output.Rank + 1, channels = output[0];
        if (c.Dims.Length > rank) throw Unsupported(node, $"a constant operand of rank {c.Dims.Length} on data of rank {rank}");
        if (c.Count == 1) return Enumerable.Repeat(c.Floats![0], channels).ToArray();
        var dims = Enumerable.Repeat(1L, rank - c.Dims.Length).Concat(c.Dims).ToArray();
        bool perChannel = dims[0] == 1 && dims[1] == channels && dims.Skip(2).All(d => d == 1);
        if (!perChannel)
            throw Unsupported(node,
                $"a constant operand of shape [{string.Join(", ", c.Dims)}] on data [N, {string.Join(", ", output)}], which is not one value per channel; " +
                "no layer adds or multiplies by a constant tensor");
        return c.Floats!;
    }

    private LeafLayer MatMul(NodeProto node, Shape input, List<(string, Tensor)> parameters)
    {
        if (input.Rank != 1) throw Unsupported(node, $"an input of rank {input.Rank + 1}; a product with a constant matrix is read as Dense, which takes [N, features]");
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

    private LeafLayer Reduce(NodeProto node, Attributes a, Shape input)
    {
        a.Allow("axes", "keepdims", "noop_with_empty_axes");
        // Opset 18 moved ReduceMean's and ReduceMax's axes from an attribute to an optional second input.
        long[]? axes = HasInput(node, 1) ? Constant(node, 1, "axes").Integers : a.Ints("axes");
        int rank = input.Rank + 1;
        var spatial = Enumerable.Range(2, Math.Max(0, rank - 2)).Select(i => (long)i).ToHashSet();
        var given = axes?.Select(x => x < 0 ? x + rank : x).ToHashSet();
        if (given is null || !given.SetEquals(spatial) || spatial.Count == 0)
            throw Unsupported(node, $"a reduction over axes [{string.Join(", ", axes ?? Array.Empty<long>())}] of input [N, {string.Join(", ", input)}]; only every spatial axis (global pooling) is read");
        return new GlobalPool(node.OpType == "ReduceMean" ? PoolOp.Average : PoolOp.Max);
    }
}
