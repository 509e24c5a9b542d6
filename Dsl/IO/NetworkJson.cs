using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Cnn.Core;
using Cnn.Core.Kernels;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.IO;

/// <summary>
/// A network description as self-describing JSON, so that a file (a checkpoint's metadata, a model directory) carries
/// its network. A network reads
/// <c>{"format":"cnn-dsl-network/1","input":[1,28,28],"strict":false,"layer":{...}}</c>; each layer is an object
/// <c>{"type":"Conv2d","name":"conv1","weightInit":null,"filters":30,"kernelH":5,...}</c> with every property of its
/// record written, defaults included (camelCase; enums as lower-case strings; a weight initialisation as
/// <c>null</c>, <c>{"scheme":"he_normal"}</c> or <c>{"scheme":"normal","std":0.02}</c>); combinators hold their
/// children (<c>layers</c>, <c>branches</c>, <c>block</c>/<c>shortcut</c>, <c>inner</c>).
/// Reading checks everything (types, missing and extra properties, ranges, nesting) and reports the JSON path.
/// </summary>
public static class NetworkJson
{
    /// <summary>The value of the <c>format</c> property of a network description.</summary>
    public const string Format = "cnn-dsl-network/1";

    /// <summary>The environment variable that sets <see cref="MaxBytes"/>.</summary>
    public const string MaxBytesVariable = "CNN_MAX_NETWORK_JSON_BYTES";

    /// <summary>
    /// The largest network description read from a file: <c>CNN_MAX_NETWORK_JSON_BYTES</c> when set, else 4 MiB (the
    /// zoo's largest network is a few kilobytes; 4 MiB is some 40,000 layers).
    /// </summary>
    public static long MaxBytes => InputFile.Limit(MaxBytesVariable, 4L << 20);

    /// <summary>The most layers (leaves and combinators) a description may hold; more is refused as it is read, before the network is built.</summary>
    public const int MaxLayers = 100_000;

    /// <summary>The deepest layer nesting written or read (the root layer is at depth 1); deeper descriptions are refused.</summary>
    public const int MaxDepth = 64;

    /// <summary>JSON nesting allowed by the parser: two levels per layer (object and child array), plus the wrapper and leaves' values.</summary>
    private const int MaxJsonDepth = 2 * MaxDepth + 8;

    // ---------------------------------------------------------------- writing

    /// <summary>The description of a network: its root layer, its input shape and its strict flag.</summary>
    /// <param name="network">The network.</param>
    /// <param name="indented">Whether to indent the JSON for reading (default compact).</param>
    /// <exception cref="ArgumentException">A layer cannot be described: a non-finite number, or nesting deeper than <see cref="MaxDepth"/>.</exception>
    public static string Serialize(Network network, bool indented = false)
    {
        ArgumentNullException.ThrowIfNull(network);
        return Write(indented, w =>
        {
            w.WriteStartObject();
            w.WriteString("format", Format);
            w.WriteStartArray("input");
            foreach (var d in network.InputShape) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteBoolean("strict", network.Strict);
            w.WritePropertyName("layer");
            WriteLayer(w, network.Root, "$.layer", 1);
            w.WriteEndObject();
        });
    }

    /// <summary>The description of one layer tree. The layer is not checked beyond what the format needs: reading refuses what a layer's own rules refuse (a zero filter count, say).</summary>
    /// <param name="layer">The layer.</param>
    /// <param name="indented">Whether to indent the JSON for reading (default compact).</param>
    /// <exception cref="ArgumentException">A layer cannot be described: a non-finite number, or nesting deeper than <see cref="MaxDepth"/>.</exception>
    public static string SerializeLayer(Layer layer, bool indented = false)
    {
        ArgumentNullException.ThrowIfNull(layer);
        return Write(indented, w => WriteLayer(w, layer, "$", 1));
    }

