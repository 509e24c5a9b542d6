using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Onnx;

/// <summary>
/// The import rule of each supported operation: the mirror of the exporter's <c>EmitLeaf</c>, in one switch. Each
/// rule reads the node's attributes (every attribute it does not know is refused, so that nothing is silently
/// ignored), resolves ONNX's conventions (auto_pad, output_shape, transB, Gemm's alpha and beta, Reshape's 0 and
/// -1) into the layer's parameters, and refuses what no layer of this project expresses with a
/// <see cref="OnnxUnsupportedException"/> that names the operation and the node.
/// </summary>
internal sealed partial class OnnxLayerReader(ConstantTable constants, long opset, int? staticBatch, string source, Func<string, bool> isRead)
{
    /// <summary>The operations read as one leaf layer.</summary>
    public static readonly IReadOnlySet<string> LeafOperations = new HashSet<string>(StringComparer.Ordinal)
    {
        "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Relu", "LeakyRelu", "Elu",
        "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "LRN", "BatchNormalization", "Dropout", "Identity", "Flatten", "Reshape", "Gemm",
        "MatMul", "ReduceMean", "ReduceMax", "Pad",
        "Clip", "HardSigmoid", "HardSwish", "Gelu", "Slice", "Squeeze", "Unsqueeze",
        // A channel shuffle between two Reshapes (TryFolded); alone only the identity permutation is a layer.
        "Transpose",
    };

    private static readonly Dictionary<string, string> ParameterRoles = new(StringComparer.Ordinal)
    {
        ["weight"] = "weight", ["weight B"] = "weight", ["bias"] = "bias", ["scale"] = "weight", ["B"] = "bias", ["C"] = "bias",
        ["input_mean"] = "running_mean", ["input_var"] = "running_var", ["value"] = "value",
    };

    /// <summary>The constants each node read, by node name, local role and constant name, for the import report.</summary>
    public List<(string Node, string Local, string Constant)> Uses { get; } = new();

    /// <summary>The operations that join branches: Sum (a FanOut's sum), Add (a residual block), Concat (a FanOut's concatenation) and Mul (a FanOut's product).</summary>
    public static readonly IReadOnlySet<string> JoinOperations = new HashSet<string>(StringComparer.Ordinal) { "Sum", "Add", "Concat", "Mul" };

    /// <summary>Reads <paramref name="node"/>, whose one data input has per-sample shape <paramref name="input"/>.</summary>
    public LeafItem Read(NodeProto node, Shape input)
    {
        var a = new Attributes(node, Where(node));
        CheckExtraOutputs(node);
        var parameters = new List<(string, Tensor)>();
        var state = new List<(string, Tensor)>();
        LeafLayer layer;
        switch (node.OpType)
        {
            case "Conv":
                layer = Conv(node, a, input, parameters);
                break;
            case "ConvTranspose":
                layer = ConvTranspose(node, a, input, parameters);
                break;
            case "MaxPool":
            case "AveragePool":
                layer = Pool(node, a, input);
                break;
            case "GlobalAveragePool":
                a.Allow();
                layer = new GlobalPool(PoolOp.Average);
                break;
            case "GlobalMaxPool":
                a.Allow();
                layer = new GlobalPool(PoolOp.Max);
                break;
            case "Relu":
                a.Allow();
                layer = new Relu();
                break;
            case "Sigmoid":
                a.Allow();
                layer = new Sigmoid();
                break;
            case "Tanh":
                a.Allow();
                layer = new Tanh();
                break;
            case "Identity":
                a.Allow();
                layer = new Identity();
                break;
            case "LeakyRelu":
                a.Allow("alpha");
                layer = new LeakyRelu(a.Float("alpha", 0.01f));
                break;
            case "Elu":
                a.Allow("alpha");
                layer = new Elu(a.Float("alpha", 1f));
                break;
            case "Softmax":
            case "LogSoftmax":
                layer = Softmax(node, a, input);
                break;
            case "LRN":
            {
                a.Allow("size", "alpha", "beta", "bias");
                int size = checked((int)a.RequiredInt("size"));
                if (size % 2 == 0)
                    throw Unsupported(node,
                        $"an even size {size}: ONNX's window (floor((size-1)/2) channels before, ceil((size-1)/2) after) is the mirror of this project's " +
                        "(PyTorch's size/2 before, (size-1)/2 after), and the two agree only for odd sizes");
                layer = new Lrn(size, a.Float("alpha", 1e-4f), a.Float("beta", 0.75f), a.Float("bias", 1f));
                break;
            }
            case "BatchNormalization":
                layer = BatchNorm(node, a, input, parameters, state);
                break;
            case "Dropout":
                layer = Dropout(node, a);
                break;
            case "Flatten":
            {
                a.Allow("axis");
                long axis = a.Int("axis", 1);
                if (axis != 1 && axis != 1 - (input.Rank + 1))
                    throw Unsupported(node, $"axis {axis}: only axis 1 keeps the batch axis apart (input [N, {string.Join(", ", input)}])");
                layer = new Flatten();
                break;
            }
            case "Reshape":
                layer = Reshape(node, a, input);
                break;
            case "Gemm":
                layer = Gemm(node, a, input, parameters);
                break;
            case "MatMul":
                a.Allow();
                layer = MatMul(node, input, parameters);
                break;
            case "ReduceMean":
            case "ReduceMax":
                layer = Reduce(node, a, input);
                break;
            case "Pad":
                layer = Pad(node, a, input);
                break;
            case "Slice":
                layer = Slice(node, a, input);
                break;
            case "Squeeze":
            case "Unsqueeze":
                layer = SqueezeOrUnsqueeze(node, a, input);
                break;
            case "Transpose":
                layer = Transpose(node, a, input);
                break;
            case "Clip" or "HardSigmoid" or "HardSwish" or "Gelu" or OnnxActivationFusion.Silu:
                layer = MobileActivation(node, a);
                break;
            default:
                throw Unsupported(node, "an operation the importer does not support");
        }
        return new LeafItem(layer, node.Name, OutputShape(layer, node, input), parameters, state);
    }

