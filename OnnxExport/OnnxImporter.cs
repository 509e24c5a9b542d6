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
public static class OnnxImporter
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

    /// <summary>
    /// Walks the data flow from the input to the output: a chain of one-input nodes, where a value read by several
    /// nodes is a fork whose branches must meet again in one join node (the fork's immediate post-dominator).
    /// </summary>
    private sealed class GraphWalker
    {
        private readonly NodeProto[] _nodes;
        private readonly ConstantTable _constants;
        private readonly List<string> _rewrites;
        private readonly string _input;
        private readonly string _source;
        private readonly OnnxLayerReader _reader;
        private readonly Dictionary<string, int> _producer = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<int>> _consumers = new(StringComparer.Ordinal);
        private readonly int[] _rank;
        private readonly bool[] _used;

        public GraphWalker(NodeProto[] nodes, ConstantTable constants, string input, string source, OnnxLayerReader reader, List<string> rewrites)
        {
            _rewrites = rewrites;
            _nodes = nodes;
            _constants = constants;
            _input = input;
            _source = source;
            _reader = reader;
            _used = new bool[nodes.Length];
            for (int i = 0; i < nodes.Length; i++)
            {
                var node = nodes[i];
                if (node.Output.Count == 0 || node.Output[0].Length == 0) throw new FormatException($"{Where(source, node)} has no output.");
                foreach (var y in node.Output.Where(y => y.Length > 0))
                    if (y == input || constants.Contains(y) || !_producer.TryAdd(y, i))
                        throw new FormatException($"{Where(source, node)}: value '{y}' is defined twice.");
            }
            for (int i = 0; i < nodes.Length; i++)
                foreach (var x in DataInputs(i))
                {
                    if (x != input && !_producer.ContainsKey(x))
                        throw new FormatException($"{Where(source, nodes[i])} reads '{x}', which is not the graph input, an initializer, a constant or the output of a node.");
                    if (!_consumers.TryGetValue(x, out var list)) _consumers[x] = list = new List<int>();
                    list.Add(i);
                }
            _rank = TopologicalRanks();
        }

        /// <summary>The items from the input to <paramref name="output"/>; every node must lie on the way.</summary>
        public List<ImportItem> Walk(string output, Shape inputShape)
        {
            if (output != _input && !_producer.ContainsKey(output))
                throw new FormatException($"ONNX model from {_source}: output '{output}' is produced by no node.");
            var region = Enumerable.Range(0, _nodes.Length).ToHashSet();
            var shape = inputShape;
            var items = Chain(_input, output, region, ref shape, 0);
            _constants.RuntimeShapes[output] = shape;
            int unused = Array.IndexOf(_used, false);
            if (unused >= 0)
                throw Unsupported(_source, _nodes[unused], "an output that does not lead to the graph output (the graph has one input and one output, and every node lies between them)");
            return items;
        }

        private IEnumerable<string> DataInputs(int node) => _nodes[node].Input.Where(x => x.Length > 0 && !_constants.Contains(x));

        private IEnumerable<int> Consumers(string value, HashSet<int> region) =>
            _consumers.TryGetValue(value, out var list) ? list.Where(region.Contains) : Enumerable.Empty<int>();

        private string Out(int node) => _nodes[node].Output[0];

        private bool IsJoin(int node) => OnnxLayerReader.JoinOperations.Contains(_nodes[node].OpType);

        /// <summary>Kahn's algorithm: each node's position in a topological order; a cycle is an error.</summary>
        private int[] TopologicalRanks()
        {
            var pending = new int[_nodes.Length];
            for (int i = 0; i < _nodes.Length; i++) pending[i] = DataInputs(i).Count(x => x != _input);
            var ready = new Queue<int>(Enumerable.Range(0, _nodes.Length).Where(i => pending[i] == 0));
            var rank = Enumerable.Repeat(-1, _nodes.Length).ToArray();
            int next = 0;
            while (ready.Count > 0)
            {
                int n = ready.Dequeue();
                rank[n] = next++;
                foreach (var y in _nodes[n].Output.Where(y => y.Length > 0))
                    if (_consumers.TryGetValue(y, out var list))
                        foreach (var c in list)
                            if (--pending[c] == 0) ready.Enqueue(c);
            }
            int cyclic = Array.IndexOf(rank, -1);
            if (cyclic >= 0) throw new FormatException($"{Where(_source, _nodes[cyclic])} is part of a cycle; an ONNX graph must be acyclic.");
            return rank;
        }

        /// <summary>Why a join with a constant operand is not read: a constant with a batch axis differs from sample to sample.</summary>
        private string ConstantJoinReason(NodeProto join, Shape shape)
        {
            foreach (var x in join.Input)
                if (x.Length > 0 && _constants.TryGet(x, out var c) && c.Dims.Length == shape.Rank + 1 && c.Dims[0] != 1)
                    return $"a constant operand '{x}' of shape [{string.Join(", ", c.Dims)}] on data [N{string.Concat(shape.Select(d => ", " + d))}], whose first axis is the batch axis: " +
                           "it differs from one sample of a batch to the next, which a batch-first network cannot mean";
            return "a constant operand; every operand must be computed from the input";
        }

        private List<ImportItem> Chain(string from, string to, HashSet<int> region, ref Shape shape, int depth)
        {
            var items = new List<ImportItem>();
            string v = from;
            while (v != to)
            {
                _constants.RuntimeShapes[v] = shape;
                var edges = Consumers(v, region).Distinct().ToArray();
                if (edges.Length == 0)
                    throw new FormatException($"ONNX model from {_source}: value '{v}' is read by no node on the way to '{to}'.");
                ImportItem item;
                if (edges.Length == 1 && OnnxLayerReader.FoldedOperations.Contains(_nodes[edges[0]].OpType) && DataInputs(edges[0]).Count() == 1)
                {
                    var node = _nodes[edges[0]];
                    _used[edges[0]] = true;
                    v = Out(edges[0]);
                    if (items.Count > 0 && items[^1] is LeafItem previous && _reader.TryFold(previous, node) is { } folded)
                    {
                        items[^1] = folded;
                        _rewrites.Add($"node '{node.Name}' ({node.OpType}): its constant operand was folded into layer node '{previous.NodeName}'");
                    }
                    else items.Add(_reader.ConstantOperand(node, shape));
                    shape = items[^1].Output;
                    continue;
                }
                if (edges.Length == 1 && !IsJoin(edges[0]))
                {
                    var read = Leaf(edges[0], region, shape, out int last);
                    items.AddRange(read.Take(read.Count - 1));
                    item = read[^1];
                    v = Out(last);
                }
                else
                {
                    if (depth >= MaxBranchNesting)
                        throw new FormatException($"ONNX model from {_source}: branches nest deeper than {MaxBranchNesting} levels at value '{v}'.");
                    item = Fork(v, to, region, shape, depth + 1, out v);
                }
                items.Add(item);
                shape = item.Output;
            }
            return items;
        }

        private IReadOnlyList<LeafItem> Leaf(int n, HashSet<int> region, Shape shape, out int last)
        {
            var node = _nodes[n];
            var data = DataInputs(n).ToArray();
            if (data.Length != 1 || node.Input[0] != data[0])
                throw Unsupported(_source, node, $"{data.Length} inputs computed at run time ({string.Join(", ", data.Select(d => $"'{d}'"))}); only its first input may be");
            if (node.OpType == "Reshape"
                && Consumers(Out(n), region).ToArray() is [int middle]
                && Consumers(Out(middle), region).ToArray() is [int unfold] && _nodes[unfold].OpType == "Reshape"
                && DataInputs(middle).Count() == 1 && DataInputs(unfold).Count() == 1
                && _reader.TryFolded(node, _nodes[middle], _nodes[unfold], shape) is { } folded)
            {
                _used[n] = _used[middle] = _used[unfold] = true;
                last = unfold;
                return new[] { folded };
            }
            _used[n] = true;
            last = n;
            var layers = _reader.ReadLayers(node, shape);
            if (layers.Count > 1)
                _rewrites.Add($"node '{node.Name}' ({node.OpType}): read as {string.Join(", then ", layers.Select(l => l.Layer.Kind))}, since no one layer computes it");
            return layers;
        }

        private JoinItem Fork(string v, string to, HashSet<int> region, Shape shape, int depth, out string joined)
        {
            string meet = ImmediatePostDominator(v, to, region);
            int j = _producer[meet];
            var join = _nodes[j];
            if (!IsJoin(j))
                throw Unsupported(_source, join, $"branches from value '{v}' that meet in it; branches must meet in a Sum, Add, Concat or Mul");
            if (join.Input.Any(x => x.Length == 0 || _constants.Contains(x)))
                throw Unsupported(_source, join, ConstantJoinReason(join, shape));
            if (join.Output.Count != 1) throw new FormatException($"{Where(_source, join)} should have one output.");
            var ends = join.Input.ToArray();
            var regions = ends.Select(e => Between(v, e, region, join)).ToArray();
            var all = Between(v, meet, region, join);
            all.Remove(j);
            var covered = new HashSet<int>();
            foreach (var r in regions)
                foreach (var n in r)
                    if (!covered.Add(n))
                        throw Unsupported(_source, _nodes[n], $"a place in two branches from value '{v}' to node '{join.Name}'; only series-parallel graphs (forks that meet again in one join) are supported");
            if (!covered.SetEquals(all))
            {
                int stray = all.Except(covered).First();
                throw Unsupported(_source, _nodes[stray], $"a branch from value '{v}' that does not reach node '{join.Name}'");
            }
            if (shape.Rank == 0)
                throw Unsupported(_source, join, "branches of tensors with no axis besides the batch; layers join samples of shape [C, ...]");
            var branches = new List<IReadOnlyList<ImportItem>>();
            var shapes = new List<Shape>();
            for (int i = 0; i < ends.Length; i++)
            {
                var s = shape;
                branches.Add(Chain(v, ends[i], regions[i], ref s, depth));
                shapes.Add(s);
            }
            _used[j] = true;
            joined = meet;
            return join.OpType switch
            {
                "Concat" => new JoinItem("Concat", join.Name, ConcatShape(join, shapes), branches, null),
                "Sum" => new JoinItem("Sum", join.Name, SumShape(join, shapes), branches, null),
                "Mul" => new JoinItem("Mul", join.Name, ProductShape(join, shapes), branches, null),
                _ => Residual(join, ends, v, branches, SumShape(join, shapes)),
            };
        }

        private JoinItem Residual(NodeProto join, string[] ends, string v, List<IReadOnlyList<ImportItem>> branches, Shape output)
        {
            if (ends.Length != 2) throw new FormatException($"{Where(_source, join)} should have two inputs.");
            // The first operand is the block, the second the shortcut; a second operand that is the fork's value itself is the identity shortcut.
            return new JoinItem("Add", join.Name, output, new[] { branches[0] }, ends[1] == v ? null : branches[1]);
        }

        private Shape SumShape(NodeProto join, List<Shape> shapes)
        {
            if (join.Attribute.Count > 0) throw new OnnxUnsupportedException($"{Where(_source, join)}: attribute '{join.Attribute[0].Name}' is not supported.");
            if (shapes.Any(s => s != shapes[0]))
                throw Unsupported(_source, join, $"operands of different shapes ({string.Join(", ", shapes)}) that broadcast; branches must give equal shapes");
            return shapes[0];
        }

        private Shape ProductShape(NodeProto join, List<Shape> shapes)
        {
            if (join.Attribute.Count > 0) throw new OnnxUnsupportedException($"{Where(_source, join)}: attribute '{join.Attribute[0].Name}' is not supported.");
            if (shapes.Count != 2) throw new FormatException($"{Where(_source, join)} should have two inputs.");
            try
            {
                return Core.Kernels.BroadcastKernel.Shape(shapes[0], shapes[1]);
            }
            catch (ShapeException)
            {
                throw Unsupported(_source, join, $"operands {shapes[0]} and {shapes[1]}, which do not broadcast axis by axis at one rank");
            }
        }

        private Shape ConcatShape(NodeProto join, List<Shape> shapes)
        {
            var axisAttribute = join.Attribute.SingleOrDefault(a => a.Name == "axis");
            if (join.Attribute.Count != 1 || axisAttribute is null || axisAttribute.Type != AttributeType.Int)
                throw new FormatException($"{Where(_source, join)} should have exactly one attribute, the int 'axis'.");
            int rank = shapes[0].Rank + 1;
            long axis = axisAttribute.I < 0 ? axisAttribute.I + rank : axisAttribute.I;
            if (axis != 1) throw Unsupported(_source, join, $"axis {axisAttribute.I}; branches are concatenated along the channel axis 1");
            if (shapes.Any(s => s.Rank != shapes[0].Rank || !s.Skip(1).SequenceEqual(shapes[0].Skip(1))))
                throw new FormatException($"{Where(_source, join)}: operands {string.Join(", ", shapes)} differ on an axis other than the channels.");
            var dims = shapes[0].ToArray();
            dims[0] = shapes.Sum(s => s[0]);
            return new Shape(dims);
        }

        /// <summary>The nodes of <paramref name="region"/> on some path from value <paramref name="from"/> to value <paramref name="to"/> (its producer included).</summary>
        private HashSet<int> Between(string from, string to, HashSet<int> region, NodeProto join)
        {
            var result = new HashSet<int>();
            if (from == to) return result;
            var forward = Reachable(from, region);
            if (!_producer.TryGetValue(to, out int last) || !forward.Contains(last))
                throw Unsupported(_source, join, $"operand '{to}', which does not come from the fork at value '{from}'; only series-parallel graphs are supported");
            var stack = new Stack<int>();
            stack.Push(last);
            while (stack.Count > 0)
            {
                int n = stack.Pop();
                if (!forward.Contains(n) || !result.Add(n)) continue;
                foreach (var x in DataInputs(n))
                    if (_producer.TryGetValue(x, out int p)) stack.Push(p);
            }
            return result;
        }

        private HashSet<int> Reachable(string from, HashSet<int> region)
        {
            var seen = new HashSet<int>();
            var stack = new Stack<int>(Consumers(from, region));
            while (stack.Count > 0)
            {
                int n = stack.Pop();
                if (!seen.Add(n)) continue;
                foreach (var c in Consumers(Out(n), region)) stack.Push(c);
            }
            return seen;
        }

        /// <summary>
        /// The first value that every path from <paramref name="v"/> to <paramref name="exit"/> passes through: where the
        /// branches of a fork meet. Post-dominator sets are built in reverse topological order.
        /// </summary>
        private string ImmediatePostDominator(string v, string exit, HashSet<int> region)
        {
            var forward = Reachable(v, region).OrderByDescending(n => _rank[n]).ToArray();
            var post = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
            HashSet<string> Meet(string value)
            {
                HashSet<string>? common = null;
                foreach (var c in Consumers(value, region))
                {
                    var after = post[Out(c)];
                    if (common is null) common = new HashSet<string>(after, StringComparer.Ordinal);
                    else common.IntersectWith(after);
                }
                return common ?? throw new FormatException($"ONNX model from {_source}: value '{value}' is read by no node on the way to '{exit}'.");
            }
            foreach (var n in forward)
            {
                string y = Out(n);
                var set = y == exit ? new HashSet<string>(StringComparer.Ordinal) : Meet(y);
                set.Add(y);
                post[y] = set;
            }
            var candidates = Meet(v);
            if (candidates.Count == 0) throw new FormatException($"ONNX model from {_source}: the branches from value '{v}' never meet.");
            return candidates.MinBy(c => _rank[_producer[c]])!;
        }
    }
}
