using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;
using Google.Protobuf;

namespace Cnn.Onnx;

/// <summary>
/// The ONNX export interpreter: walks a resolved <see cref="Network"/> and emits one ONNX node (or a few)
/// per layer, with the parameters and batch-norm running statistics as initializers named by their paths, and
/// each node named by its layer's path. Nothing is traced: the graph is read off the description. Inference
/// semantics: dropout and auxiliary heads are left out, batch normalisation uses its running statistics, freezing is transparent.
/// A FanOut's sum is a Sum node, its product a Mul, a residual block's an Add node, a concatenation a Concat on axis 1; every
/// attribute whose ONNX default differs from ours is written (count_include_pad, epsilon, ...). Every model is
/// checked structurally and loaded by ONNX Runtime, with strict shape inference, before it is returned or written.
/// </summary>
/// <remarks>
/// To export a new layer kind, add a case to <c>EmitLeaf</c> (or, for a combinator, to <c>Emit</c>); both
/// are in this file. Its import rule goes in <c>OnnxLayerReader</c>.
/// </remarks>
public static partial class OnnxExporter
{
    /// <summary>The <c>producer_name</c> written to every model.</summary>
    public const string ProducerName = "Cnn.Dsl";

    /// <summary>The symbolic name of the batch axis of the graph's input and output.</summary>
    public const string BatchDimension = "batch";

    /// <summary>The lowest IR version written: from IR 4 on, initializers need not be listed among the graph inputs.</summary>
    public const long MinIrVersion = 4;

    /// <summary>The highest IR version written: the newest that ONNX Runtime 1.31 loads.</summary>
    public const long MaxIrVersion = 13;

    /// <summary>The lowest opset written: Softmax and LogSoftmax normalise along one axis (not a flattened tail) from opset 13 on.</summary>
    public const long MinOpset = 13;

    /// <summary>The highest opset written: the newest default-domain opset that ONNX Runtime 1.31 implements.</summary>
    public const long MaxOpset = 26;

    /// <summary>The network with its parameters as a serialized, validated ONNX model, for a network without state.</summary>
    /// <param name="network">The resolved network; its input shape (without batch) becomes the graph input's shape.</param>
    /// <param name="parameters">A tensor for every parameter path of the network (<c>conv1/weight</c>, ...).</param>
    /// <param name="options">Names, versions and metadata; the defaults when null.</param>
    /// <returns>The bytes of an ONNX <c>ModelProto</c>.</returns>
    /// <exception cref="CnnException">
    /// A layer kind has no export rule (the message names its path and type), a parameter is missing or has the
    /// wrong shape, the network has state (batch normalisation: use the overload that takes it), the options are
    /// invalid, or the model failed validation.
    /// </exception>
    public static byte[] ToBytes(Network network, Parameters parameters, OnnxExportOptions? options = null) =>
        ToBytes(network, parameters, state: null, options);

    /// <summary>The network with its parameters and state as a serialized, validated ONNX model.</summary>
    /// <param name="network">The resolved network; its input shape (without batch) becomes the graph input's shape.</param>
    /// <param name="parameters">A tensor for every parameter path of the network (<c>conv1/weight</c>, ...).</param>
    /// <param name="state">
    /// The network's state (batch-norm running statistics, from <see cref="Initializer.InitState"/> or training);
    /// may be null when the network has none.
    /// </param>
    /// <param name="options">Names, versions and metadata; the defaults when null.</param>
    /// <returns>The bytes of an ONNX <c>ModelProto</c>.</returns>
    /// <exception cref="CnnException">As for <see cref="ToBytes(Network, Parameters, OnnxExportOptions?)"/>, or a state tensor is missing or has the wrong shape.</exception>
    public static byte[] ToBytes(Network network, Parameters parameters, Parameters? state, OnnxExportOptions? options = null)
    {
        var model = BuildModel(network, parameters, state, options ?? new OnnxExportOptions());
        var bytes = model.ToByteArray();
        OnnxValidator.Validate(model, bytes);
        return bytes;
    }

