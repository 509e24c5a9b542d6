using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Interop.LibTorch;
using Cnn.Onnx;
using Cnn.Tests.LibTorch;
using Cnn.Tests.Onnx;
using TorchSharp;
using Xunit;

namespace Cnn.Tests.Coverage;

/// <summary>
/// Every layer kind through every interpreter: a minimal network of each kind in <see cref="LayerKinds"/> is built, initialised,
/// run forward and back, summarised, written to JSON and read back, exported to ONNX (at the lowest, the default and the highest
/// opset) and run by ONNX Runtime, imported back, run by the LibTorch functional interpreter and by its nn.Module translation,
/// and built by the F# surface. A failure names the kind and each interpreter that lacks it, so that adding a kind shows at once
/// which of the twenty places was missed.
/// </summary>
/// <remarks>
/// Tolerances: outputs <c>1e-5 + 1e-4 * |expected|</c> element-wise (ONNX Runtime and LibTorch sum in other orders than the
/// im2col backend, see <see cref="OnnxTestSupport"/>); gradients in norm, <c>1e-5 * S * sqrt(n) + 1e-4 * ||expected||</c> with S
/// the largest root-mean-square gradient (see <see cref="BridgeComparison.NormUse"/>). The minimal networks are small, so both
/// bounds hold with margin; what they catch is a missing or wrong rule, which misses by orders of magnitude.
/// </remarks>
public sealed class InterpreterCoverageTests
{
    private static readonly Tolerance Output = new(1e-5, 1e-4);
    private static readonly Tolerance Gradient = new(1e-5, 1e-4);
    private static readonly long[] Opsets = { OnnxExporter.MinOpset, new OnnxExportOptions().Opset, OnnxExporter.MaxOpset };
    private const int Seed = 7;

    [Fact]
    public void Every_concrete_layer_type_of_the_library_is_listed()
    {
        var missing = LayerKinds.LibraryTypes.Except(LayerKinds.Types).Select(t => t.Name).Order().ToArray();
        var stale = LayerKinds.Types.Except(LayerKinds.LibraryTypes).Select(t => t.Name).Order().ToArray();
        Assert.True(missing.Length == 0,
            $"Layer types not in LayerKinds.All (add each with a minimal example, then teach every interpreter): {string.Join(", ", missing)}.");
        Assert.True(stale.Length == 0, $"LayerKinds.All lists types that are not public concrete layers of the library: {string.Join(", ", stale)}.");
        Assert.Equal(LayerKinds.All.Count, LayerKinds.All.Select(k => k.Name).Distinct().Count());
    }

