using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Cnn.Core.Kernels;

namespace Cnn.Dsl.IO;

// NetworkJson, writing: a network or a layer as JSON, every property of each record.
public static partial class NetworkJson
{
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
}
