using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;
using Google.Protobuf;
using AttributeType = Cnn.Onnx.Proto.AttributeProto.Types.AttributeType;
using DataType = Cnn.Onnx.Proto.TensorProto.Types.DataType;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Onnx;

/// <summary>
/// The ONNX import interpreter: reads a model made of the operations the exporter writes (from this project or from
/// elsewhere) back into a layer tree, its parameters and its state. The graph must be series-parallel: a chain of
/// nodes whose forks meet again in one Sum, Concat (a <see cref="FanOut"/>) or Add (a <see cref="Residual"/>); weights
/// must be initializers or Constant nodes. A model written by <see cref="OnnxExporter"/> comes back with the same
/// tree (dropout, which the exporter leaves out, aside; freezing is not part of a model) and the same parameter
/// paths, read off the node names, with bit-identical tensors.
/// </summary>
/// <remarks>
/// Files are treated as hostile: protobuf nesting is limited (a stack overflow cannot be caught in .NET), every
/// tensor's size is checked against its data before anything is allocated, negative dimensions are refused, and
/// tensors kept in external files are refused rather than opened. The operations and their rules are in
/// <c>OnnxLayerReader</c>.
/// </remarks>
public static partial class OnnxImporter
{
    /// <summary>How deeply protobuf messages may nest (a model needs 6; ONNX's recursive graphs-in-attributes could go on forever).</summary>
    public const int RecursionLimit = 32;

    /// <summary>How deeply branches may nest inside branches.</summary>
    public const int MaxBranchNesting = 64;

    /// <summary>The most nodes a graph may have (GoogLeNet has about 150): finding where branches meet costs time quadratic in them.</summary>
    public const int MaxNodes = 20_000;

    /// <summary>Reads an ONNX model file.</summary>
    /// <param name="path">The <c>.onnx</c> file.</param>
    /// <exception cref="FormatException">The file is not a well-formed ONNX model (the message names the defect).</exception>
    /// <exception cref="OnnxUnsupportedException">The model uses an operation or attribute no layer expresses (the message names it and its node).</exception>
    /// <exception cref="CnnException">The file does not exist or cannot be read.</exception>
    public static ImportedModel Import(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new CnnException($"ONNX model file '{path}' does not exist.");
        var bytes = Cnn.Dsl.IO.InputFile.ReadAllBytes(path, "ONNX model file", null,
            "2 GB is also the limit of one protobuf message; larger models keep tensors in external files, which the importer does not read");
        return FromBytes(bytes, $"'{path}'");
    }

    /// <summary>Reads an ONNX model from its serialized bytes.</summary>
    /// <param name="model">The bytes of a <c>ModelProto</c>.</param>
    /// <param name="source">Names the bytes in error messages (default "the model bytes").</param>
    /// <exception cref="FormatException">The bytes are not a well-formed ONNX model.</exception>
    /// <exception cref="OnnxUnsupportedException">The model uses an operation or attribute no layer expresses.</exception>
    public static ImportedModel FromBytes(byte[] model, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        source ??= "the model bytes";
        ModelProto proto;
        try
        {
            using var stream = new MemoryStream(model, writable: false);
            using var input = CodedInputStream.CreateWithLimits(stream, Math.Max(1, model.Length), RecursionLimit);
            proto = ModelProto.Parser.ParseFrom(input);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new FormatException($"ONNX model from {source} is not a valid ONNX protobuf: {e.Message}", e);
        }
        return FromModel(proto, source);
    }

    /// <summary>Reads a parsed model (the conformance tests edit models before importing them).</summary>
    internal static ImportedModel FromModel(ModelProto model, string source)
    {
        var graph = model.Graph ?? throw new FormatException($"ONNX model from {source} has no graph (is it an ONNX file?).");
        var opsets = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").ToArray();
        if (opsets.Length != 1) throw new FormatException($"ONNX model from {source} imports the default operator set {opsets.Length} times; expected once.");
        long opset = opsets[0].Version;
        if (graph.Node.Count > MaxNodes)
            throw new FormatException($"ONNX model from {source} has {graph.Node.Count} nodes; the importer reads at most {MaxNodes}.");

        foreach (var node in graph.Node)
            if (node.Domain is not ("" or "ai.onnx"))
                throw Unsupported(source, node, $"an operation of domain '{node.Domain}'");

        var constants = new Dictionary<string, OnnxConstant>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer)
            if (!constants.TryAdd(t.Name, OnnxConstant.Read(t, source)))
                throw new FormatException($"ONNX model from {source}: initializer '{t.Name}' is defined twice.");
        foreach (var node in graph.Node.Where(n => n.OpType == "Constant"))
        {
            var value = ConstantValue(node, source);
            if (node.Output.Count != 1 || !constants.TryAdd(node.Output[0], value with { Name = node.Output[0] }))
                throw new FormatException($"{Where(source, node)}: its output is not one new value.");
        }

