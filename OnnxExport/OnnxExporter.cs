using System.Runtime.InteropServices;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;
using Google.Protobuf;

namespace Cnn.Onnx;

/// <summary>
/// The ONNX export interpreter: walks a resolved <see cref="Network"/> and emits one ONNX node (or a few)
/// per layer, with the parameters as initializers. Nothing is traced: the graph is read off the description.
/// Every model is checked structurally and loaded by ONNX Runtime, with strict shape inference, before it is
/// returned or written.
/// </summary>
/// <remarks>
/// To export a new layer kind, add a case to <c>EmitLeaf</c> (or, for a combinator, to <c>Emit</c>); both
/// are in this file.
/// </remarks>
public static class OnnxExporter
{
    /// <summary>The <c>producer_name</c> written to every model.</summary>
    public const string ProducerName = "Cnn.Dsl";

    /// <summary>The symbolic name of the batch axis of the graph's input and output.</summary>
    public const string BatchDimension = "batch";

    private const long MinIrVersion = 4;
    private const long MinOpset = 11;

    /// <summary>The network with its parameters as a serialized, validated ONNX model.</summary>
    /// <param name="network">The resolved network; its input shape (without batch) becomes the graph input's shape.</param>
    /// <param name="parameters">A tensor for every parameter path of the network (<c>conv1/weight</c>, ...).</param>
    /// <param name="options">Names, versions and metadata; the defaults when null.</param>
    /// <returns>The bytes of an ONNX <c>ModelProto</c>.</returns>
    /// <exception cref="CnnException">
    /// A layer kind has no export rule (the message names its path and type), a parameter is missing or has the
    /// wrong shape, the options are invalid, or the model failed validation.
    /// </exception>
    public static byte[] ToBytes(Network network, Parameters parameters, OnnxExportOptions? options = null)
    {
        var model = BuildModel(network, parameters, options ?? new OnnxExportOptions());
        var bytes = model.ToByteArray();
        OnnxValidator.Validate(model, bytes);
        return bytes;
    }

    /// <summary>
    /// Writes the network with its parameters as an ONNX model file. The file is written whole or not at all:
    /// to a temporary file in the same folder, flushed to disk, then renamed over <paramref name="path"/>.
    /// </summary>
    /// <param name="network">The resolved network.</param>
    /// <param name="parameters">A tensor for every parameter path of the network.</param>
    /// <param name="path">The target file; replaced if it exists. Its folder must exist.</param>
    /// <param name="options">Names, versions and metadata; the defaults when null.</param>
    /// <exception cref="CnnException">As for <see cref="ToBytes"/>, or the file could not be written.</exception>
    public static void Export(Network network, Parameters parameters, string path, OnnxExportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var bytes = ToBytes(network, parameters, options);
        WriteAtomically(path, bytes);
    }

