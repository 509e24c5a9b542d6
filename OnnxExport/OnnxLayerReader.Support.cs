using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;
using AttributeType = Cnn.Onnx.Proto.AttributeProto.Types.AttributeType;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Onnx;

// The rules' common parts: padding, checks of attributes and inputs, constants, output shapes, errors, typed attributes.
internal sealed partial class OnnxLayerReader
{
    /// <summary>The padding before and after each spatial axis, from <c>pads</c> or <c>auto_pad</c>.</summary>
    private (long[] Begin, long[] End) Padding(NodeProto node, Attributes a, Shape input, long[] kernel, long[] strides, long[] dilations)
    {
        int n = kernel.Length;
        string autoPad = a.String("auto_pad", "NOTSET");
        var begin = new long[n];
        var end = new long[n];
        switch (autoPad)
        {
            case "NOTSET":
            {
                var pads = a.Ints("pads") ?? new long[2 * n];
                CheckLength(node, "pads", pads, 2 * n);
                if (pads.Any(p => p < 0)) throw new FormatException($"{Where(node)}: negative padding [{string.Join(", ", pads)}].");
                Array.Copy(pads, 0, begin, 0, n);
                Array.Copy(pads, n, end, 0, n);
                break;
            }
            case "VALID":
                break;
            case "SAME_UPPER":
            case "SAME_LOWER":
                for (int i = 0; i < n; i++)
                {
                    long size = input[i + 1], output = (size + strides[i] - 1) / strides[i];
                    long total = Math.Max(0, (output - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size);
                    (begin[i], end[i]) = autoPad == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2);
                }
                break;
            default:
                throw new FormatException($"{Where(node)}: auto_pad '{autoPad}' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID.");
        }
        return (begin, end);
    }

    private void CheckExtraOutputs(NodeProto node)
    {
        if (node.Output.Count == 0 || node.Output[0].Length == 0) throw new FormatException($"{Where(node)} has no output.");
        foreach (var extra in node.Output.Skip(1))
            if (extra.Length > 0 && isRead(extra))
                throw Unsupported(node, $"a second output '{extra}' that is read; only the main output of an inference layer is supported");
    }

    private void CheckKernelShape(NodeProto node, Attributes a, long[] kernel)
    {
        var declared = a.Ints("kernel_shape");
        if (declared is not null && !declared.SequenceEqual(kernel))
            throw new FormatException($"{Where(node)}: kernel_shape [{string.Join(", ", declared)}] disagrees with the weight's [{string.Join(", ", kernel)}].");
    }

    private void CheckRank(NodeProto node, Shape input, int perSampleRank)
    {
        if (input.Rank != perSampleRank)
            throw new FormatException($"{Where(node)}: expected an input of rank {perSampleRank + 1}; found [N, {string.Join(", ", input)}].");
    }

    private void CheckLength(NodeProto node, string attribute, long[] values, int expected)
    {
        if (values.Length != expected)
            throw new FormatException($"{Where(node)}: attribute '{attribute}' has {values.Length} values; expected {expected}.");
        if (attribute is "strides" or "dilations" && values.Any(v => v < 1))
            throw new FormatException($"{Where(node)}: attribute '{attribute}' [{string.Join(", ", values)}] must be positive.");
    }

    private static long[] Ones(int n) => Enumerable.Repeat(1L, n).ToArray();

    private static bool HasInput(NodeProto node, int index) => node.Input.Count > index && node.Input[index].Length > 0;

    private OnnxConstant Constant(NodeProto node, int index, string role)
    {
        if (!HasInput(node, index)) throw new FormatException($"{Where(node)} has no input {index} ({role}).");
        var name = node.Input[index];
        if (!constants.TryGet(name, out var c))
            throw Unsupported(node, $"its {role} '{name}' computed at run time; it must be an initializer or a Constant");
        if (ParameterRoles.TryGetValue(role, out var local)) Uses.Add((node.Name, local, name));
        return c;
    }

    private Shape OutputShape(LeafLayer layer, NodeProto node, Shape input)
    {
        try
        {
            return layer.OutputShape(input, node.Name, strict: false);
        }
        catch (ShapeException e)
        {
            throw new FormatException($"{Where(node)} does not fit its input [N, {string.Join(", ", input)}]: {e.Message}", e);
        }
    }

    private string Where(NodeProto node) => OnnxImporter.Where(source, node);

    private OnnxUnsupportedException Unsupported(NodeProto node, string what) => OnnxImporter.Unsupported(source, node, what);

    /// <summary>Typed access to a node's attributes; an attribute of the wrong type is a format error.</summary>
    private sealed class Attributes(NodeProto node, string where)
    {
        /// <summary>Refuses every attribute not named.</summary>
        public void Allow(params string[] names)
        {
            foreach (var attribute in node.Attribute)
                if (!names.Contains(attribute.Name))
                    throw new OnnxUnsupportedException($"{where}: attribute '{attribute.Name}' is not supported for {node.OpType}.");
        }

        private AttributeProto? Find(string name, AttributeType type)
        {
            var found = node.Attribute.LastOrDefault(x => x.Name == name);
            if (found is not null && found.Type != type)
                throw new FormatException($"{where}: attribute '{name}' should be of type {type}; found {found.Type}.");
            return found;
        }

        public long Int(string name, long fallback) => Find(name, AttributeType.Int)?.I ?? fallback;

        public long RequiredInt(string name) => Find(name, AttributeType.Int)?.I ?? throw new FormatException($"{where} has no attribute '{name}'.");

        public float Float(string name, float fallback) => Find(name, AttributeType.Float)?.F ?? fallback;

        public long[]? Ints(string name) => Find(name, AttributeType.Ints)?.Ints.ToArray();

        public string String(string name, string fallback) => Find(name, AttributeType.String)?.S.ToStringUtf8() ?? fallback;
    }
}
