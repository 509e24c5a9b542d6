using System.Text.Json;
using Cnn.Core;
using Cnn.Core.Kernels;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.IO;

// NetworkJson, reading: a description parsed and checked into layers, with the JSON path of anything wrong.
public static partial class NetworkJson
{
    /// <summary>Reads a network description and checks the network against its input shape.</summary>
    /// <param name="json">The description, as <see cref="Serialize"/> writes it.</param>
    /// <param name="source">Where the description came from (a file name), for error messages.</param>
    /// <exception cref="FormatException">
    /// The text is not a valid description (bad JSON, unknown type, missing or extra property, wrong JSON type, number out
    /// of range, nesting deeper than <see cref="MaxDepth"/>) or the network does not fit its input shape; the message names
    /// the source and the JSON path.
    /// </exception>
    public static Network Deserialize(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(source);
        using var doc = Parse(json, source);
        var o = new Reader.Obj(doc.RootElement, "$", source);
        var format = o.String("format");
        if (format != Format) throw o.Error("format", $"expected \"{Format}\"; found \"{format}\"");
        var input = o.Dims("input");
        bool strict = o.Bool("strict");
        var layer = ReadLayer(o.Object("layer"), 1);
        o.End();
        try { return Network.Create(layer, input, strict); }
        catch (ShapeException e) { throw new FormatException($"'{source}': $.layer: the network does not fit its input {input}: {e.Message}", e); }
    }

    /// <summary>Reads the description of one layer tree, as <see cref="SerializeLayer"/> writes it.</summary>
    /// <param name="json">The description.</param>
    /// <param name="source">Where the description came from, for error messages.</param>
    /// <exception cref="FormatException">The text is not a valid layer description; the message names the source and the JSON path.</exception>
    public static Layer DeserializeLayer(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(source);
        using var doc = Parse(json, source);
        return ReadLayer(new Reader.Obj(doc.RootElement, "$", source), 1);
    }