    /// <summary>
    /// The exporter's lowerings of one layer to Reshape, an operation, Reshape: channel max and average pooling, channel shuffle, and LRN of a
    /// sample that is not <c>[C, H, W]</c>. Null when the three nodes are anything else (they are then read one by one).
    /// </summary>
    public LeafItem? TryFolded(NodeProto fold, NodeProto middle, NodeProto unfold, Shape input) => middle.OpType switch
    {
        "MaxPool" => TryChannelPool(fold, middle, unfold, input, (k, s) => new ChannelMaxPool(k, s)),
        "AveragePool" => TryChannelPool(fold, middle, unfold, input, (k, s) => new ChannelAvgPool(k, s)),
        "LRN" => TryFlatLrn(fold, middle, unfold, input),
        "Transpose" => TryChannelShuffle(fold, middle, unfold, input),
        _ => null,
    };

    /// <summary>LRN between Reshape to <c>[N, C, positions, 1]</c> and Reshape back to the input's shape.</summary>
    private LeafItem? TryFlatLrn(NodeProto fold, NodeProto lrn, NodeProto unfold, Shape input)
    {
        if (fold.OpType != "Reshape" || unfold.OpType != "Reshape" || input.Rank is < 2 or 3 || lrn.Output.Count != 1) return null;
        var folded = new Shape(input[0], input.Size / Math.Max(1, input[0]), 1);
        if (TryReshapeTarget(fold, input) != folded || TryReshapeTarget(unfold, folded) != input) return null;
        var item = Read(lrn, folded);
        return new LeafItem(item.Layer, fold.Name, input, item.Parameters, item.State);
    }

