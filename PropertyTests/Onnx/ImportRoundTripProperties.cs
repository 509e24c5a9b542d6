using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using static Cnn.Tests.Onnx.OnnxTestSupport;

namespace Cnn.Tests.Onnx;

/// <summary>Export then import is the identity, and export matches the native interpreter, on random networks of every layer kind.</summary>
public sealed class ImportRoundTripProperties
{
    /// <summary>
    /// The tree as export keeps it: names and initialisers dropped (the paths are compared separately), freezing
    /// (a training matter) and dropout (the identity at inference, left out) removed, a root or fan-out branch that is a
    /// Serial around one layer unwrapped (an unnamed Serial adds nothing to paths, so the two are the same network; a
    /// root Serial around a fan-out whose one branch held only dropout imports as the bare fan-out), and a
    /// pooling ceil mode that changes nothing for the layer's input shape turned off (ONNX has then no way to say it
    /// was on: the same windows are written with ceil mode off), and a max pooling's count-padding flag (meaningless
    /// for a maximum) set to its default.
    /// </summary>
    public static Layer Canonical(Network network)
    {
        var layer = Strip(network.RootNode) ?? new Serial(new Identity());
        return Unwrap(layer);
    }

    /// <summary>An unnamed Serial around one layer is that layer (for paths the wrapper adds nothing).</summary>
    private static Layer Unwrap(Layer layer)
    {
        while (layer is Serial { Layers: [var only] }) layer = only;
        return layer;
    }

    /// <summary>The tensors export writes: all but those of the auxiliary heads.</summary>
    public static Parameters ExportedPart(Network network, Parameters tensors)
    {
        var heads = network.Heads.Select(h => h.Path + "/").ToArray();
        return Parameters.Of(tensors.Entries.Where(kv => !heads.Any(h => kv.Key.StartsWith(h, StringComparison.Ordinal))));
    }

    private static Layer? Strip(Node node) => node.Layer switch
    {
        Freeze => Strip(node.Children[0]),
        // Inference uses the main head: export leaves auxiliary heads out.
        Dropout or AuxiliaryHead => null,
        Serial => node.Children.Select(Strip).OfType<Layer>().ToArray() is { Length: > 0 } kept ? new Serial(kept) : null,
        FanOut f => new FanOut(f.Join, node.Children.Select(b => Unwrap(Strip(b) ?? new Identity()))),
        Residual r => new Residual(Strip(node.Children[0]) ?? new Identity(), r.Shortcut is null ? null : Strip(node.Children[1])),
        MaxPool2d { CeilMode: true } m when Inert(m with { CeilMode = false }, node) => m with { CeilMode = false, Name = null, WeightInit = null },
        AvgPool2d { CeilMode: true } a when Inert(a with { CeilMode = false }, node) => a with { CeilMode = false, Name = null, WeightInit = null },
        // ONNX's padding whose windows and divisors PyTorch's padding also gives: the importer reads the PyTorch form.
        AvgPool2d { SymmetricPadding: false } a when SymmetricTwin(a, node) is { } twin =>
            twin.CeilMode && Inert(twin with { CeilMode = false }, node) ? twin with { CeilMode = false } : twin,
        PoolNd { Op: PoolOp.Max } p => p with { CountIncludePad = true, Name = null, WeightInit = null },
        ConvolutionLayer c when c.Spec() is { Transposed: true, Geometry.SymmetricPadding: false } s => SymmetricWherePossible(s) with { Name = null, WeightInit = null },
        _ => node.Layer with { Name = null, WeightInit = null },
    };

    /// <summary>
    /// A transposed convolution with its own end padding, each axis where a symmetric padding with output padding below the
    /// stride crops the same elements ([begin, full - end + q) is [begin, full - begin + q'), q' = q + begin - end) in that form,
    /// as the importer reads it.
    /// </summary>
    private static ConvolutionLayer SymmetricWherePossible(ConvSpec s)
    {
        var g = s.Geometry;
        int[] end = (int[])g.PadEnd.Clone(), q = (int[])s.OutputPad.Clone();
        for (int a = 0; a < g.Rank; a++)
        {
            int extra = q[a] + g.PadBegin[a] - end[a];
            if (extra >= 0 && extra < g.Stride[a]) (end[a], q[a]) = (g.PadBegin[a], extra);
        }
        return ConvolutionLayer.From(ConvSpec.Of(s.Filters, g.Kernel, g.Stride, g.PadBegin, g.Dilation, g.Groups, s.UseBias, q, end));
    }

    private static bool Inert(LeafLayer floored, Node node) => floored.OutputShape(node.Input, "", false) == node.Output;