    private static JsonDocument Parse(string json, string source)
    {
        long cap = MaxBytes;
        if (json.Length > cap)
            throw new FormatException($"'{source}': $: the description has {json.Length:N0} characters; the limit is {cap:N0} (set {MaxBytesVariable} to raise it).");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = MaxJsonDepth }); }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new FormatException($"'{source}': $: not valid JSON: {e.Message}", e);
        }
        int layers = 0;
        if (!CountLayers(doc.RootElement, ref layers))
        {
            doc.Dispose();
            throw new FormatException($"'{source}': $: the description holds more than {MaxLayers:N0} layers, the limit.");
        }
        return doc;
    }

    /// <summary>Counts the objects with a <c>type</c> property (layers), stopping as soon as there are more than <see cref="MaxLayers"/>.</summary>
    private static bool CountLayers(JsonElement e, ref int count)
    {
        if (e.ValueKind == JsonValueKind.Object)
        {
            if (e.TryGetProperty("type", out _) && ++count > MaxLayers) return false;
            foreach (var p in e.EnumerateObject())
                if (!CountLayers(p.Value, ref count)) return false;
        }
        else if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in e.EnumerateArray())
                if (!CountLayers(item, ref count)) return false;
        }
        return true;
    }

    /// <summary>Reads one layer. Every layer type has its case here and in <see cref="WriteLayer"/>, in the same order.</summary>
    private static Layer ReadLayer(Reader.Obj o, int depth)
    {
        if (depth > MaxDepth) throw o.Error(null, $"layers nest deeper than {MaxDepth}");
        var type = o.String("type");
        var name = o.NullableString("name");
        var init = ReadInit(o);
        const int Big = int.MaxValue;
        Layer Child(string prop) => ReadLayer(o.Object(prop), depth + 1);
        Layer[] Children(string prop)
        {
            var items = o.Array(prop);
            if (items.Length == 0) throw o.Error(prop, "expected at least one layer; found none");
            return items.Select(item => ReadLayer(item, depth + 1)).ToArray();
        }
        Layer layer;
        switch (type)
        {
            case "Conv2d":
                layer = new Conv2d(o.Int("filters", 1, Big), o.Int("kernelH", 1, Big), o.Int("kernelW", 1, Big),
                    o.Int("strideH", 1, Big), o.Int("strideW", 1, Big), o.Int("padH", 0, Big), o.Int("padW", 0, Big),
                    o.Bool("useBias"), o.Int("dilationH", 1, Big), o.Int("dilationW", 1, Big), o.Int("groups", 1, Big));
                break;
            case "Conv1d" or "Conv3d" or "ConvTranspose1d" or "ConvTranspose2d" or "ConvTranspose3d":
            {
                // Dilation and groups are optional: files written before Conv3d and ConvTranspose2d had them lack them.
                int rank = type[^2] - '0';
                int filters = o.Int("filters", 1, Big);
                int[] kernel = o.Axes("kernel", rank, 1, Big, null), stride = o.Axes("stride", rank, 1, Big, null), pad = o.Axes("pad", rank, 0, Big, null);
                int[]? outputPad = null, padEnd = null;
                if (type.StartsWith("ConvTranspose", StringComparison.Ordinal))
                {
                    if (o.Has("padEnd")) padEnd = o.Axes("padEnd", rank, 0, Big, null);
                    outputPad = o.Axes("outputPad", rank, 0, Big, null);
                    for (int a = 0; a < rank; a++)
                        if (outputPad[a] >= stride[a]) throw o.Error("outputPad", $"expected an integer in [0, {stride[a] - 1}]; found {outputPad[a]}");
                }
                bool useBias = o.Bool("useBias");
                var dilation = o.Axes("dilation", rank, 1, Big, 1);
                int groups = o.Has("groups") ? o.Int("groups", 1, Big) : 1;
                layer = ConvolutionLayer.From(ConvSpec.Of(filters, kernel, stride, pad, dilation, groups, useBias, outputPad, padEnd));
                break;
            }
            case "MaxPool2d":
            {
                int kh = o.Int("kernelH", 1, Big), kw = o.Int("kernelW", 1, Big);
                layer = new MaxPool2d(kh, kw, o.Int("strideH", 1, Big), o.Int("strideW", 1, Big), o.Int("padH", 0, kh / 2), o.Int("padW", 0, kw / 2), o.Bool("ceilMode"),
                    o.Has("dilationH") ? o.Int("dilationH", 1, Big) : 1, o.Has("dilationW") ? o.Int("dilationW", 1, Big) : 1);
                break;
            }
            case "AvgPool2d":
            {
                // ONNX's wider padding (different ends, beyond half the window) is below the window; padBottom and padRight only where they differ.
                int kh = o.Int("kernelH", 1, Big), kw = o.Int("kernelW", 1, Big);
                layer = new AvgPool2d(kh, kw, o.Int("strideH", 1, Big), o.Int("strideW", 1, Big), o.Int("padH", 0, kh - 1), o.Int("padW", 0, kw - 1),
                    o.Bool("ceilMode"), o.Bool("countIncludePad"), o.Has("padBottom") ? o.Int("padBottom", 0, kh - 1) : null, o.Has("padRight") ? o.Int("padRight", 0, kw - 1) : null);
                break;
            }
            case "PoolNd":
            {
                var op = ReadPoolOp(o);
                int kernel = o.Int("kernel", 1, Big);
                layer = new PoolNd(op, kernel, o.Int("stride", 1, Big), o.Int("pad", 0, kernel / 2), o.Bool("countIncludePad"));
                break;
            }
            case "GlobalPool": layer = new GlobalPool(ReadPoolOp(o)); break;
            case "ChannelMaxPool": layer = new ChannelMaxPool(o.Int("kernel", 1, Big), o.Int("stride", 1, Big)); break;
            case "ChannelAvgPool": layer = new ChannelAvgPool(o.Int("kernel", 1, Big), o.Int("stride", 1, Big)); break;
            case "Relu": layer = new Relu(); break;
            case "LeakyRelu": layer = new LeakyRelu(o.Float("slope", float.MinValue, float.MaxValue, "a finite number")); break;
            case "Elu": layer = new Elu(o.Float("alpha", float.MinValue, float.MaxValue, "a finite number")); break;
            case "Sigmoid": layer = new Sigmoid(); break;
            case "Tanh": layer = new Tanh(); break;
            case "HardTanh":
                layer = new HardTanh(o.IsNull("min") ? float.NegativeInfinity : o.Float("min", float.MinValue, float.MaxValue, "a finite number or null (no lower bound)"),
                    o.IsNull("max") ? float.PositiveInfinity : o.Float("max", float.MinValue, float.MaxValue, "a finite number or null (no upper bound)"));
                break;
            case "HardSigmoid":
                // Descriptions written before hard sigmoid had a slope and offset name neither: PyTorch's.
                layer = o.Has("alpha") || o.Has("beta")
                    ? new HardSigmoid(o.Float("alpha", float.MinValue, float.MaxValue, "a finite number"), o.Float("beta", float.MinValue, float.MaxValue, "a finite number"))
                    : new HardSigmoid();
                break;
            case "HardSwish": layer = new HardSwish(); break;
            case "Silu": layer = new Silu(); break;
            case "Gelu": layer = new Gelu(); break;
            case "Softmax": layer = new Softmax(ReadAxis(o)); break;
            case "LogSoftmax": layer = new LogSoftmax(ReadAxis(o)); break;
            case "BatchNorm":
                layer = new BatchNorm(o.Float("momentum", 0f, 1f, "a number in [0, 1]"),
                    o.Float("epsilon", float.Epsilon, float.MaxValue, "a finite number > 0"));
                break;
            case "Lrn":
                layer = new Lrn(o.Int("size", 1, Big), o.Float("alpha", float.MinValue, float.MaxValue, "a finite number"),
                    o.Float("beta", float.MinValue, float.MaxValue, "a finite number"), o.Float("k", float.MinValue, float.MaxValue, "a finite number"));
                break;
            case "Dropout": layer = new Dropout(o.Float("p", 0f, BitDecrement1, "a number in [0, 1)")); break;
            case "Flatten": layer = new Flatten(); break;
            case "Reshape": layer = new Reshape(o.Dims("target")); break;
            case "ConstantOperand":
                layer = new ConstantOperand(o.String("op") switch
                {
                    "add" => BinaryOp.Add,
                    "subtract" => BinaryOp.Subtract,
                    "multiply" => BinaryOp.Multiply,
                    "divide" => BinaryOp.Divide,
                    var other => throw o.Error("op", $"expected \"add\", \"subtract\", \"multiply\" or \"divide\"; found \"{other}\""),
                }, o.Dims("shape"));
                break;
            case "Identity": layer = new Identity(); break;
            case "ChannelShuffle": layer = new ChannelShuffle(o.Int("groups", 1, Big)); break;
            case "Permute": layer = new Permute(o.Ints("axes", 0, Big)); break;
            case "MatMul": layer = new MatMul(o.Int("units", 1, Big)); break;
            case "ChannelSlice": layer = new ChannelSlice(o.Int("start", 0, Big), o.Int("count", 1, Big)); break;
            case "Pad2d":
                layer = new Pad2d(o.Int("top", 0, Big), o.Int("bottom", 0, Big), o.Int("left", 0, Big), o.Int("right", 0, Big), o.String("mode") switch
                {
                    "constant" => PadMode.Constant,
                    "reflect" => PadMode.Reflect,
                    "edge" => PadMode.Edge,
                    var other => throw o.Error("mode", $"expected \"constant\", \"reflect\" or \"edge\"; found \"{other}\""),
                }, o.Float("value", float.MinValue, float.MaxValue, "a finite number"));
                break;
            case "Dense": layer = new Dense(o.Int("units", 1, Big), o.Bool("useBias")); break;
            case "Serial": layer = new Serial(Children("layers")); break;
            case "FanOut":
            {
                var join = o.String("join") switch
                {
                    "sum" => Join.Sum,
                    "concat" => Join.Concat,
                    "product" => Join.Product,
                    var other => throw o.Error("join", $"expected \"sum\", \"concat\" or \"product\"; found \"{other}\""),
                };
                layer = new FanOut(join, Children("branches"));
                break;
            }
            case "Residual":
                layer = new Residual(Child("block"), o.IsNull("shortcut") ? null : Child("shortcut"));
                break;
            case "Freeze": layer = new Freeze(Child("inner")); break;
            case "AuxiliaryHead": layer = new AuxiliaryHead(Child("head"), o.Float("weight", 0f, float.MaxValue, "a finite number >= 0")); break;
            default:
                throw o.Error("type", $"unknown layer type \"{type}\" (known: Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, MaxPool2d, AvgPool2d, PoolNd, " +
                                      "GlobalPool, ChannelMaxPool, ChannelAvgPool, Relu, LeakyRelu, Elu, Sigmoid, Tanh, HardTanh, HardSigmoid, HardSwish, Silu, Gelu, Softmax, LogSoftmax, BatchNorm, Lrn, Dropout, " +
                                      "Flatten, Reshape, Identity, ChannelShuffle, Permute, Pad2d, ChannelSlice, Dense, MatMul, ConstantOperand, Serial, FanOut, Residual, Freeze, AuxiliaryHead)");
        }
        o.End();
        return layer with { Name = name, WeightInit = init };
    }

    /// <summary>The largest float below 1 (Dropout's probability must be below 1).</summary>
    private static readonly float BitDecrement1 = MathF.BitDecrement(1f);

    private static Init? ReadInit(Reader.Obj layer)
    {
        if (layer.IsNull("weightInit")) return null;
        var o = layer.Object("weightInit");
        var scheme = o.String("scheme");
        Init init = scheme switch
        {
            "pytorch" => Init.PyTorch,
            "glorot_uniform" => Init.GlorotUniform,
            "he_normal" => Init.HeNormal,
            "zeros" => Init.Zeros,
            "normal" => Init.Normal(o.Float("std", float.MinValue, float.MaxValue, "a finite number")),
            _ => throw o.Error("scheme", $"expected \"pytorch\", \"glorot_uniform\", \"he_normal\", \"zeros\" or \"normal\"; found \"{scheme}\""),
        };
        o.End();
        return init;
    }

    private static PoolOp ReadPoolOp(Reader.Obj o) => o.String("op") switch
    {
        "max" => PoolOp.Max,
        "average" => PoolOp.Average,
        var other => throw o.Error("op", $"expected \"max\" or \"average\"; found \"{other}\""),
    };

    private static int ReadAxis(Reader.Obj o)
    {
        int axis = o.Int("axis", int.MinValue, int.MaxValue);
        return axis != 0 ? axis : throw o.Error("axis", "axis 0 is the batch axis; expected a non-zero axis");
    }
}