    /// <summary>
    /// Reshape to <c>[N, 1, C, P]</c>, MaxPool or AveragePool with window <c>[k, 1]</c> and no padding, Reshape to
    /// <c>[N, C', spatial...]</c>: channel pooling, made by <paramref name="layerOf"/>(kernel, stride).
    /// </summary>
    private LeafItem? TryChannelPool(NodeProto fold, NodeProto pool, NodeProto unfold, Shape input, Func<int, int, LeafLayer> layerOf)
    {
        if (fold.OpType != "Reshape" || unfold.OpType != "Reshape" || input.Rank < 2) return null;
        if (pool.Output.Count != 1 || fold.Output.Count != 1) return null;
        int channels = input[0], positions = input.Size / Math.Max(1, channels);
        var folded = TryReshapeTarget(fold, input);
        if (folded is null || folded != new Shape(1, channels, positions)) return null;
        var a = new Attributes(pool, Where(pool));
        if (pool.Attribute.Any(x => x.Name is not ("kernel_shape" or "strides" or "pads" or "dilations" or "ceil_mode" or "storage_order" or "auto_pad" or "count_include_pad"))) return null;
        var k = a.Ints("kernel_shape");
        var s = a.Ints("strides") ?? new long[] { 1, 1 };
        var p = a.Ints("pads") ?? new long[4];
        var d = a.Ints("dilations") ?? new long[] { 1, 1 };
        if (k is not { Length: 2 } || k[1] != 1 || s.Length != 2 || s[1] != 1 || p.Any(v => v != 0) || d.Any(v => v != 1)
            || a.Int("ceil_mode", 0) != 0 || a.String("auto_pad", "NOTSET") is not ("NOTSET" or "VALID") || k[0] < 1 || s[0] < 1 || k[0] > channels)
            return null;
        // Without padding, count_include_pad changes nothing: every window holds k channels.
        var layer = layerOf((int)k[0], (int)s[0]);
        var output = OutputShape(layer, fold, input);
        var unfolded = TryReshapeTarget(unfold, new Shape(1, output[0], positions));
        return unfolded == output ? new LeafItem(layer, fold.Name, output, Array.Empty<(string, Tensor)>(), Array.Empty<(string, Tensor)>()) : null;
    }

    private Shape? TryReshapeTarget(NodeProto node, Shape input)
    {
        try
        {
            return Reshape(node, new Attributes(node, Where(node)), input).Target;
        }
        catch (CnnException)
        {
            return null;
        }
    }

    private LeafLayer Conv(NodeProto node, Attributes a, Shape input, List<(string, Tensor)> parameters)
    {
        a.Allow("kernel_shape", "strides", "pads", "dilations", "group", "auto_pad");
        var w = Constant(node, 1, "weight");
        int spatial = w.Dims.Length - 2;
        if (spatial is < 1 or > 3) throw Unsupported(node, $"a weight of rank {w.Dims.Length}; 1-d, 2-d and 3-d convolutions are supported");
        CheckRank(node, input, spatial + 1);
        var kernel = w.Dims.Skip(2).ToArray();
        CheckKernelShape(node, a, kernel);
        var strides = a.Ints("strides") ?? Ones(spatial);
        var dilations = a.Ints("dilations") ?? Ones(spatial);
        CheckLength(node, "strides", strides, spatial);
        CheckLength(node, "dilations", dilations, spatial);
        var (pads, ends) = Padding(node, a, input, kernel, strides, dilations);
        for (int i = 0; i < spatial; i++)
        {
            // Zero padding after the last window is never read: unequal padding is the same convolution when it gives as many windows.
            long reach = (kernel[i] - 1) * dilations[i] + 1;
            if (ends[i] != pads[i] && PoolWindows.OnnxCount(input[i + 1], reach, strides[i], pads[i], ends[i], false) != PoolWindows.OnnxCount(input[i + 1], reach, strides[i], pads[i], pads[i], false))
                throw Unsupported(node, $"asymmetric padding ({pads[i]} before, {ends[i]} after along spatial axis {i}); convolutions pad both sides equally");
        }
        int group = checked((int)a.Int("group", 1));
        int filters = checked((int)w.Dims[0]);
        bool bias = HasInput(node, 2);
        parameters.Add(("weight", w.ToTensor(Where(node))));
        if (bias) parameters.Add(("bias", Constant(node, 2, "bias").ToTensor(Where(node))));
        int[] I(long[] v) => v.Select(x => checked((int)x)).ToArray();
        return ConvolutionLayer.From(ConvSpec.Of(filters, I(kernel), I(strides), I(pads), I(dilations), group, bias));
    }