    /// <summary>
    /// The average with PyTorch's padding (the leading padding on both ends, floor or ceil mode) that computes the same bits as
    /// <paramref name="a"/> on a probe of distinct values (the same windows and divisors), or null.
    /// </summary>
    private static AvgPool2d? SymmetricTwin(AvgPool2d a, Node node)
    {
        var x = Tensor.FromArray(Enumerable.Range(1, node.Input.Size).Select(i => (float)Math.Sin(i)).ToArray(), node.Input.PrependBatch(1).ToArray());
        Tensor Run(AvgPool2d layer) => Apply.Forward(Network.Create(layer, node.Input), Parameters.Empty, x);
        var y = Run(a);
        foreach (bool ceil in new[] { false, true })
        {
            var twin = a with { PadBottom = null, PadRight = null, CeilMode = ceil, Name = null, WeightInit = null };
            try
            {
                if (twin.OutputShape(node.Input, "", false) == node.Output && Run(twin).Span.SequenceEqual(y.Span)) return twin;
            }
            catch (ShapeException)
            {
                // PyTorch's padding refuses it: no twin with this ceil mode.
            }
        }
        return null;
    }

    public static Arbitrary<int> Seeds() => Arb.From(Gen.Choose(0, int.MaxValue - 1));

    [Theory]
    [InlineData(1687141381)]
    [InlineData(48744976)]
    [InlineData(331803478)]
    public void Regressions(int seed) => Export_then_import_is_the_identity_and_runs_as_the_native_network(seed);

    [Property(MaxTest = 150, Arbitrary = new[] { typeof(ImportRoundTripProperties) })]
    public void Export_then_import_is_the_identity_and_runs_as_the_native_network(int seed)
    {
        var net = RandomLayerTrees.Create(seed);
        var (p, state) = RandomParametersAndState(net, seed);
        var bytes = OnnxExporter.ToBytes(net, p, state);
        var imported = OnnxImporter.FromBytes(bytes);
        string context = $"seed {seed}: {Describe(net)}";

        Assert.True(Canonical(net).Equals(Canonical(imported.Network)), $"{context}\nimported: {Describe(imported.Network)}");
        Assert.Equal(net.InputShape, imported.Network.InputShape);
        Assert.Equal(net.OutputShape, imported.Network.OutputShape);
        foreach (var (original, back) in new[] { (ExportedPart(net, p), imported.Parameters), (ExportedPart(net, state), imported.State) })
        {
            Assert.Equal(original.Paths, back.Paths);
            foreach (var path in original.Paths)
            {
                Assert.Equal(original[path].Shape, back[path].Shape);
                Assert.True(original[path].Span.SequenceEqual(back[path].Span), $"{context}: tensor '{path}' differs");
            }
        }

        var x = RandomBatch(net.InputShape, 1 + seed % 3, seed);
        var expected = Apply.Forward(net, p, x, Mode.Eval, state);
        Assert.True(expected.Span.SequenceEqual(Apply.Forward(imported.Network, imported.Parameters, x, Mode.Eval, imported.State).Span), $"{context}: imported network computes otherwise");
        using var predictor = new OnnxPredictor(bytes, new OnnxPredictorOptions { OptimizeGraph = seed % 2 == 0 });
        AssertClose(expected, predictor.Run(x), context);
    }

    /// <summary>A property that generates only trivial networks is a defect: every layer kind and combinator must come up.</summary>
    [Fact]
    public void Generator_covers_every_layer_kind_and_combinator()
    {
        var nets = Enumerable.Range(0, 600).Select(RandomLayerTrees.Create).ToArray();
        var layers = nets.SelectMany(n => All(n.RootNode)).Select(n => n.Layer).ToArray();
        var kinds = layers.Select(l => l.GetType()).ToHashSet();
        // Every kind the coverage registry lists: a new layer kind fails here until the generator draws it.
        foreach (var t in Cnn.Tests.Coverage.LayerKinds.Types)
            Assert.Contains(t, kinds);
        Assert.Contains(layers, l => l is MaxPool2d { CeilMode: true });
        Assert.Contains(layers, l => l is MaxPool2d { DilationW: > 1 });
        Assert.Contains(layers, l => l is ConvTranspose2d { PadEnd: not null, Stride.H: > 1 });
        Assert.Contains(layers, l => l is AvgPool2d { SymmetricPadding: false, CountIncludePad: true });
        Assert.Contains(layers, l => l is AvgPool2d { SymmetricPadding: false, CountIncludePad: false });
        Assert.Contains(layers, l => l is AvgPool2d { CeilMode: true, CountIncludePad: true });
        Assert.Contains(layers, l => l is Conv2d { Groups: 2 });
        Assert.Contains(layers, l => l is Conv2d { DilationH: 2 });
        Assert.Contains(layers, l => l is ConvTranspose2d { OutputPad.H: > 0 });
        Assert.Contains(layers, l => l is FanOut { Join: Join.Concat });
        Assert.Contains(layers, l => l is FanOut { Join: Join.Sum, Branches.Count: 1 });
        Assert.Contains(layers, l => l is Residual { Shortcut: null });
        Assert.Contains(layers, l => l is Residual { Shortcut: not null });
        Assert.Contains(nets, n => All(n.RootNode).Count(x => x.Layer is FanOut or Residual) >= 2);
        Assert.Contains(nets, n => n.InputShape.Rank == 2);
        Assert.Contains(nets, n => n.InputShape.Rank == 4);
        Assert.Contains(nets, n => n.Heads.Count > 0 && n.OutputShape.Rank > 1);
    }

    private static IEnumerable<Node> All(Node node) => node.Children.SelectMany(All).Prepend(node);
}
