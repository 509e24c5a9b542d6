using System.Globalization;
using System.Text;
using Cnn.Core;

namespace Cnn.Dsl.PyTorch;

/// <summary>
/// Writes a network as the source of a Python module defining <c>class Network(torch.nn.Module)</c>: one expression per
/// node, combinators as the runtime's <c>Serial</c>, <c>Sum</c> and <c>Concat</c> (children registered under our layer
/// names, so the module's state_dict keys are our paths with '/' as '.'), each leaf kind as the <c>torch.nn</c> module that
/// computes it, or a small module of the runtime (<c>model_runtime.py</c>) where PyTorch has none or computes differently.
/// </summary>
internal static class PyTorchModuleWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The whole <c>model.py</c>: a header, the runtime, the network's class and the command-line entry.</summary>
    public static string Source(Network network, string title)
    {
        var top = Top(network);
        var frozen = network.RootNode.Leaves().Where(n => n.Frozen).SelectMany(n => n.ParameterSpecs()).Select(s => Py.Str(Key(s.Path))).ToArray();
        var sb = new StringBuilder();
        const string Quotes = "\"\"\"";
        sb.Append(CultureInfo.InvariantCulture, $"{Quotes}{Py.DocText(title)}: a plain torch.nn.Module written by cnn's PyTorch writer.\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"Input [N, {string.Join(", ", network.InputShape)}], output [N, {string.Join(", ", network.OutputShape)}]. ");
        sb.Append("The state_dict keys are cnn's parameter and state\npaths with '/' as '.'; load_weights(net, path) reads a cnn checkpoint (safetensors) without extra packages.\n\n");
        sb.Append("    python3 model.py WEIGHTS.safetensors X.npy Y.npy    # the eval-mode output for the batch X, written to Y\n");
        sb.Append(Quotes).Append("\n\n");
        sb.Append(Runtime);
        sb.Append(CultureInfo.InvariantCulture, $"""


            INPUT_SHAPE = {Py.Tuple(network.InputShape)}
            OUTPUT_SHAPE = {Py.Tuple(network.OutputShape)}


            class Network({top.Class}):
                "{Py.DocText(title)}: [N, {string.Join(", ", network.InputShape)}] -> [N, {string.Join(", ", network.OutputShape)}]."

                def __init__(self):
                    super().__init__({top.Arguments(2)})

            """);
        if (frozen.Length > 0) sb.Append(CultureInfo.InvariantCulture, $"        freeze(self, [{string.Join(", ", frozen)}])\n");
        sb.Append("""


            if __name__ == "__main__":
                sys.exit(main(sys.argv[1:], Network))

            """);
        return sb.ToString();
    }

    /// <summary>The runtime's text (embedded from <c>model_runtime.py</c>).</summary>
    private static string Runtime => PyTorchResources.Text("model_runtime.py").TrimEnd('\n');

    private static string Key(string path) => path.Replace('/', '.');

    /// <summary>A combinator's class and constructor arguments, the lines of its children indented to a given depth.</summary>
    private sealed record Container(string Class, Func<int, string> Arguments);

    /// <summary>
    /// What the Network class derives from: the root combinator itself when the root is unnamed (its children's names are
    /// the first segments of every path); otherwise a Serial holding the root under its name.
    /// </summary>
    private static Container Top(Network network)
    {
        var root = network.RootNode;
        while (root.Layer is Freeze && root.Path.Length == 0) root = root.Children[0];
        if (root.Path.Length == 0) return Combinator(root) ?? throw new CnnException(
            $"The PyTorch writer found an unnamed {root.Layer.Kind} layer as the whole network: its parameters would have no module name in PyTorch; name it (.Named(\"...\")) or put it in a named Serial.");
        return new Container("Serial", depth => Children(new[] { (root.Path, root) }, depth));
    }

    private static string Expression(Node node, int depth)
    {
        if (node.Layer is Freeze) return Expression(node.Children[0], depth);
        var c = Combinator(node);
        return c is null ? Leaf(node) : $"{c.Class}({c.Arguments(depth)})";
    }

    private static Container? Combinator(Node node) => node.Layer switch
    {
        Serial s => new Container("Serial", d => Children(s.ChildNames().Zip(node.Children), d)),
        FanOut { Join: Join.Sum } f => new Container("Sum", d => Children(f.ChildNames().Zip(node.Children), d)),
        FanOut { Join: Join.Product } f => new Container("Product", d => Children(f.ChildNames().Zip(node.Children), d)),
        FanOut f => new Container("Concat", d => Children(f.ChildNames().Zip(node.Children), d)),
        Residual => new Container("Sum", d => Children(new[] { "block", "shortcut" }.Zip(node.Children), d)),
        AuxiliaryHead a => new Container("Auxiliary", d => $"{Py.Float(a.Weight, node)}, {Children(new[] { AuxiliaryHead.HeadSegment }.Zip(node.Children), d)}"),
        Freeze => Combinator(node.Children[0]),
        _ => null,
    };

    private static string Children(IEnumerable<(string Name, Node Node)> children, int depth)
    {
        string pad = new(' ', 4 * (depth + 1));
        var lines = children.Select(c =>
        {
            if (c.Name.Contains('.'))
                throw new CnnException($"Layer '{c.Node.Path}': PyTorch joins module names with '.', so a layer name cannot contain one; rename the layer.");
            return $"{pad}({Py.Str(c.Name)}, {Expression(c.Node, depth + 1)}),";
        });
        return $"[\n{string.Join("\n", lines)}\n{new string(' ', 4 * depth)}]";
    }

    /// <summary>
    /// nn.ConvNd or nn.ConvTransposeNd, every option per axis; a transposed convolution whose padding differs between the ends
    /// of an axis is the runtime's ConvTransposeNdCropped (the module unpadded, its output cropped; the same parameters).
    /// </summary>
    private static string Convolution(int channels, ConvSpec s)
    {
        var g = s.Geometry;
        static string T(int[] v) => v.Length == 1 ? $"({v[0]},)" : "(" + string.Join(", ", v) + ")";
        string outputPad = s.Transposed ? $", output_padding={T(s.OutputPad)}" : "";
        bool cropped = s.Transposed && !g.SymmetricPadding;
        string name = cropped ? s.Name + "Cropped" : "nn." + s.Name;
        string padding = cropped ? T(new int[g.Rank]) : T(g.PadBegin);
        string crop = cropped ? $", crop=({string.Join("", g.PadBegin.Zip(g.PadEnd, (b, e) => $"({b}, {e}), "))})" : "";
        return $"{name}({channels}, {s.Filters}, {T(g.Kernel)}, stride={T(g.Stride)}, padding={padding}{outputPad}, " +
               $"dilation={T(g.Dilation)}, groups={g.Groups}, bias={Py.Bool(s.UseBias)}{crop})";
    }

    /// <summary>The one place a leaf kind becomes PyTorch: a torch.nn module, or one of the runtime's.</summary>
    private static string Leaf(Node node)
    {
        int channels = node.Input.Rank > 0 ? node.Input[0] : 0, spatial = node.Input.Rank - 1;
        string frozen = node.Frozen ? ", frozen=True" : "";
        return node.Layer switch
        {
            ConvolutionLayer c => Convolution(channels, c.Spec()),
            Dense d => $"nn.Linear({channels}, {d.Units}, bias={Py.Bool(d.UseBias)})",
            MatMul => $"MatMul({Py.Tuple(node.ParameterSpecs().Single().Spec.Shape)})",
            MaxPool2d m => $"nn.MaxPool2d(({m.KernelH}, {m.KernelW}), stride=({m.StrideH}, {m.StrideW}), padding=({m.PadH}, {m.PadW}), " +
                           (m.Dilated ? $"dilation=({m.DilationH}, {m.DilationW}), " : "") + $"ceil_mode={Py.Bool(m.CeilMode)})",
            AvgPool2d { SymmetricPadding: false } a => $"AvgPoolPadded(({a.KernelH}, {a.KernelW}), ({a.StrideH}, {a.StrideW}), " +
                                                       $"({a.PadW}, {a.PadEndW}, {a.PadH}, {a.PadEndH}), {Py.Bool(a.CountIncludePad)})",
            AvgPool2d a => $"nn.AvgPool2d(({a.KernelH}, {a.KernelW}), stride=({a.StrideH}, {a.StrideW}), padding=({a.PadH}, {a.PadW}), " +
                           $"ceil_mode={Py.Bool(a.CeilMode)}, count_include_pad={Py.Bool(a.CountIncludePad)})",
            PoolNd { Op: PoolOp.Max } p when spatial == 1 => $"nn.MaxPool1d({p.Kernel}, stride={p.Stride}, padding={p.Pad})",
            PoolNd p when spatial == 1 => $"nn.AvgPool1d({p.Kernel}, stride={p.Stride}, padding={p.Pad}, count_include_pad={Py.Bool(p.CountIncludePad)})",
            PoolNd { Op: PoolOp.Max } p => $"nn.MaxPool3d({p.Kernel}, stride={p.Stride}, padding={p.Pad})",
            // avg_pool3d refuses an input smaller than the window before padding, which the DSL allows (as ONNX does).
            PoolNd p when node.Input.Skip(1).All(d => d >= p.Kernel) =>
                $"nn.AvgPool3d({p.Kernel}, stride={p.Stride}, padding={p.Pad}, count_include_pad={Py.Bool(p.CountIncludePad)})",
            PoolNd p => $"AvgPoolPadded(({p.Kernel},) * 3, ({p.Stride},) * 3, ({p.Pad},) * 6, {Py.Bool(p.CountIncludePad)})",
            GlobalPool { Op: PoolOp.Max } => "GlobalMaxPool()",
            GlobalPool => "GlobalAvgPool()",
            ChannelMaxPool m => $"ChannelMaxPool({m.Kernel}, {m.Stride})",
            ChannelAvgPool a => $"ChannelAvgPool({a.Kernel}, {a.Stride})",
            Relu => "nn.ReLU()",
            LeakyRelu l => $"nn.LeakyReLU({Py.Float(l.Slope, node)})",
            Elu e => $"nn.ELU({Py.Float(e.Alpha, node)})",
            Sigmoid => "nn.Sigmoid()",
            HardTanh h => $"nn.Hardtanh({Py.Bound(h.Min, node)}, {Py.Bound(h.Max, node)})",
            HardSigmoid { IsPyTorch: true } => "nn.Hardsigmoid()",
            HardSigmoid h => $"HardSigmoid({Py.Float(h.Alpha, node)}, {Py.Float(h.Beta, node)})",
            HardSwish => "nn.Hardswish()",
            Silu => "nn.SiLU()",
            Gelu => "nn.GELU()",
            Pad2d p => $"Pad2d(({p.Left}, {p.Right}, {p.Top}, {p.Bottom}), {Py.Str(p.Mode switch { PadMode.Reflect => "reflect", PadMode.Edge => "replicate", _ => "constant" })}, {Py.Float(p.Value, node)})",
            ChannelShuffle c => $"ChannelShuffle({c.Groups})",
            Permute p => $"Permute(({string.Join("", p.Axes.Select(a => $"{a}, "))}))",
            ChannelSlice c => $"ChannelSlice({c.Start}, {c.Count})",
            Tanh => "nn.Tanh()",
            Softmax s => $"nn.Softmax(dim={s.Axis})",
            LogSoftmax s => $"nn.LogSoftmax(dim={s.Axis})",
            Lrn l => $"nn.LocalResponseNorm({l.Size}, alpha={Py.Float(l.Alpha, node)}, beta={Py.Float(l.Beta, node)}, k={Py.Float(l.K, node)})",
            Dropout d => $"Dropout({Py.Float(d.P, node)}{frozen})",
            BatchNorm b => $"BatchNorm({channels}, momentum={Py.Float(b.Momentum, node)}, eps={Py.Float(b.Epsilon, node)}{frozen})",
            Identity => "nn.Identity()",
            Flatten => "nn.Flatten()",
            Reshape r => $"Reshape({Py.Tuple(r.Target)})",
            ConstantOperand k => $"ConstantOperand({Py.Str(k.Op.ToString().ToLowerInvariant())}, {Py.Tuple(k.Shape)})",
            _ => throw new CnnException(
                $"Layer '{node.Path}': the PyTorch writer cannot express layer kind '{node.Layer.Kind}' ({node.Layer.GetType().Name}); it has no rule for it."),
        };
    }

    /// <summary>Python literals.</summary>
    private static class Py
    {
        public static string Bool(bool b) => b ? "True" : "False";

        /// <summary>A float32 in its shortest round-trip form; Python's float of it rounds back to the same float32.</summary>
        public static string Float(float f, Node node) => float.IsFinite(f)
            ? f.ToString("R", Inv)
            : throw new CnnException($"Layer '{node.Path}': the PyTorch writer cannot write the value {f} of {node.Layer.GetType().Name}.");

        /// <summary>A bound that may be infinite (no bound on that side): a float, or Python's infinity.</summary>
        public static string Bound(float f, Node node) => float.IsInfinity(f) ? (f > 0 ? "float(\"inf\")" : "float(\"-inf\")") : Float(f, node);

        /// <summary>A string literal (JSON's escapes are Python's).</summary>
        public static string Str(string s) => System.Text.Json.JsonSerializer.Serialize(s);

        public static string Tuple(Shape shape) => shape.Rank == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";

        /// <summary>Text safe inside a docstring or a one-line string.</summary>
        public static string DocText(string s) => new(s.Select(c => c is '"' or '\\' || char.IsControl(c) ? '_' : c).ToArray());
    }
}
