using System.Text;
using Xunit;
using Xunit.Abstractions;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using Cnn.Onnx.Proto;

namespace Cnn.Tests.Onnx;

/// <summary>
/// Runs only where ONNX's operator test cases are installed (Debian's <c>libonnx-testdata</c>), or in CI (<c>CI=true</c>),
/// where their absence is a failure rather than a skip.
/// </summary>
public sealed class OnnxConformanceFactAttribute : FactAttribute
{
    public OnnxConformanceFactAttribute()
    {
        if (!Directory.Exists(OnnxConformanceTests.DataDirectory) && !OnnxConformanceTests.InCi)
            Skip = $"ONNX conformance skipped: {OnnxConformanceTests.DataDirectory} is missing; install it with " +
                   "'sudo apt-get install -y libonnx-testdata' (in CI, where CI=true, its absence fails the test).";
    }
}

/// <summary>
/// ONNX's own operator test cases (<c>data/node/*</c>: a model, inputs and expected outputs as TensorProtos), run on
/// the im2col backend through the importer. A case's extra inputs (weights, shapes, ratios) become initializers,
/// since a network has one input. Cases whose operations or attribute values no layer expresses are reported as
/// unsupported with the importer's reason; every other case must match within the tolerance of the other ONNX tests.
/// </summary>
public sealed class OnnxConformanceTests(ITestOutputHelper output)
{
    /// <summary>Where Debian's libonnx-testdata puts the node cases; <c>ONNX_TESTDATA_NODE</c> overrides it.</summary>
    public static string DataDirectory =>
        Environment.GetEnvironmentVariable("ONNX_TESTDATA_NODE") is { Length: > 0 } custom ? custom : "/usr/share/libonnx-testdata/data/node";

    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    private enum Outcome { Passed, Failed, Unsupported }

    private sealed record CaseResult(string Case, string Ops, Outcome Outcome, string Detail);

    [OnnxConformanceFact]
    public void Supported_operator_cases_pass_on_the_im2col_backend()
    {
        Assert.True(Directory.Exists(DataDirectory),
            $"{DataDirectory} is missing: CI must install libonnx-testdata ('sudo apt-get install -y libonnx-testdata', see .ci/run).");
        var results = Directory.GetDirectories(DataDirectory).Order(StringComparer.Ordinal).Select(RunCase).OfType<CaseResult>().ToList();

        var report = new StringBuilder();
        report.AppendLine($"ONNX node conformance on the im2col backend ({DataDirectory}):");
        report.AppendLine($"{"operations",-28} {"passed",7} {"failed",7} {"unsupported",12}");
        foreach (var group in results.GroupBy(r => r.Ops).OrderBy(g => g.Key, StringComparer.Ordinal))
            report.AppendLine($"{group.Key,-28} {group.Count(r => r.Outcome == Outcome.Passed),7} {group.Count(r => r.Outcome == Outcome.Failed),7} {group.Count(r => r.Outcome == Outcome.Unsupported),12}");
        report.AppendLine($"{"total",-28} {results.Count(r => r.Outcome == Outcome.Passed),7} {results.Count(r => r.Outcome == Outcome.Failed),7} {results.Count(r => r.Outcome == Outcome.Unsupported),12}");
        foreach (var r in results.Where(r => r.Outcome != Outcome.Passed))
            report.AppendLine($"  {r.Outcome.ToString().ToLowerInvariant()}: {r.Case}: {r.Detail}");
        output.WriteLine(report.ToString());

        var failed = results.Where(r => r.Outcome == Outcome.Failed).ToList();
        Assert.True(failed.Count == 0, $"{failed.Count} conformance case(s) failed:\n" + string.Join("\n", failed.Select(f => $"{f.Case}: {f.Detail}")));
        // A run that passes nothing proves nothing: the cases of the core operations must be found and pass.
        foreach (var op in new[] { "Conv", "ConvTranspose", "MaxPool", "AveragePool", "BatchNormalization", "Relu", "Softmax", "LRN", "Gemm", "Reshape", "Flatten", "MatMul", "Clip", "HardSwish", "Squeeze", "Unsqueeze" })
            Assert.True(results.Any(r => r.Ops == op && r.Outcome == Outcome.Passed), $"no {op} case passed");
        // Forms read as more than one layer or as another layer's special case: a regression would only move them to unsupported.
        foreach (var name in new[] { "test_maxpool_2d_same_upper", "test_maxpool_2d_same_lower", "test_maxpool_2d_pads", "test_averagepool_2d_pads_count_include_pad",
                     "test_clip_default_min", "test_clip_default_inbounds", "test_transpose_all_permutations_0", "test_unsqueeze_unsorted_axes", "test_squeeze_negative_axes",
                     // A constant operand broadcast over each sample, with no layer before it to take it; ONNX's hard sigmoid.
                     "test_add_bcast", "test_sub_bcast", "test_mul_bcast", "test_div_bcast", "test_celu_expanded", "test_hardsigmoid", "test_hardsigmoid_default", "test_clip_default_max",
                     // Reductions over the channel axis (channel pooling with one window, keepdims 0 a Squeeze after it); dropout that drops nothing in training mode.
                     "test_reduce_max_do_not_keepdims_example", "test_reduce_mean_keepdims_random", "test_reduce_mean_negative_axes_keepdims_example", "test_training_dropout_zero_ratio",
                     // Averages that leave the padding out, with ONNX's padding: ends that differ (SAME) and beyond half the window.
                     "test_averagepool_2d_same_upper", "test_averagepool_2d_same_lower", "test_averagepool_2d_pads", "test_maxpool_2d_dilations",
                     // SAME_UPPER crops only the end of a transposed convolution's output: the layer's own end padding.
                     "test_convtranspose_autopad_same",
                     // A permutation of a sample's axes, the batch first.
                     "test_transpose_all_permutations_1",
                     // Each of a sample's matrices times a constant matrix of its own.
                     "test_matmul_4d" })
            Assert.True(results.Any(r => r.Case == name && r.Outcome == Outcome.Passed), $"{name} did not pass");
        Assert.True(results.Count(r => r.Outcome == Outcome.Passed) >= 140, $"only {results.Count(r => r.Outcome == Outcome.Passed)} cases passed");
        // Every convolution case passes: 1-d, 3-d, per-axis, dilated, output_padding, output_shape, auto_pad.
        Assert.True(results.Count(r => r.Ops is "Conv" or "ConvTranspose" && r.Outcome == Outcome.Passed) >= 16
                    && !results.Any(r => r.Ops is "Conv" or "ConvTranspose" && r.Outcome != Outcome.Passed),
            "convolution cases passed: " + string.Join(", ", results.Where(r => r.Ops is "Conv" or "ConvTranspose" && r.Outcome == Outcome.Passed).Select(r => r.Case)));
    }

