using Cnn.Core;
using Cnn.Onnx.Proto;
using Microsoft.ML.OnnxRuntime;
using DataType = Cnn.Onnx.Proto.TensorProto.Types.DataType;

namespace Cnn.Onnx;

/// <summary>
/// Checks an exported model before anyone sees it: first a structural pass over the protobuf (names, data
/// flow, attribute types, initializer sizes) whose messages point at the defect, then a load by ONNX Runtime
/// with strict shape and type inference, which checks every operator's attributes and every declared shape
/// against ONNX's own inference.
/// </summary>
internal static class OnnxValidator
{
    /// <summary>Both passes; <paramref name="bytes"/> must be <paramref name="model"/> serialized.</summary>
    /// <exception cref="CnnException">The model is malformed; the message says what and where.</exception>
    public static void Validate(ModelProto model, byte[] bytes)
    {
        CheckStructure(model);
        LoadInRuntime(bytes);
    }

    /// <summary>The structural pass.</summary>
    /// <exception cref="CnnException">The first defect found.</exception>
    public static void CheckStructure(ModelProto model)
    {
        var errors = new List<string>();
        var graph = model.Graph;
        if (graph is null) throw Invalid("the model has no graph");
        if (model.OpsetImport.Count == 0) errors.Add("the model imports no operator set");

        var defined = new HashSet<string>(StringComparer.Ordinal);
        void Define(string name, string what)
        {
            if (name.Length == 0) errors.Add($"{what} has an empty name");
            else if (!defined.Add(name)) errors.Add($"value name '{name}' ({what}) is defined twice");
        }

        var initializerNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer)
        {
            initializerNames.Add(t.Name);
            CheckInitializer(t, errors);
        }
        foreach (var input in graph.Input)
        {
            if (initializerNames.Contains(input.Name))
                errors.Add($"initializer '{input.Name}' is also listed as a graph input (it would become overridable)");
            Define(input.Name, "graph input");
            CheckValueInfo(input, "graph input", errors);
        }
        foreach (var t in graph.Initializer) Define(t.Name, "initializer");

        var nodeNames = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < graph.Node.Count; i++)
        {
            var node = graph.Node[i];
            string where = $"node {i} '{node.Name}' ({node.OpType})";
            if (node.Name.Length == 0) errors.Add($"node {i} ({node.OpType}) has no name");
            else if (!nodeNames.Add(node.Name)) errors.Add($"node name '{node.Name}' is used twice");
            if (node.OpType.Length == 0) errors.Add($"{where} has no op_type");
            foreach (var x in node.Input)
                if (x.Length > 0 && !defined.Contains(x))
                    errors.Add($"{where} reads '{x}', which is not a graph input, an initializer or the output of an earlier node");
            var attributeNames = new HashSet<string>(StringComparer.Ordinal);
            foreach (var a in node.Attribute)
            {
                if (a.Name.Length == 0) errors.Add($"{where} has an attribute without a name");
                else if (!attributeNames.Add(a.Name)) errors.Add($"{where} has attribute '{a.Name}' twice");
                if (a.Type == AttributeProto.Types.AttributeType.Undefined)
                    errors.Add($"{where}: attribute '{a.Name}' has no type");
            }
            if (node.Output.Count == 0) errors.Add($"{where} has no output");
            foreach (var y in node.Output) Define(y, $"output of {where}");
        }

        if (graph.Output.Count == 0) errors.Add("the graph has no output");
        foreach (var output in graph.Output)
        {
            if (!defined.Contains(output.Name)) errors.Add($"graph output '{output.Name}' is never produced");
            CheckValueInfo(output, "graph output", errors);
        }
        var infoNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var info in graph.ValueInfo)
            if (!infoNames.Add(info.Name)) errors.Add($"value_info '{info.Name}' is listed twice");

        if (errors.Count > 0) throw Invalid(string.Join("; ", errors));
    }

    private static void CheckValueInfo(ValueInfoProto info, string what, List<string> errors)
    {
        if (info.Type?.TensorType is not { } tensor)
            errors.Add($"{what} '{info.Name}' has no tensor type");
        else if (tensor.ElemType == (int)DataType.Undefined)
            errors.Add($"{what} '{info.Name}' has no element type");
    }

    private static void CheckInitializer(TensorProto t, List<string> errors)
    {
        string where = $"initializer '{t.Name}'";
        long count = 1;
        foreach (var d in t.Dims)
        {
            if (d < 0) { errors.Add($"{where} has a negative dimension in [{string.Join(", ", t.Dims)}]"); return; }
            count = d == 0 || count <= long.MaxValue / d ? count * d : long.MaxValue;
        }
        if (t.DataLocation == TensorProto.Types.DataLocation.External || t.ExternalData.Count > 0)
        {
            errors.Add($"{where} keeps its data in an external file; the exporter writes every tensor inline");
            return;
        }
        var (elementSize, typedCount) = (DataType)t.DataType switch
        {
            DataType.Float => (4, t.FloatData.Count),
            DataType.Double => (8, t.DoubleData.Count),
            DataType.Int32 => (4, t.Int32Data.Count),
            DataType.Int64 => (8, t.Int64Data.Count),
            _ => (0, 0),
        };
        if (elementSize == 0)
        {
            errors.Add($"{where} has data type {t.DataType}, which the validator does not check (float, double, int32, int64 are)");
            return;
        }
        bool hasRaw = t.RawData.Length > 0;
        if (hasRaw && typedCount > 0) errors.Add($"{where} has both raw_data and typed data");
        long found = hasRaw ? t.RawData.Length / elementSize : typedCount;
        if (hasRaw && t.RawData.Length % elementSize != 0)
            errors.Add($"{where}: raw_data has {t.RawData.Length} bytes, not a multiple of the element size {elementSize}");
        else if (found != count)
            errors.Add($"{where}: dims [{string.Join(", ", t.Dims)}] hold {count} elements but the data has {found}");
    }

    /// <summary>Loads the model in ONNX Runtime with strict shape and type inference.</summary>
    /// <exception cref="CnnException">ONNX Runtime rejected the model; its message is included.</exception>
    public static void LoadInRuntime(byte[] bytes)
    {
        using var options = new SessionOptions
        {
            // Check the graph as written, not as rewritten by optimisations; warnings only add noise here.
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        // A declared shape that disagrees with ONNX's inference is an error, not a warning.
        options.AddSessionConfigEntry("session.strict_shape_type_inference", "1");
        try
        {
            using var session = new InferenceSession(bytes, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw Invalid($"ONNX Runtime rejected it: {e.Message}", e);
        }
    }

    private static CnnException Invalid(string what, Exception? inner = null)
    {
        string message = $"ONNX export produced an invalid model: {what}.";
        return inner is null ? new CnnException(message) : new CnnException(message, inner);
    }
}