    private LeafLayer ConvTranspose(NodeProto node, Attributes a, Shape input, List<(string, Tensor)> parameters)
    {
        a.Allow("kernel_shape", "strides", "pads", "dilations", "group", "auto_pad", "output_padding", "output_shape");
        var w = Constant(node, 1, "weight");
        int spatial = w.Dims.Length - 2;
        if (spatial is < 1 or > 3) throw Unsupported(node, $"a weight of rank {w.Dims.Length}; 1-d, 2-d and 3-d transposed convolutions are supported");
        CheckRank(node, input, spatial + 1);
        var kernel = w.Dims.Skip(2).ToArray();
        CheckKernelShape(node, a, kernel);
        var strides = a.Ints("strides") ?? Ones(spatial);
        var dilations = a.Ints("dilations") ?? Ones(spatial);
        var outputPadding = a.Ints("output_padding") ?? new long[spatial];
        CheckLength(node, "strides", strides, spatial);
        CheckLength(node, "dilations", dilations, spatial);
        CheckLength(node, "output_padding", outputPadding, spatial);
        var outputShape = a.Ints("output_shape");
        if (outputShape is not null) CheckLength(node, "output_shape", outputShape, spatial);
        string autoPad = a.String("auto_pad", "NOTSET");
        if (autoPad is not ("NOTSET" or "VALID" or "SAME_UPPER" or "SAME_LOWER"))
            throw new FormatException($"{Where(node)}: auto_pad '{autoPad}' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID.");
        var pads = autoPad == "VALID" || outputShape is not null ? new long[2 * spatial] : a.Ints("pads") ?? new long[2 * spatial];
        CheckLength(node, "pads", pads, 2 * spatial);
        int group = checked((int)a.Int("group", 1));
        if (group < 1 || input[0] % group != 0)
            throw new FormatException($"{Where(node)}: group {group} does not divide the input's {input[0]} channels.");
        var begin = new int[spatial];
        var endPad = new int[spatial];
        var q = new int[spatial];
        for (int i = 0; i < spatial; i++)
        {
            long full = strides[i] * (input[i + 1] - 1) + outputPadding[i] + (kernel[i] - 1) * dilations[i] + 1, end;
            if (outputShape is not null || autoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                long total = full - (outputShape is not null ? outputShape[i] : input[i + 1] * strides[i]);
                // An output_shape beyond the full output extends it at the end (ONNX's reference floors total/2): output padding.
                if (total < 0) (begin[i], end) = (0, total);
                else (begin[i], end) = autoPad == "SAME_UPPER" ? ((int)(total / 2), total - total / 2) : ((int)(total - total / 2), total / 2);
            }
            else (begin[i], end) = (checked((int)pads[i]), pads[i + spatial]);
            // Padding p at both ends and output padding q give the elements [p, full - p + q) of the full output, as ONNX's
            // (begin, end) gives [begin, full - end): so p = begin and q = output_padding + begin - end, where that stays below
            // the stride (PyTorch's form); else the layer's own end padding (PadEnd) takes end, and q the output padding.
            long extra = outputPadding[i] + begin[i] - end;
            if (extra >= 0 && extra < strides[i]) (q[i], endPad[i]) = ((int)extra, begin[i]);
            else if (end >= 0 && outputPadding[i] < strides[i]) (q[i], endPad[i]) = ((int)outputPadding[i], checked((int)end));
            else
                throw Unsupported(node, $"padding ({begin[i]}, {end}) with output padding {outputPadding[i]} along spatial axis {i}, which no padding with 0 <= output padding < stride expresses");
        }
        bool bias = HasInput(node, 2);
        parameters.Add(("weight", w.ToTensor(Where(node))));
        if (bias) parameters.Add(("bias", Constant(node, 2, "bias").ToTensor(Where(node))));
        int[] I(long[] v) => v.Select(x => checked((int)x)).ToArray();
        return ConvolutionLayer.From(ConvSpec.Of(checked((int)w.Dims[1] * group), I(kernel), I(strides), begin, I(dilations), group, bias, q, endPad));
    }

    private LeafLayer Softmax(NodeProto node, Attributes a, Shape input)
    {
        a.Allow("axis");
        int rank = input.Rank + 1;
        // Before opset 13 the axis (default 1) split the tensor in two and normalised the flattened tail: the same as one axis only for the last.
        long axis = a.Int("axis", opset >= 13 ? -1 : 1);
        long resolved = axis < 0 ? axis + rank : axis;
        if (resolved < 0 || resolved >= rank) throw new FormatException($"{Where(node)}: axis {axis} is out of range for input [N, {string.Join(", ", input)}].");
        if (resolved == 0) throw Unsupported(node, "normalisation over the batch axis 0");
        if (opset < 13 && resolved != rank - 1)
            throw Unsupported(node, $"axis {axis} before opset 13, which normalises the flattened axes {axis}.. together");
        return node.OpType == "Softmax" ? new Softmax((int)axis) : new LogSoftmax((int)axis);
    }