        var inputs = graph.Input.Where(i => !constants.ContainsKey(i.Name)).ToArray();
        if (inputs.Length != 1 || graph.Output.Count != 1)
            throw new OnnxUnsupportedException(
                $"ONNX model from {source} has {inputs.Length} inputs (besides initializers) and {graph.Output.Count} outputs; a network has one of each.");
        var (inputShape, staticBatch) = InputShape(inputs[0], source);
        string inputName = inputs[0].Name, outputName = graph.Output[0].Name;

        // Shape subgraphs and constant arithmetic are evaluated, not read as layers; the nodes left compute from the data.
        var aliases = new Dictionary<string, string>(StringComparer.Ordinal);
        var computed = graph.Node.Where(n => n.OpType != "Constant").Select(n => n.Clone()).ToList();
        var (dataNodes, deferred) = ConstantFolding.Split(computed, constants, aliases, opset, source);
        var folded = computed.Except(dataNodes).Select(n => $"{n.Name} ({n.OpType})").ToList();
        var table = new ConstantTable(constants, deferred, opset, source) { StaticBatch = staticBatch };
        var rewrites = new List<string>();
        // SiLU, hard swish and GELU written as their decompositions become one node each, before the rewrites see them.
        var dataList = OnnxActivationFusion.Fuse(dataNodes.ToArray(), constants).ToList();
        GraphRewrites.Apply(dataList, table, outputName, opset, rewrites);
        foreach (var node in dataList)
        {
            if (node.Domain != OnnxActivationFusion.Domain && !OnnxLayerReader.LeafOperations.Contains(node.OpType)
                && !OnnxLayerReader.JoinOperations.Contains(node.OpType) && !OnnxLayerReader.FoldedOperations.Contains(node.OpType))
                throw new OnnxUnsupportedException(
                    $"ONNX model from {source}: operation '{node.OpType}' of node {Display(node)} is not supported. The importer reads " +
                    string.Join(", ", OnnxLayerReader.LeafOperations.Concat(OnnxLayerReader.JoinOperations).Concat(OnnxLayerReader.FoldedOperations)
                        .Concat(ConstantFolding.Operations).Append("Constant").Distinct().Order(StringComparer.Ordinal)) +
                    $" (the last group only where they compute constants or shapes), and SiLU, hard swish and GELU written as their decompositions.");
        }

        var nodes = dataList.ToArray();
        var read = new HashSet<string>(nodes.SelectMany(n => n.Input).Append(outputName), StringComparer.Ordinal);
        var reader = new OnnxLayerReader(table, opset, staticBatch, source, read.Contains);
        var walker = new GraphWalker(nodes, table, inputName, source, reader, rewrites);
        var items = walker.Walk(outputName, inputShape);