    private static string Write(bool indented, Action<Utf8JsonWriter> body)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions
               {
                   Indented = indented, MaxDepth = MaxJsonDepth + 1, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
               }))
            body(w);
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Writes one layer. Every layer type has its case here and in <see cref="ReadLayer"/>, in the same order.</summary>
    private static void WriteLayer(Utf8JsonWriter w, Layer layer, string path, int depth)
    {
        if (depth > MaxDepth)
            throw new ArgumentException($"{path}: layers nest deeper than {MaxDepth}; such a description would be refused when read.", nameof(layer));
        w.WriteStartObject();
        w.WriteString("type", TypeName(layer, path));
        if (layer.Name is null) w.WriteNull("name");
        else w.WriteString("name", layer.Name);
        WriteInit(w, layer.WeightInit, path + ".weightInit");
        void F(string name, float value)
        {
            if (!float.IsFinite(value)) throw new ArgumentException($"{path}.{name}: {value} is not a finite number; the description cannot hold it.", nameof(layer));
            w.WriteNumber(name, value);
        }
        void Child(string name, Layer child) { w.WritePropertyName(name); WriteLayer(w, child, path + "." + name, depth + 1); }
        void Children(string name, IReadOnlyList<Layer> children)
        {
            w.WriteStartArray(name);
            for (int i = 0; i < children.Count; i++) WriteLayer(w, children[i], $"{path}.{name}[{i}]", depth + 1);
            w.WriteEndArray();
        }
        switch (layer)
        {
            case Conv2d c:
                w.WriteNumber("filters", c.Filters); w.WriteNumber("kernelH", c.KernelH); w.WriteNumber("kernelW", c.KernelW);
                w.WriteNumber("strideH", c.StrideH); w.WriteNumber("strideW", c.StrideW); w.WriteNumber("padH", c.PadH); w.WriteNumber("padW", c.PadW);
                w.WriteBoolean("useBias", c.UseBias); w.WriteNumber("dilationH", c.DilationH); w.WriteNumber("dilationW", c.DilationW); w.WriteNumber("groups", c.Groups);
                break;
            case ConvolutionLayer c:
            {
                // Conv2d above keeps its older per-name fields; the other kinds write each option as one number when it is the
                // same on every axis (so files of the square-only versions read as before) and as an array otherwise.
                var spec = c.Spec();
                var g = spec.Geometry;
                void Axes(string name, int[] values)
                {
                    if (values.All(v => v == values[0])) { w.WriteNumber(name, values[0]); return; }
                    w.WriteStartArray(name);
                    foreach (var v in values) w.WriteNumberValue(v);
                    w.WriteEndArray();
                }
                w.WriteNumber("filters", spec.Filters); Axes("kernel", g.Kernel); Axes("stride", g.Stride); Axes("pad", g.PadBegin);
                if (spec.Transposed) Axes("outputPad", spec.OutputPad);
                // Written only where the ends differ, so files of other convolutions stay as they were.
                if (!g.SymmetricPadding) Axes("padEnd", g.PadEnd);
                w.WriteBoolean("useBias", spec.UseBias); Axes("dilation", g.Dilation); w.WriteNumber("groups", g.Groups);
                break;
            }
            case MaxPool2d p:
                w.WriteNumber("kernelH", p.KernelH); w.WriteNumber("kernelW", p.KernelW); w.WriteNumber("strideH", p.StrideH); w.WriteNumber("strideW", p.StrideW);
                w.WriteNumber("padH", p.PadH); w.WriteNumber("padW", p.PadW); w.WriteBoolean("ceilMode", p.CeilMode);
                // Written only for a dilated window, so files of other poolings stay as they were.
                if (p.Dilated) { w.WriteNumber("dilationH", p.DilationH); w.WriteNumber("dilationW", p.DilationW); }
                break;
            case AvgPool2d p:
                w.WriteNumber("kernelH", p.KernelH); w.WriteNumber("kernelW", p.KernelW); w.WriteNumber("strideH", p.StrideH); w.WriteNumber("strideW", p.StrideW);
                w.WriteNumber("padH", p.PadH); w.WriteNumber("padW", p.PadW); w.WriteBoolean("ceilMode", p.CeilMode); w.WriteBoolean("countIncludePad", p.CountIncludePad);
                // Written only where they differ, so files of symmetric pooling stay as they were.
                if (p.PadEndH != p.PadH) w.WriteNumber("padBottom", p.PadEndH);
                if (p.PadEndW != p.PadW) w.WriteNumber("padRight", p.PadEndW);
                break;
            case PoolNd p:
                w.WriteString("op", PoolOpName(p.Op, path)); w.WriteNumber("kernel", p.Kernel); w.WriteNumber("stride", p.Stride);
                w.WriteNumber("pad", p.Pad); w.WriteBoolean("countIncludePad", p.CountIncludePad);
                break;
            case GlobalPool p:
                w.WriteString("op", PoolOpName(p.Op, path));
                break;
            case ChannelMaxPool p:
                w.WriteNumber("kernel", p.Kernel); w.WriteNumber("stride", p.Stride);
                break;
            case ChannelAvgPool p:
                w.WriteNumber("kernel", p.Kernel); w.WriteNumber("stride", p.Stride);
                break;
            case ChannelShuffle c: w.WriteNumber("groups", c.Groups); break;
            case MatMul m: w.WriteNumber("units", m.Units); break;
            case Permute p:
                w.WriteStartArray("axes");
                foreach (var a in p.Axes) w.WriteNumberValue(a);
                w.WriteEndArray();
                break;
            case ChannelSlice c: w.WriteNumber("start", c.Start); w.WriteNumber("count", c.Count); break;
            case Pad2d p:
                w.WriteNumber("top", p.Top); w.WriteNumber("bottom", p.Bottom); w.WriteNumber("left", p.Left); w.WriteNumber("right", p.Right);
                w.WriteString("mode", p.Mode switch { PadMode.Reflect => "reflect", PadMode.Edge => "edge", _ => "constant" }); F("value", p.Value);
                break;
            case Relu or Sigmoid or Tanh or HardSwish or Silu or Gelu or Flatten or Identity:
                break;
            case LeakyRelu a: F("slope", a.Slope); break;
            case HardTanh h:
                // An infinite bound (no clipping on that side) is null: JSON has no infinity.
                if (h.Min == float.NegativeInfinity) w.WriteNull("min"); else F("min", h.Min);
                if (h.Max == float.PositiveInfinity) w.WriteNull("max"); else F("max", h.Max);
                break;
            case HardSigmoid h: F("alpha", h.Alpha); F("beta", h.Beta); break;
            case Elu a: F("alpha", a.Alpha); break;
            case Softmax a: w.WriteNumber("axis", a.Axis); break;
            case LogSoftmax a: w.WriteNumber("axis", a.Axis); break;
            case BatchNorm b: F("momentum", b.Momentum); F("epsilon", b.Epsilon); break;
            case Lrn l: w.WriteNumber("size", l.Size); F("alpha", l.Alpha); F("beta", l.Beta); F("k", l.K); break;
            case Dropout d: F("p", d.P); break;
            case Reshape r:
                w.WriteStartArray("target");
                foreach (var d in r.Target) w.WriteNumberValue(d);
                w.WriteEndArray();
                break;
            case Dense d: w.WriteNumber("units", d.Units); w.WriteBoolean("useBias", d.UseBias); break;
            case ConstantOperand k:
                w.WriteString("op", BinaryOpName(k.Op, path));
                w.WriteStartArray("shape");
                foreach (var d in k.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                break;
            case Serial s: Children("layers", s.Layers); break;
            case FanOut f: w.WriteString("join", JoinName(f.Join, path)); Children("branches", f.Branches); break;
            case Residual r:
                Child("block", r.Block);
                if (r.Shortcut is null) w.WriteNull("shortcut");
                else Child("shortcut", r.Shortcut);
                break;
            case Freeze f: Child("inner", f.Inner); break;
            case AuxiliaryHead a: F("weight", a.Weight); Child("head", a.Head); break;
            default: throw new ArgumentException($"{path}: no description for layer type {layer.GetType().Name}.", nameof(layer));
        }
        w.WriteEndObject();
    }

    /// <summary>The <c>type</c> of a layer: its record's name, for the types this format knows.</summary>
    private static string TypeName(Layer layer, string path) => layer switch
    {
        ConvolutionLayer or MaxPool2d or AvgPool2d or PoolNd or GlobalPool or ChannelMaxPool or ChannelAvgPool or ChannelShuffle or Permute or Pad2d or ChannelSlice
            or Relu or LeakyRelu or Elu or Sigmoid or Tanh or HardTanh or HardSigmoid or HardSwish or Silu or Gelu or Softmax or LogSoftmax or BatchNorm or Lrn or Dropout
            or Flatten or Reshape or Identity or Dense or MatMul or ConstantOperand or Serial or FanOut or Residual or Freeze or AuxiliaryHead => layer.GetType().Name,
        _ => throw new ArgumentException($"{path}: no description for layer type {layer.GetType().Name}.", nameof(layer)),
    };

    private static void WriteInit(Utf8JsonWriter w, Init? init, string path)
    {
        if (init is null) { w.WriteNull("weightInit"); return; }
        w.WriteStartObject("weightInit");
        w.WriteString("scheme", init.Scheme);
        if (init.Std is { } std)
        {
            if (!float.IsFinite(std)) throw new ArgumentException($"{path}.std: {std} is not a finite number; the description cannot hold it.", nameof(init));
            w.WriteNumber("std", std);
        }
        w.WriteEndObject();
    }

    private static string PoolOpName(PoolOp op, string path) => op switch
    {
        PoolOp.Max => "max",
        PoolOp.Average => "average",
        _ => throw new ArgumentException($"{path}.op: {op} is not a pooling operation.", nameof(op)),
    };

    private static string BinaryOpName(BinaryOp op, string path) => op switch
    {
        BinaryOp.Add => "add",
        BinaryOp.Subtract => "subtract",
        BinaryOp.Multiply => "multiply",
        BinaryOp.Divide => "divide",
        _ => throw new ArgumentException($"{path}.op: {op} is not an element-wise operation.", nameof(op)),
    };

    private static string JoinName(Join join, string path) => join switch
    {
        Join.Sum => "sum",
        Join.Concat => "concat",
        Join.Product => "product",
        _ => throw new ArgumentException($"{path}.join: {join} is not a join.", nameof(join)),
    };

    // ---------------------------------------------------------------- reading

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

    /// <summary>Checked access to JSON objects: each property read once, every property read, types and ranges checked.</summary>
    private static class Reader
    {
        public sealed class Obj
        {
            private readonly string _path, _source;
            private readonly Dictionary<string, JsonElement> _props = new(StringComparer.Ordinal);
            private readonly List<string> _order = new();
            private readonly HashSet<string> _read = new(StringComparer.Ordinal);

            public Obj(JsonElement e, string path, string source)
            {
                _path = path;
                _source = source;
                if (e.ValueKind != JsonValueKind.Object) throw Fail(path, $"expected an object; found {Describe(e)}");
                foreach (var p in e.EnumerateObject())
                {
                    if (!_props.TryAdd(p.Name, p.Value)) throw Fail(Path(p.Name), "the property appears twice");
                    _order.Add(p.Name);
                }
            }

            public FormatException Error(string? prop, string message) => Fail(prop is null ? _path : Path(prop), message);

            /// <summary>Refuses properties that were not read.</summary>
            public void End()
            {
                foreach (var name in _order)
                    if (!_read.Contains(name)) throw Fail(Path(name), "unexpected property");
            }

            private JsonElement Get(string prop)
            {
                if (!_props.TryGetValue(prop, out var e)) throw Fail(Path(prop), "missing property");
                _read.Add(prop);
                return e;
            }

            public bool IsNull(string prop) => Get(prop).ValueKind == JsonValueKind.Null;

            public string String(string prop)
            {
                var e = Get(prop);
                if (e.ValueKind != JsonValueKind.String) throw Fail(Path(prop), $"expected a string; found {Describe(e)}");
                string s;
                try { s = e.GetString()!; }
                catch (InvalidOperationException ex) { throw new FormatException($"'{_source}': {Path(prop)}: the string is not valid Unicode.", ex); }
                for (int i = 0; i < s.Length; i++)
                    if (char.IsSurrogate(s[i]) && !(i + 1 < s.Length && char.IsSurrogatePair(s[i], s[i + 1]) && i++ >= 0))
                        throw Fail(Path(prop), "the string is not valid Unicode (a lone surrogate)");
                return s;
            }

            public string? NullableString(string prop) => IsNull(prop) ? null : String(prop);

            public bool Bool(string prop)
            {
                var e = Get(prop);
                return e.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw Fail(Path(prop), $"expected true or false; found {Describe(e)}"),
                };
            }

            public int Int(string prop, int min, int max) => IntValue(Get(prop), Path(prop), min, max);

            /// <summary>Whether the object has the property (for properties that older files lack).</summary>
            public bool Has(string prop) => _props.ContainsKey(prop);

            /// <summary>
            /// A value per axis: one integer for every axis, or an array of <paramref name="rank"/> integers; a missing property
            /// gives <paramref name="fallback"/> on every axis when there is one.
            /// </summary>
            public int[] Axes(string prop, int rank, int min, int max, int? fallback)
            {
                if (fallback is { } f && !Has(prop)) return Enumerable.Repeat(f, rank).ToArray();
                var e = Get(prop);
                var path = Path(prop);
                if (e.ValueKind == JsonValueKind.Number) return Enumerable.Repeat(IntValue(e, path, min, max), rank).ToArray();
                if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() != rank)
                    throw Fail(path, $"expected an integer or an array of {rank} integers; found {Describe(e)}");
                return e.EnumerateArray().Select((item, i) => IntValue(item, $"{path}[{i}]", min, max)).ToArray();
            }

            public float Float(string prop, float min, float max, string expected)
            {
                var e = Get(prop);
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetSingle(out var v) || !float.IsFinite(v) || v < min || v > max)
                    throw Fail(Path(prop), $"expected {expected}; found {Describe(e)}");
                return v;
            }

            public Obj Object(string prop) => new(Get(prop), Path(prop), _source);

            public Obj[] Array(string prop)
            {
                var e = Get(prop);
                if (e.ValueKind != JsonValueKind.Array) throw Fail(Path(prop), $"expected an array; found {Describe(e)}");
                return e.EnumerateArray().Select((item, i) => new Obj(item, $"{Path(prop)}[{i}]", _source)).ToArray();
            }

            /// <summary>An array of dimensions (integers >= 0) forming a valid shape.</summary>
            /// <summary>An array of integers, each in <c>[min, max]</c>.</summary>
            public int[] Ints(string prop, int min, int max)
            {
                var e = Get(prop);
                var path = Path(prop);
                if (e.ValueKind != JsonValueKind.Array) throw Fail(path, $"expected an array of integers; found {Describe(e)}");
                return e.EnumerateArray().Select((item, i) => IntValue(item, $"{path}[{i}]", min, max)).ToArray();
            }

            public Shape Dims(string prop)
            {
                var e = Get(prop);
                var path = Path(prop);
                if (e.ValueKind != JsonValueKind.Array) throw Fail(path, $"expected an array of dimensions; found {Describe(e)}");
                var dims = e.EnumerateArray().Select((item, i) => IntValue(item, $"{path}[{i}]", 0, int.MaxValue)).ToArray();
                try { return new Shape(dims); }
                catch (ShapeException ex) { throw new FormatException($"'{_source}': {path}: {ex.Message}", ex); }
            }

            private int IntValue(JsonElement e, string path, int min, int max)
            {
                string range = min == int.MinValue ? "an integer" : max == int.MaxValue ? $"an integer >= {min}" : $"an integer in [{min}, {max}]";
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out var v) || v < min || v > max)
                    throw Fail(path, $"expected {range}; found {Describe(e)}");
                return v;
            }

            private string Path(string prop) =>
                prop.Length > 0 && prop.All(char.IsAsciiLetterOrDigit) ? $"{_path}.{prop}" : $"{_path}[\"{JsonEncodedText.Encode(prop)}\"]";

            private FormatException Fail(string path, string message) => new($"'{_source}': {path}: {message}.");

            private static string Describe(JsonElement e)
            {
                string text = e.GetRawText();
                if (text.Length > 40) text = text[..40] + "...";
                return e.ValueKind switch
                {
                    JsonValueKind.Object => "an object",
                    JsonValueKind.Array => "an array",
                    JsonValueKind.String => "the string " + text,
                    JsonValueKind.Number => text,
                    _ => text,
                };
            }
        }
    }
}