    private LeafLayer BatchNorm(NodeProto node, Attributes a, Shape input, List<(string, Tensor)> parameters, List<(string, Tensor)> state)
    {
        a.Allow("epsilon", "momentum", "training_mode", "spatial");
        if (a.Int("training_mode", 0) != 0) throw Unsupported(node, "training mode; only inference-mode batch normalisation (running statistics) is imported");
        if (a.Int("spatial", 1) != 1) throw Unsupported(node, "spatial = 0 (statistics per element, not per channel)");
        if (input.Rank < 1) throw Unsupported(node, "an input without a channel axis");
        parameters.Add(("weight", Constant(node, 1, "scale").ToTensor(Where(node))));
        parameters.Add(("bias", Constant(node, 2, "B").ToTensor(Where(node))));
        state.Add(("running_mean", Constant(node, 3, "input_mean").ToTensor(Where(node))));
        state.Add(("running_var", Constant(node, 4, "input_var").ToTensor(Where(node))));
        float momentum = a.Float("momentum", 0.9f);
        if (momentum is < 0f or > 1f) throw Unsupported(node, $"momentum {momentum} outside [0, 1]");
        return new BatchNorm(MomentumFromOnnx(momentum), a.Float("epsilon", 1e-5f));
    }

    /// <summary>
    /// PyTorch's momentum from ONNX's (its complement). Floats near 1 are sparser than floats near 0.1, so the
    /// complement does not round-trip bit for bit; of the momenta that give back <paramref name="onnx"/>, the one with
    /// the shortest decimal form is chosen (0.9 gives 0.1, not 0.100000024), which is the one a person wrote.
    /// </summary>
    internal static float MomentumFromOnnx(float onnx)
    {
        double exact = 1.0 - onnx;
        for (int digits = 1; digits <= 9; digits++)
        {
            float candidate = (float)Math.Round(exact, digits);
            if ((float)(1.0 - candidate) == onnx && candidate is >= 0f and <= 1f) return candidate;
        }
        return (float)exact;
    }

    private LeafLayer Dropout(NodeProto node, Attributes a)
    {
        a.Allow("ratio", "seed", "is_test");
        float ratio = a.Float("ratio", 0.5f);
        if (HasInput(node, 1))
        {
            var r = Constant(node, 1, "ratio");
            if (r.Floats is not { Length: 1 }) throw Unsupported(node, "a ratio that is not one float");
            ratio = r.Floats[0];
        }
        if (HasInput(node, 2))
        {
            var t = Constant(node, 2, "training_mode");
            if (t.Integers is not { Length: 1 }) throw Unsupported(node, "a training_mode that is not one boolean");
            // Training mode with ratio 0 drops nothing: the mask is all ones and the output is the input, as in inference.
            if (t.Integers[0] != 0 && ratio != 0f)
                throw Unsupported(node, $"training mode with ratio {ratio}, whose random mask no layer reproduces; dropout is imported with inference semantics (the identity)");
        }
        if (ratio is < 0f or >= 1f) throw Unsupported(node, $"ratio {ratio} outside [0, 1)");
        return new Dropout(ratio);
    }