    public static TheoryData<string> Kinds() => new(LayerKinds.All.Select(k => k.Name));

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_layer_kind_goes_through_every_interpreter(string name)
    {
        var kind = LayerKinds.ByName(name);
        var failures = new List<string>();
        void Check(Interpreter interpreter, Action check)
        {
            try
            {
                check();
            }
            catch (Exception e)
            {
                failures.Add($"layer kind '{kind.Name}' ({kind.Example.GetType().Name}) fails interpreter {interpreter}: {e.GetType().Name}: {e.Message}");
            }
        }

        Network? net = null;
        Check(Interpreter.ShapeInference, () => net = Network.Create(kind.Example, kind.Input));
        if (net is null)
        {
            Assert.Fail(string.Join(Environment.NewLine, failures));
            return;
        }
        Parameters p = Parameters.Empty, state = Parameters.Empty;
        Check(Interpreter.Initialisation, () => (p, state) = OnnxTestSupport.RandomParametersAndState(net, Seed));
        var x = OnnxTestSupport.RandomBatch(net.InputShape, 2, Seed);
        var dy = OnnxTestSupport.RandomBatch(net.OutputShape, 2, Seed + 1);

        Tensor? expected = null;
        ForwardResult? train = null;
        Check(Interpreter.ApplyForward, () =>
        {
            expected = Apply.Forward(net, p, x, Mode.Eval, state);
            train = Apply.WithPullback(net, p, x, Mode.Train, state, Seed);
            Expect(expected.Shape == net.OutputShape.PrependBatch(2), $"eval output {expected.Shape}, expected [2, {net.OutputShape}]");
        });
        Pulled? pulled = null;
        if (train is not null)
            Check(Interpreter.ApplyPullback, () =>
            {
                pulled = train.Pullback(dy);
                Expect(pulled.Input.Shape == x.Shape, $"input gradient {pulled.Input.Shape}, expected {x.Shape}");
                var trainable = net.RootNode.Leaves().Where(l => !l.Frozen).SelectMany(l => l.ParameterSpecs()).Select(s => s.Path).Order(StringComparer.Ordinal);
                Expect(pulled.Parameters.Paths.SequenceEqual(trainable), $"parameter gradients [{string.Join(", ", pulled.Parameters.Paths)}], expected [{string.Join(", ", trainable)}]");
            });
        Check(Interpreter.Summary, () =>
        {
            var rows = Summary.Rows(net);
            Expect(rows.Count == net.Leaves.Count, $"{rows.Count} rows for {net.Leaves.Count} leaves");
            Expect(Summary.Totals(net).Parameters == p.Entries.Sum(e => (long)e.Value.Size) + state.Entries.Sum(e => (long)e.Value.Size), "the totals do not count every parameter and state tensor");
            Expect(Summary.Format(net).Contains(net.Leaves[0].Path, StringComparison.Ordinal), "the table does not show the layer's path");
        });
        Check(Interpreter.Json, () =>
        {
            var back = NetworkJson.DeserializeLayer(NetworkJson.SerializeLayer(kind.Example), "coverage");
            Expect(back.Equals(kind.Example), $"the layer reads back as {back}");
            var network = NetworkJson.Deserialize(NetworkJson.Serialize(net), "coverage");
            Expect(network.Root.Equals(net.Root) && network.InputShape == net.InputShape, "the network reads back otherwise");
        });
        foreach (var opset in Opsets)
        {
            byte[]? bytes = null;
            Check(Interpreter.OnnxExport, () =>
            {
                bytes = OnnxExporter.ToBytes(net, p, state, new OnnxExportOptions { Opset = opset });
                using var predictor = new OnnxPredictor(bytes);
                Close(expected!, predictor.Run(x), $"ONNX Runtime's output at opset {opset}");
            });
            if (bytes is null) continue;
            Check(Interpreter.OnnxImport, () =>
            {
                var imported = OnnxImporter.FromBytes(bytes);
                var (canonical, back) = (ImportRoundTripProperties.Canonical(net), ImportRoundTripProperties.Canonical(imported.Network));
                Expect(canonical.Equals(back), $"opset {opset}: the model imports as {back}, expected {canonical}");
                if (kind.Exemption(Interpreter.OnnxImport) is null)
                    Expect(Flatten(imported.Network.RootNode).Any(n => n.Layer.GetType() == kind.Example.GetType()), $"opset {opset}: no {kind.Example.GetType().Name} came back");
                Close(expected!, Apply.Forward(imported.Network, imported.Parameters, x, Mode.Eval, imported.State), $"opset {opset}: the imported network's output");
            });
        }
        Check(Interpreter.LibTorchFunctional, () =>
        {
            Close(expected!, TorchNetwork.Forward(net, p, x, Mode.Eval, state), "eval output");
            var theirs = TorchNetwork.Pullback(net, p, x, dy, Mode.Train, state, Seed);
            Close(train!.Output, theirs.Output, "training output");
            double scale = theirs.Gradients.Entries.Select(e => e.Value).Append(theirs.InputGradient).Max(Rms);
            Expect(BridgeComparison.NormUse(pulled!.Input, theirs.InputGradient, Gradient, scale) <= 1, "the input gradients differ");
            Expect(pulled.Parameters.Paths.SequenceEqual(theirs.Gradients.Paths), $"gradient paths [{string.Join(", ", theirs.Gradients.Paths)}]");
            foreach (var path in theirs.Gradients.Paths)
                Expect(BridgeComparison.NormUse(pulled.Parameters[path], theirs.Gradients[path], Gradient, scale) <= 1, $"the gradients of '{path}' differ");
        });
        Check(Interpreter.TorchModule, () =>
        {
            using var module = TorchModule.Build(net, p, state);
            using var scope = torch.NewDisposeScope();
            module.eval();
            Close(expected!, TorchTensors.FromTorch(module.call(TorchTensors.ToTorch(x))), "the module's eval output");
        });
        Check(Interpreter.PyTorchWriter, () =>
        {
            // Under a named root: a network that is only an unnamed leaf has no module name for its parameters in PyTorch
            // (the writer refuses it with a message that says to name it); what is checked here is the kind's rule.
            var source = Cnn.Dsl.PyTorch.PyTorchExport.ModuleSource(Network.Create(new Serial(kind.Example).Named("net"), kind.Input), "Network");
            Expect(source.Contains("class Network", StringComparison.Ordinal), "the module source defines no Network class");
        });
        Check(Interpreter.FSharpSurface, () =>
        {
            Expect(kind.FSharp is not null, "the F# surface has no function for it");
            var built = kind.FSharp!();
            Expect(built.Equals(kind.Example), $"the F# function builds {built}, expected {kind.Example}");
        });

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    private static void Expect(bool condition, string what)
    {
        if (!condition) throw new Xunit.Sdk.XunitException(what);
    }

    private static void Close(Tensor expected, Tensor actual, string what) =>
        Expect(BridgeComparison.ElementUse(actual, expected, Output) <= 1,
            $"{what}: {OnnxTestSupport.Mismatch(expected, actual) ?? $"shape {actual.Shape}, expected {expected.Shape}"}");

    private static double Rms(Tensor t) => t.Size == 0 ? 0 : Math.Sqrt(t.Span.ToArray().Sum(v => (double)v * v) / t.Size);

    private static IEnumerable<Node> Flatten(Node node) => node.Children.SelectMany(Flatten).Prepend(node);
}