    /// <summary>
    /// Writes a network without state with its parameters as an ONNX model file. The file is written whole or not
    /// at all: to a temporary file in the same folder, flushed to disk, then renamed over <paramref name="path"/>.
    /// </summary>
    /// <param name="network">The resolved network.</param>
    /// <param name="parameters">A tensor for every parameter path of the network.</param>
    /// <param name="path">The target file; replaced if it exists. Its folder must exist.</param>
    /// <param name="options">Names, versions and metadata; the defaults when null.</param>
    /// <exception cref="CnnException">As for <see cref="ToBytes(Network, Parameters, OnnxExportOptions?)"/>, or the file could not be written.</exception>
    public static void Export(Network network, Parameters parameters, string path, OnnxExportOptions? options = null) =>
        Export(network, parameters, state: null, path, options);

    /// <summary>
    /// Writes the network with its parameters and state as an ONNX model file, whole or not at all (temporary file,
    /// flush, rename).
    /// </summary>
    /// <param name="network">The resolved network.</param>
    /// <param name="parameters">A tensor for every parameter path of the network.</param>
    /// <param name="state">The network's state (batch-norm running statistics); may be null when it has none.</param>
    /// <param name="path">The target file; replaced if it exists. Its folder must exist.</param>
    /// <param name="options">Names, versions and metadata; the defaults when null.</param>
    /// <exception cref="CnnException">As for <see cref="ToBytes(Network, Parameters, Parameters?, OnnxExportOptions?)"/>, or the file could not be written.</exception>
    public static void Export(Network network, Parameters parameters, Parameters? state, string path, OnnxExportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var bytes = ToBytes(network, parameters, state, options);
        // A missing folder is more likely a mistyped path than a wish for a new folder: refuse it.
        try { Cnn.Dsl.IO.AtomicFile.WriteAllBytes(path, bytes, createFolder: false); }
        catch (CnnException e) { throw new CnnException("ONNX export: " + e.Message, e); }
    }

    /// <summary>Builds the model of a network without state, without validating it (the tests corrupt it to check the validator).</summary>
    internal static ModelProto BuildModel(Network network, Parameters parameters, OnnxExportOptions options) =>
        BuildModel(network, parameters, null, options);