    private Reshape Reshape(NodeProto node, Attributes a, Shape input)
    {
        a.Allow("allowzero");
        var shape = Constant(node, 1, "shape");
        if (shape.Integers is null || shape.Dims.Length != 1) throw new FormatException($"{Where(node)}: the shape input '{shape.Name}' is not a 1-d integer tensor.");
        var t = shape.Integers;
        bool allowZero = a.Int("allowzero", 0) != 0;
        if (t.Length == 0) throw Unsupported(node, "a reshape to a scalar, which drops the batch axis");
        if (t.Count(v => v == -1) > 1 || t.Any(v => v < -1 && v != ConstantTable.Batch)) throw new FormatException($"{Where(node)}: shape [{string.Join(", ", t)}] is not a valid Reshape target.");
        if (allowZero && t.Contains(0)) throw Unsupported(node, "an empty (zero-sized) reshape target");
        // The per-sample target: 0 copies the input's dimension at that index, -1 is inferred from the sample's size.
        var dims = new long[t.Length - 1];
        for (int i = 1; i < t.Length; i++)
            dims[i - 1] = t[i] == 0 ? (i <= input.Rank ? input[i - 1] : throw new FormatException($"{Where(node)}: shape entry {i} is 0 but the input has no axis {i}.")) : t[i];
        long known = dims.Where(d => d != -1).Aggregate(1L, (x, y) => x * y);
        if (t.Skip(1).Contains(ConstantTable.Batch))
            throw Unsupported(node, $"a target shape that puts the batch size on axis {Array.IndexOf(t, ConstantTable.Batch, 1)}; only axis 0 may hold it");
        bool batchKept = t[0] == 0 || t[0] == ConstantTable.Batch || (staticBatch is int b && t[0] == b) || (t[0] == -1 && !dims.Contains(-1) && known == input.Size);
        if (!batchKept)
            throw Unsupported(node, $"shape [{string.Join(", ", t)}], which does not keep the batch axis (it must start with 0, -1 or the batch size)");
        if (dims.Contains(-1))
        {
            if (known == 0 || input.Size % known != 0)
                throw new FormatException($"{Where(node)}: cannot reshape a sample of shape {input} to [{string.Join(", ", t)}].");
            dims[Array.IndexOf(dims, -1L)] = input.Size / known;
        }
        return new Reshape(new Shape(dims.Select(d => checked((int)d)).ToArray()));
    }

    private LeafLayer Gemm(NodeProto node, Attributes a, Shape input, List<(string, Tensor)> parameters)
    {
        a.Allow("alpha", "beta", "transA", "transB");
        if (a.Int("transA", 0) != 0) throw Unsupported(node, "transA = 1 (the data input transposed)");
        if (input.Rank != 1) throw Unsupported(node, $"an input of rank {input.Rank + 1}; Dense takes [N, features]");
        var b = Constant(node, 1, "weight B");
        if (b.Floats is null || b.Dims.Length != 2) throw new FormatException($"{Where(node)}: B '{b.Name}' is not a 2-d float tensor.");
        bool transB = a.Int("transB", 0) != 0;
        int units = checked((int)(transB ? b.Dims[0] : b.Dims[1])), features = checked((int)(transB ? b.Dims[1] : b.Dims[0]));
        if (features != input[0]) throw new FormatException($"{Where(node)}: B '{b.Name}' has shape [{string.Join(", ", b.Dims)}], which does not fit {input[0]} input features.");
        float alpha = a.Float("alpha", 1f), beta = a.Float("beta", 1f);
        var w = new float[units * features];
        for (int u = 0; u < units; u++)
            for (int f = 0; f < features; f++)
            {
                float v = transB ? b.Floats[u * features + f] : b.Floats[f * units + u];
                w[u * features + f] = alpha == 1f ? v : v * alpha;
            }
        parameters.Add(("weight", Tensor.Own(w, new Shape(units, features))));
        bool useBias = HasInput(node, 2) && beta != 0f;
        if (useBias)
        {
            var c = Constant(node, 2, "C");
            if (c.Floats is null) throw new FormatException($"{Where(node)}: C '{c.Name}' is not a float tensor.");
            var rows = c.Dims.Length == 2 ? c.Dims[0] : 1;
            var cols = c.Dims.Length == 0 ? 1 : c.Dims[^1];
            if (c.Dims.Length > 2 || rows != 1 || (cols != 1 && cols != units))
                throw Unsupported(node, c.Dims.Length == 2 && rows != 1
                    ? $"a bias C of shape [{string.Join(", ", c.Dims)}], one row per row of the data, whose rows are the batch axis: a bias that differs from one sample of a batch to the next, which a batch-first network cannot mean (Dense adds the same bias to every sample)"
                    : $"a bias C of shape [{string.Join(", ", c.Dims)}], which is not one value per output (Dense adds the same bias to every row)");
            var bias = new float[units];
            for (int u = 0; u < units; u++)
            {
                float v = c.Floats[cols == 1 ? 0 : u];
                bias[u] = beta == 1f ? v : v * beta;
            }
            parameters.Add(("bias", Tensor.Own(bias, new Shape(units))));
        }
        return new Dense(units, useBias);
    }
}