    /// <summary>Null for a case none of whose operations the importer reads at all (Abs, Einsum, ...): not counted.</summary>
    private static CaseResult? RunCase(string folder)
    {
        string name = Path.GetFileName(folder);
        var modelPath = Path.Combine(folder, "model.onnx");
        var dataSet = Path.Combine(folder, "test_data_set_0");
        if (!File.Exists(modelPath) || !Directory.Exists(dataSet)) return null;
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath));
        var ops = model.Graph.Node.Select(n => n.OpType).Where(o => o != "Constant").Distinct().Order(StringComparer.Ordinal).ToArray();
        if (ops.Length == 0 || !ops.All(Supported)) return null;
        string opText = string.Join("+", ops);
        try
        {
            var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet();
            var inputs = model.Graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
            var tensors = inputs.Select((_, i) => TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dataSet, $"input_{i}.pb")))).ToList();
            // A network has one input: the others (weights, a shape, a ratio) become initializers.
            for (int i = 1; i < inputs.Count; i++)
            {
                tensors[i].Name = inputs[i].Name;
                model.Graph.Initializer.Add(tensors[i]);
                model.Graph.Input.Remove(inputs[i]);
            }
            var imported = OnnxImporter.FromModel(model, name);
            var x = Read(tensors[0]);
            var expected = Read(TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dataSet, "output_0.pb"))));
            var actual = Apply.Forward(imported.Network, imported.Parameters, x, Mode.Eval, imported.State);
            var mismatch = OnnxTestSupport.Mismatch(expected, actual);
            return mismatch is null
                ? new CaseResult(name, opText, Outcome.Passed, "")
                : new CaseResult(name, opText, Outcome.Failed, $"{mismatch} ({Describe(imported.Network)})");
        }
        catch (OnnxUnsupportedException e)
        {
            return new CaseResult(name, opText, Outcome.Unsupported, e.Message);
        }
        catch (Exception e)
        {
            return new CaseResult(name, opText, Outcome.Failed, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private static bool Supported(string op) =>
        OnnxLayerReader.LeafOperations.Contains(op) || OnnxLayerReader.JoinOperations.Contains(op) || OnnxLayerReader.FoldedOperations.Contains(op);

    private static string Describe(Network n) => string.Join(" -> ", n.Leaves.Select(l => l.Layer.ToString()));

    private static Tensor Read(TensorProto t)
    {
        var c = OnnxConstant.Read(t, "test data");
        if (c.Floats is null) throw new OnnxUnsupportedException($"tensor '{t.Name}' is not float32");
        return Tensor.FromArray(c.Floats, new Shape(c.Dims.Select(d => (int)d).ToArray()));
    }
}