    /// <summary>Builds the model without validating it.</summary>
    internal static ModelProto BuildModel(Network network, Parameters parameters, Parameters? state, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        CheckOptions(options);

        var builder = new GraphBuilder(network, parameters, state ?? Parameters.Empty, state is not null, options);
        builder.Graph.Input.Add(ValueInfo(options.InputName, network.InputShape));
        var result = builder.Emit(network.RootNode, options.InputName);
        builder.NameOutput(result, options.OutputName);
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
        if (o.IrVersion is < MinIrVersion or > MaxIrVersion)
            throw new CnnException(
                $"ONNX export: IR version must be between {MinIrVersion} (initializers that are not graph inputs) and {MaxIrVersion} (the newest ONNX Runtime 1.31 loads); found {o.IrVersion}.");
        if (o.Opset is < MinOpset or > MaxOpset)
            throw new CnnException(
                $"ONNX export: opset must be between {MinOpset} (Softmax along one axis) and {MaxOpset} (the newest ONNX Runtime 1.31 implements); found {o.Opset}.");
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


    /// <summary>Accumulates one graph: unique node and value names, initializers, value infos.</summary>
    private sealed partial class GraphBuilder
    {
        private readonly Parameters _parameters;
        private readonly Parameters _state;
        private readonly bool _stateGiven;
        private readonly long _opset;
        private readonly HashSet<string> _valueNames = new(StringComparer.Ordinal);
        private readonly HashSet<string> _nodeNames = new(StringComparer.Ordinal);

        public GraphBuilder(Network network, Parameters parameters, Parameters state, bool stateGiven, OnnxExportOptions options)
        {
            _parameters = parameters;
            _state = state;
            _stateGiven = stateGiven;
            _opset = options.Opset;
            Graph = new GraphProto { Name = options.ModelName };
            _valueNames.Add(options.InputName);
            _valueNames.Add(options.OutputName);
            // Reserve every parameter and state path first, so that no intermediate value can take one.
            var leaves = network.RootNode.Leaves().ToArray();
            foreach (var path in leaves.SelectMany(n => n.ParameterSpecs().Select(s => s.Path).Concat(n.StateSpecs().Select(s => s.Path))))
                if (!_valueNames.Add(path))
                    throw new CnnException(
                        $"ONNX export: parameter path '{path}' collides with the graph's input or output name ('{options.InputName}', '{options.OutputName}').");
        }

        public GraphProto Graph { get; }

        /// <summary>
        /// Emits <paramref name="node"/> reading value <paramref name="x"/>; returns the name of its output value
        /// (<paramref name="x"/> itself for a layer that is the identity at inference, such as dropout).
        /// </summary>
        public string Emit(Node node, string x)
        {
            switch (node.Layer)
            {
                case Serial:
                    return node.Children.Aggregate(x, (h, child) => Emit(child, h));
                case Freeze:
                    // Freezing only matters to training: the inner layers are exported as they are.
                    return Emit(node.Children[0], x);
                case FanOut fan:
                {
                    var branches = node.Children.Select(c => Emit(c, x)).ToArray();
                    return fan.Join switch
                    {
                        Join.Sum => JoinNode(node, "Sum", branches),
                        // Two branches (shape inference checks it), broadcast as ONNX's Mul does.
                        Join.Product => JoinNode(node, "Mul", branches),
                        _ => JoinNode(node, "Concat", branches, Int("axis", 1)),
                    };
                }
                case Residual res:
                {
                    // Add (not Sum) marks a residual block, so that import gives back a Residual. A null shortcut is
                    // the identity and emits nothing; an explicit Identity layer emits its Identity node.
                    var block = Emit(node.Children[0], x);
                    var shortcut = res.Shortcut is null ? x : Emit(node.Children[1], x);
                    return JoinNode(node, "Add", new[] { block, shortcut });
                }
                case Dropout:
                    // Inference semantics: dropout is the identity and is left out.
                    return x;
                case AuxiliaryHead:
                    // Inference uses the main head: an auxiliary classifier is the identity on the trunk and is left out.
                    return x;
                case LeafLayer:
                {
                    string y = FreshValue(node);
                    EmitLeaf(node, x, y);
                    Graph.ValueInfo.Add(ValueInfo(y, node.Output));
                    return y;
                }
                default:
                    throw Unsupported(node);
            }
        }

        /// <summary>Makes value <paramref name="result"/> the graph output named <paramref name="output"/>.</summary>
        public void NameOutput(string result, string output)
        {
            var producer = Graph.Node.LastOrDefault(n => n.Output.Contains(result));
            if (producer is null)
            {
                // The whole network is the identity at inference (dropout only): the output still needs a node.
                var node = new NodeProto { Name = Fresh(_nodeNames, "identity"), OpType = "Identity", Domain = "" };
                node.Input.Add(result);
                node.Output.Add(output);
                Graph.Node.Add(node);
                return;
            }
            // The network's final value is read by no other node, so renaming it is safe.
            producer.Output[producer.Output.IndexOf(result)] = output;
            var info = Graph.ValueInfo.Single(v => v.Name == result);
            Graph.ValueInfo.Remove(info);
        }

        private string JoinNode(Node node, string opType, string[] inputs, params AttributeProto[] attributes)
        {
            string y = FreshValue(node);
            AddNode(node, opType, inputs, y, attributes);
            Graph.ValueInfo.Add(ValueInfo(y, node.Output));
            return y;
        }

        /// <summary>The export rule of each leaf kind: nodes reading <paramref name="x"/> and writing <paramref name="y"/>.</summary>
        private void EmitLeaf(Node node, string x, string y)
        {
            switch (node.Layer)
            {
                case ConvolutionLayer c:
                {
                    // One rule for every rank: a transposed weight [C, Filters/groups, k...] is PyTorch's layout and ONNX's [C, M/group, k...].
                    var spec = c.Spec();
                    var g = spec.Geometry;
                    var attributes = new List<AttributeProto>
                    {
                        Ints("kernel_shape", Longs(g.Kernel)),
                        Ints("strides", Longs(g.Stride)),
                        Ints("pads", Longs(g.PadBegin.Concat(g.PadEnd).ToArray())),
                        Ints("dilations", Longs(g.Dilation)),
                        Int("group", g.Groups),
                    };
                    if (spec.Transposed) attributes.Add(Ints("output_padding", Longs(spec.OutputPad)));
                    AddNode(node, spec.Transposed ? "ConvTranspose" : "Conv", Inputs(x, Weight(node), spec.UseBias ? Bias(node) : null), y, attributes.ToArray());
                    break;
                }
                case MaxPool2d m:
                {
                    // A dilated window is in floor mode (the layer requires it), where ONNX's windows are PyTorch's.
                    var (ceil, pads) = m.Dilated
                        ? (false, new long[] { m.PadH, m.PadW, m.PadH, m.PadW })
                        : Window(node, new[] { m.KernelH, m.KernelW }, new[] { m.StrideH, m.StrideW }, new[] { m.PadH, m.PadW }, m.CeilMode, false);
                    AddNode(node, "MaxPool", Inputs(x), y,
                        Ints("kernel_shape", m.KernelH, m.KernelW),
                        Ints("strides", m.StrideH, m.StrideW),
                        Ints("pads", pads),
                        Ints("dilations", m.DilationH, m.DilationW),
                        Int("ceil_mode", ceil ? 1 : 0),
                        Int("storage_order", 0));
                    break;
                }
                case AvgPool2d a:
                {
                    // ONNX's own padding (ends that differ, beyond half the window) is written as it is, in floor mode.
                    var (ceil, pads) = a.SymmetricPadding
                        ? Window(node, new[] { a.KernelH, a.KernelW }, new[] { a.StrideH, a.StrideW }, new[] { a.PadH, a.PadW }, a.CeilMode, a.CountIncludePad)
                        : (false, new long[] { a.PadH, a.PadW, a.PadEndH, a.PadEndW });
                    // ONNX's count_include_pad defaults to 0 and PyTorch's to true: always written.
                    AddNode(node, "AveragePool", Inputs(x), y,
                        Ints("kernel_shape", a.KernelH, a.KernelW),
                        Ints("strides", a.StrideH, a.StrideW),
                        Ints("pads", pads),
                        Int("ceil_mode", ceil ? 1 : 0),
                        Int("count_include_pad", a.CountIncludePad ? 1 : 0));
                    break;
                }
                case PoolNd p:
                {
                    int axes = node.Input.Rank - 1;
                    var window = new[]
                    {
                        Ints("kernel_shape", Repeat(p.Kernel, axes)),
                        Ints("strides", Repeat(p.Stride, axes)),
                        Ints("pads", Repeat(p.Pad, 2 * axes)),
                        Int("ceil_mode", 0),
                    };
                    if (p.Op == PoolOp.Max)
                        AddNode(node, "MaxPool", Inputs(x), y, window.Append(Ints("dilations", Repeat(1, axes))).Append(Int("storage_order", 0)).ToArray());
                    else
                        AddNode(node, "AveragePool", Inputs(x), y, window.Append(Int("count_include_pad", p.CountIncludePad ? 1 : 0)).ToArray());
                    break;
                }
                case GlobalPool g:
                    AddNode(node, g.Op == PoolOp.Max ? "GlobalMaxPool" : "GlobalAveragePool", Inputs(x), y);
                    break;
                case ChannelMaxPool cm:
                    EmitChannelPool(node, "MaxPool", cm.Kernel, cm.Stride, x, y);
                    break;
                case ChannelAvgPool ca:
                    EmitChannelPool(node, "AveragePool", ca.Kernel, ca.Stride, x, y);
                    break;
                case ChannelShuffle cs:
                    EmitChannelShuffle(node, cs, x, y);
                    break;
                case Permute pm:
                    AddNode(node, "Transpose", Inputs(x), y, Ints("perm", new long[] { 0 }.Concat(pm.Axes.Select(a => (long)a + 1)).ToArray()));
                    break;
                case Pad2d pad:
                    EmitPad(node, pad, x, y);
                    break;
                case ChannelSlice slice:
                    EmitChannelSlice(node, slice, x, y);
                    break;
                case Relu:
                    AddNode(node, "Relu", Inputs(x), y);
                    break;
                case LeakyRelu l:
                    AddNode(node, "LeakyRelu", Inputs(x), y, Float("alpha", l.Slope));
                    break;
                case Elu e:
                    AddNode(node, "Elu", Inputs(x), y, Float("alpha", e.Alpha));
                    break;
                case Sigmoid:
                    AddNode(node, "Sigmoid", Inputs(x), y);
                    break;
                case Tanh:
                    AddNode(node, "Tanh", Inputs(x), y);
                    break;
                case HardTanh or HardSigmoid or HardSwish or Silu or Gelu:
                    EmitMobileActivation(node, x, y);
                    break;
                case ConstantOperand k:
                    // The value has the sample's rank: ONNX broadcasts it from the right, over the batch axis.
                    AddNode(node, k.Op switch { Cnn.Core.Kernels.BinaryOp.Add => "Add", Cnn.Core.Kernels.BinaryOp.Subtract => "Sub", Cnn.Core.Kernels.BinaryOp.Multiply => "Mul", _ => "Div" }, Inputs(x, Initializer(node, "value")), y);
                    break;
                case Softmax s:
                    AddNode(node, "Softmax", Inputs(x), y, Int("axis", s.Axis));
                    break;
                case LogSoftmax s:
                    AddNode(node, "LogSoftmax", Inputs(x), y, Int("axis", s.Axis));
                    break;
                case Lrn l:
                    if (l.Size % 2 == 0)
                        throw new CnnException(
                            $"ONNX export: layer '{node.Path}' is an LRN of even size {l.Size}. ONNX's LRN window is floor((size-1)/2) channels before and " +
                            $"ceil((size-1)/2) after, the mirror of PyTorch's (and this project's) size/2 before and (size-1)/2 after, so the two agree only " +
                            "for odd sizes; use an odd size.");
                    if (node.Input.Rank == 3)
                        AddNode(node, "LRN", Inputs(x), y, LrnAttributes(l));
                    else
                        EmitFlatLrn(node, l, x, y);
                    break;
                case BatchNorm bn:
                {
                    var inputs = Inputs(x, Initializer(node, "weight"), Initializer(node, "bias"), State(node, "running_mean"), State(node, "running_var"));
                    // ONNX's momentum weighs the old statistics (PyTorch's 0.1 is ONNX's 0.9); it does not matter at inference.
                    var attributes = new List<AttributeProto> { Float("epsilon", bn.Epsilon), Float("momentum", (float)(1.0 - bn.Momentum)) };
                    if (_opset >= 14) attributes.Add(Int("training_mode", 0));
                    AddNode(node, "BatchNormalization", inputs, y, attributes.ToArray());
                    break;
                }
                case Identity:
                    AddNode(node, "Identity", Inputs(x), y);
                    break;
                case Flatten:
                    AddNode(node, "Flatten", Inputs(x), y, Int("axis", 1));
                    break;
                case Reshape:
                    // 0 copies the batch size from the input, so the batch axis stays symbolic.
                    AddNode(node, "Reshape", Inputs(x, ShapeConstant(node, node.Output)), y, ReshapeAttributes());
                    break;
                case MatMul:
                    // The weight [G..., K, M] broadcasts over the batch from the left, as numpy's matmul does.
                    AddNode(node, "MatMul", Inputs(x, Weight(node)), y);
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
    }
}