    /// <summary>Builds the model without validating it (the tests corrupt it to check the validator).</summary>
    internal static ModelProto BuildModel(Network network, Parameters parameters, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        CheckOptions(options);

        var builder = new GraphBuilder(network, parameters, options);
        builder.Graph.Input.Add(ValueInfo(options.InputName, network.InputShape));
        builder.Emit(network.RootNode, options.InputName, options.OutputName);
        builder.Graph.Output.Add(ValueInfo(options.OutputName, network.OutputShape));

        var model = new ModelProto
        {
            IrVersion = options.IrVersion,
            ProducerName = ProducerName,
            ProducerVersion = typeof(Network).Assembly.GetName().Version?.ToString() ?? "",
            Graph = builder.Graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        foreach (var (key, value) in options.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }

    private static void CheckOptions(OnnxExportOptions o)
    {
        if (o.IrVersion < MinIrVersion)
            throw new CnnException($"ONNX export: IR version must be at least {MinIrVersion} (initializers that are not graph inputs); found {o.IrVersion}.");
        if (o.Opset < MinOpset)
            throw new CnnException($"ONNX export: opset must be at least {MinOpset} (Gemm without bias); found {o.Opset}.");
        if (string.IsNullOrEmpty(o.ModelName)) throw new CnnException("ONNX export: the model name must not be empty.");
        if (string.IsNullOrEmpty(o.InputName) || string.IsNullOrEmpty(o.OutputName) || o.InputName == o.OutputName)
            throw new CnnException($"ONNX export: input and output names must be non-empty and distinct; found '{o.InputName}' and '{o.OutputName}'.");
        ArgumentNullException.ThrowIfNull(o.Metadata);
    }

    /// <summary>A float tensor's value info: <c>[batch, ...perSample]</c> with a symbolic batch axis.</summary>
    private static ValueInfoProto ValueInfo(string name, Shape perSample)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = BatchDimension });
        foreach (var d in perSample) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new CnnException($"ONNX export: '{path}' names no file.");
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                // Without flushing to disk before the rename, a power loss can leave an empty file on ext4.
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new CnnException($"ONNX export: could not write '{full}': {e.Message}", e);
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* the original error is what the user needs */ }
    }

    /// <summary>Accumulates one graph: unique node and value names, initializers, value infos.</summary>
    private sealed class GraphBuilder
    {
        private readonly Parameters _parameters;
        private readonly HashSet<string> _valueNames = new(StringComparer.Ordinal);
        private readonly HashSet<string> _nodeNames = new(StringComparer.Ordinal);

        public GraphBuilder(Network network, Parameters parameters, OnnxExportOptions options)
        {
            _parameters = parameters;
            Graph = new GraphProto { Name = options.ModelName };
            _valueNames.Add(options.InputName);
            _valueNames.Add(options.OutputName);
            // Reserve every parameter path first, so that no intermediate value can take one.
            foreach (var (path, _) in network.RootNode.Leaves().SelectMany(n => n.ParameterSpecs()))
                if (!_valueNames.Add(path))
                    throw new CnnException(
                        $"ONNX export: parameter path '{path}' collides with the graph's input or output name ('{options.InputName}', '{options.OutputName}').");
        }

        public GraphProto Graph { get; }

        /// <summary>
        /// Emits <paramref name="node"/> reading value <paramref name="input"/>; returns the name of its output value,
        /// which is <paramref name="output"/> when given (the graph output) and a fresh name otherwise.
        /// </summary>
        public string Emit(Node node, string input, string? output)
        {
            switch (node.Layer)
            {
                case Serial:
                {
                    var h = input;
                    for (int i = 0; i < node.Children.Count; i++)
                        h = Emit(node.Children[i], h, i == node.Children.Count - 1 ? output : null);
                    return h;
                }
                case LeafLayer:
                {
                    string y = output ?? FreshValue(node);
                    EmitLeaf(node, input, y);
                    if (output is null) Graph.ValueInfo.Add(ValueInfo(y, node.Output));
                    return y;
                }
                default:
                    throw Unsupported(node);
            }
        }

        /// <summary>The export rule of each leaf kind: nodes reading <paramref name="x"/> and writing <paramref name="y"/>.</summary>
        private void EmitLeaf(Node node, string x, string y)
        {
            switch (node.Layer)
            {
                case Conv2d c:
                    AddNode(node, "Conv", Inputs(x, Weight(node), c.UseBias ? Bias(node) : null), y,
                        Ints("kernel_shape", c.KernelH, c.KernelW),
                        Ints("strides", c.StrideH, c.StrideW),
                        Ints("pads", c.PadH, c.PadW, c.PadH, c.PadW),
                        Ints("dilations", 1, 1),
                        Int("group", 1));
                    break;
                case MaxPool2d m:
                    AddNode(node, "MaxPool", Inputs(x), y,
                        Ints("kernel_shape", m.KernelH, m.KernelW),
                        Ints("strides", m.StrideH, m.StrideW),
                        Ints("pads", m.PadH, m.PadW, m.PadH, m.PadW),
                        Ints("dilations", 1, 1),
                        Int("ceil_mode", 0));
                    break;
                case Relu:
                    AddNode(node, "Relu", Inputs(x), y);
                    break;
                case Flatten:
                    AddNode(node, "Flatten", Inputs(x), y, Int("axis", 1));
                    break;
                case Dense d:
                    // Weight is [units, features] (PyTorch's layout), so Gemm transposes B: y = x W^T + b.
                    AddNode(node, "Gemm", Inputs(x, Weight(node), d.UseBias ? Bias(node) : null), y,
                        Float("alpha", 1f),
                        Float("beta", 1f),
                        Int("transA", 0),
                        Int("transB", 1));
                    break;
                default:
                    throw Unsupported(node);
            }
        }

        private static CnnException Unsupported(Node node) => new(
            $"ONNX export: layer '{(node.Path.Length > 0 ? node.Path : "(root)")}' of type {node.Layer.GetType().Name} has no export rule.");

        private string Weight(Node node) => Initializer(node, "weight");

        private string Bias(Node node) => Initializer(node, "bias");

        /// <summary>Adds the parameter of <paramref name="node"/> with local name <paramref name="local"/> as an initializer named by its path.</summary>
        private string Initializer(Node node, string local)
        {
            var spec = node.ParameterSpecs().Single(s => s.Spec.Name == local);
            var tensor = _parameters[spec.Path];
            if (tensor.Shape != spec.Spec.Shape)
                throw new CnnException(
                    $"ONNX export: parameter '{spec.Path}' of layer '{node.Path}' should have shape {spec.Spec.Shape} for input {node.Input}; found {tensor.Shape}.");
            var proto = new TensorProto { Name = spec.Path, DataType = (int)TensorProto.Types.DataType.Float };
            foreach (var d in tensor.Shape) proto.Dims.Add(d);
            proto.RawData = RawLittleEndian(tensor.Span);
            Graph.Initializer.Add(proto);
            return spec.Path;
        }

        private static ByteString RawLittleEndian(ReadOnlySpan<float> values)
        {
            if (BitConverter.IsLittleEndian) return ByteString.CopyFrom(MemoryMarshal.AsBytes(values));
            var bytes = new byte[values.Length * sizeof(float)];
            for (int i = 0; i < values.Length; i++)
                System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
            return ByteString.CopyFrom(bytes);
        }

        private void AddNode(Node layer, string opType, string[] inputs, string output, params AttributeProto[] attributes)
        {
            var node = new NodeProto { Name = FreshNodeName(layer, opType), OpType = opType, Domain = "" };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            Graph.Node.Add(node);
        }

        private static string[] Inputs(params string?[] names) => names.OfType<string>().ToArray();

        private string FreshValue(Node node) => Fresh(_valueNames, node.Path.Length > 0 ? node.Path : node.Layer.Kind);

        /// <summary>The layer's path for its first node; a layer that emits several nodes gets <c>path/OpType</c> for the rest.</summary>
        private string FreshNodeName(Node node, string opType)
        {
            string path = node.Path.Length > 0 ? node.Path : node.Layer.Kind;
            return _nodeNames.Contains(path) ? Fresh(_nodeNames, path + "/" + opType) : Fresh(_nodeNames, path);
        }

        private static string Fresh(HashSet<string> taken, string wanted)
        {
            var name = wanted;
            for (int i = 2; !taken.Add(name); i++) name = $"{wanted}_{i}";
            return name;
        }

        private static AttributeProto Ints(string name, params long[] values)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.AddRange(values);
            return a;
        }

        private static AttributeProto Int(string name, long value) =>
            new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

        private static AttributeProto Float(string name, float value) =>
            new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };
    }
}