        var (network, leaves) = ImportTree.Build(items, inputShape, source);
        var parameters = new List<KeyValuePair<string, Tensor>>();
        var state = new List<KeyValuePair<string, Tensor>>();
        foreach (var (node, item) in leaves)
        {
            Collect(node, item, item.Parameters, node.ParameterSpecs().Select(s => (s.Path, s.Spec.Name, s.Spec.Shape)), parameters, source, "parameter");
            Collect(node, item, item.State, node.StateSpecs().Select(s => (s.Path, s.Spec.Name, s.Spec.Shape)), state, source, "state tensor");
        }
        CheckDeclaredOutput(graph.Output[0], network, source);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in model.MetadataProps) metadata[entry.Key] = entry.Value;
        var report = new ImportReport(aliases, SharedWeights(reader.Uses, aliases, leaves), folded, rewrites);
        return new ImportedModel(network, Parameters.Of(parameters), Parameters.Of(state), metadata) { Report = report };
    }

    /// <summary>The initializers (aliases resolved) that more than one layer parameter was read from.</summary>
    private static Dictionary<string, IReadOnlyList<string>> SharedWeights(
        IReadOnlyList<(string Node, string Local, string Constant)> uses, Dictionary<string, string> aliases, List<(Node Node, LeafItem Item)> leaves)
    {
        var paths = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (node, item) in leaves) paths.TryAdd(item.NodeName, node.Path);
        return uses
            .GroupBy(u => aliases.GetValueOrDefault(u.Constant, u.Constant), StringComparer.Ordinal)
            .Where(g => g.Select(u => (u.Node, u.Local)).Distinct().Count() > 1)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(u => Network.Join(paths.GetValueOrDefault(u.Node, u.Node), u.Local)).Distinct().ToList(), StringComparer.Ordinal);
    }

    private static void Collect(Node node, LeafItem item, IReadOnlyList<(string Local, Tensor Value)> found, IEnumerable<(string Path, string Local, Shape Shape)> specs,
        List<KeyValuePair<string, Tensor>> into, string source, string what)
    {
        foreach (var (path, local, shape) in specs)
        {
            var tensor = found.FirstOrDefault(f => f.Local == local).Value
                ?? throw new FormatException($"ONNX model from {source}: node '{item.NodeName}' gives no {what} '{local}' for layer '{node.Path}'.");
            if (tensor.Shape != shape)
                throw new FormatException(
                    $"ONNX model from {source}: node '{item.NodeName}': {what} '{local}' has shape {tensor.Shape}; layer '{node.Path}' needs {shape} for input {node.Input}.");
            into.Add(KeyValuePair.Create(path, tensor));
        }
    }

    private static (Shape PerSample, int? StaticBatch) InputShape(ValueInfoProto input, string source)
    {
        string where = $"ONNX model from {source}: input '{input.Name}'";
        if (input.Type?.TensorType is not { } tensor || tensor.ElemType != (int)DataType.Float)
            throw new OnnxUnsupportedException($"{where} is not a float32 tensor.");
        if (tensor.Shape is null || tensor.Shape.Dim.Count == 0)
            throw new OnnxUnsupportedException($"{where} declares no shape; the importer needs [batch, ...] with every axis but the batch fixed.");
        var dims = tensor.Shape.Dim;
        var perSample = new int[dims.Count - 1];
        for (int i = 1; i < dims.Count; i++)
        {
            if (!dims[i].HasDimValue)
                throw new OnnxUnsupportedException($"{where}: axis {i} is symbolic ('{dims[i].DimParam}'); only the batch axis 0 may be.");
            if (dims[i].DimValue is < 1 or > int.MaxValue)
                throw new FormatException($"{where}: axis {i} has size {dims[i].DimValue}; sizes must be from 1 to {int.MaxValue}.");
            perSample[i - 1] = (int)dims[i].DimValue;
        }
        int? batch = dims[0].HasDimValue && dims[0].DimValue is >= 1 and <= int.MaxValue ? (int)dims[0].DimValue : null;
        try
        {
            return (new Shape(perSample), batch);
        }
        catch (ShapeException e)
        {
            throw new FormatException($"{where}: {e.Message}", e);
        }
    }

    private static void CheckDeclaredOutput(ValueInfoProto output, Network network, string source)
    {
        var dims = output.Type?.TensorType?.Shape?.Dim;
        if (dims is null || dims.Count == 0) return;
        var expected = network.OutputShape;
        bool fits = dims.Count == expected.Rank + 1;
        for (int i = 1; fits && i < dims.Count; i++) fits = !dims[i].HasDimValue || dims[i].DimValue == expected[i - 1];
        if (!fits)
        {
            var declared = string.Join(", ", dims.Select(d => d.HasDimValue ? d.DimValue.ToString() : d.DimParam.Length > 0 ? d.DimParam : "?"));
            throw new FormatException($"ONNX model from {source}: output '{output.Name}' is declared [{declared}], but the layers compute [N, {string.Join(", ", expected)}].");
        }
    }

    private static OnnxConstant ConstantValue(NodeProto node, string source)
    {
        if (node.Attribute.Count != 1) throw new FormatException($"{Where(source, node)} should have exactly one value attribute.");
        var a = node.Attribute[0];
        var t = new TensorProto { Name = node.Output.FirstOrDefault() ?? "" };
        switch (a.Name, a.Type)
        {
            case ("value", AttributeType.Tensor):
                return OnnxConstant.Read(a.T, source);
            case ("value_float", AttributeType.Float):
                t.DataType = (int)DataType.Float;
                t.FloatData.Add(a.F);
                break;
            case ("value_floats", AttributeType.Floats):
                t.DataType = (int)DataType.Float;
                t.Dims.Add(a.Floats.Count);
                t.FloatData.AddRange(a.Floats);
                break;
            case ("value_int", AttributeType.Int):
                t.DataType = (int)DataType.Int64;
                t.Int64Data.Add(a.I);
                break;
            case ("value_ints", AttributeType.Ints):
                t.DataType = (int)DataType.Int64;
                t.Dims.Add(a.Ints.Count);
                t.Int64Data.AddRange(a.Ints);
                break;
            default:
                throw Unsupported(source, node, $"a constant given as '{a.Name}' ({a.Type})");
        }
        return OnnxConstant.Read(t, source);
    }

    /// <summary>"ONNX model from SOURCE: node 'NAME' (OP)", for messages.</summary>
    internal static string Where(string source, NodeProto node) => $"ONNX model from {source}: node {Display(node)} ({node.OpType})";

    /// <summary>The error for a construct no layer expresses.</summary>
    internal static OnnxUnsupportedException Unsupported(string source, NodeProto node, string what) =>
        new($"{Where(source, node)} uses {what}, which the importer does not support.");

    private static string Display(NodeProto node) =>
        node.Name.Length > 0 ? $"'{node.Name}'" : $"(unnamed, output '{node.Output.FirstOrDefault() ?? ""}')";
}
