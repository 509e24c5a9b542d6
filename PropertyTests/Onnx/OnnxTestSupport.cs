using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;

namespace Cnn.Tests.Onnx;

/// <summary>Inputs, comparisons and runs shared by the ONNX tests.</summary>
internal static class OnnxTestSupport
{
    // ONNX Runtime (MLAS) and the im2col backend sum the same products in different orders and with
    // different vector widths; float32 sums of a few thousand terms differ by a few ulps of the largest
    // partial sum, which abs 1e-5 + rel 1e-4 covers with margin for outputs of order 1.
    public const float AbsTolerance = 1e-5f;
    public const float RelTolerance = 1e-4f;

    /// <summary>A batch <c>[batch, ...perSample]</c> of values uniform in [-1, 1), reproducible from <paramref name="seed"/>.</summary>
    public static Tensor RandomBatch(Shape perSample, int batch, int seed)
    {
        var rng = new Random(seed);
        var shape = perSample.PrependBatch(batch);
        var data = new float[shape.Size];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
        return Tensor.FromArray(data, shape);
    }

    /// <summary>Null when <paramref name="actual"/> matches <paramref name="expected"/> within tolerance; otherwise what differs.</summary>
    public static string? Mismatch(Tensor expected, Tensor actual)
    {
        if (expected.Shape != actual.Shape) return $"shape {actual.Shape}, expected {expected.Shape}";
        for (int i = 0; i < expected.Size; i++)
        {
            float e = expected[i], a = actual[i];
            if (!(MathF.Abs(a - e) <= AbsTolerance + RelTolerance * MathF.Abs(e)))
                return $"element {i}: {a}, expected {e} (difference {MathF.Abs(a - e)})";
        }
        return null;
    }

    public static void AssertClose(Tensor expected, Tensor actual, string context)
    {
        var mismatch = Mismatch(expected, actual);
        Assert.True(mismatch is null, $"{context}: {mismatch}");
    }

    /// <summary>Exports, loads in ONNX Runtime and runs <paramref name="x"/>.</summary>
    public static Tensor RunExported(Network network, Parameters parameters, Tensor x, bool optimize, Parameters? state = null)
    {
        using var predictor = new OnnxPredictor(OnnxExporter.ToBytes(network, parameters, state), new OnnxPredictorOptions { OptimizeGraph = optimize });
        return predictor.Run(x);
    }

    /// <summary>
    /// Parameters from the initialiser, with batch-norm scales and shifts redrawn, and a random state (running means in
    /// [-0.5, 0.5), variances in [0.5, 1.5)): the initial γ = 1, β = 0, mean 0, variance 1 would make batch
    /// normalisation nearly the identity and hide a wrong export.
    /// </summary>
    public static (Parameters Parameters, Parameters State) RandomParametersAndState(Network network, int seed)
    {
        var rng = new Random(seed);
        Tensor Uniform(Shape shape, float low, float high)
        {
            var d = new float[shape.Size];
            for (int i = 0; i < d.Length; i++) d[i] = low + (float)rng.NextDouble() * (high - low);
            return Tensor.FromArray(d, shape);
        }
        var bnPaths = network.Leaves.Where(n => n.Layer is BatchNorm).SelectMany(n => n.ParameterSpecs().Select(s => s.Path)).ToHashSet();
        var parameters = Initializer.Init(network, seed).Map((path, t) => bnPaths.Contains(path) ? Uniform(t.Shape, 0.5f, 1.5f) : t);
        var state = Initializer.InitState(network).Map((path, t) =>
            path.EndsWith("running_var", StringComparison.Ordinal) ? Uniform(t.Shape, 0.5f, 1.5f) : Uniform(t.Shape, -0.5f, 0.5f));
        return (parameters, state);
    }

    /// <summary>A readable description of a network for failure messages: input shape and the leaves with their paths.</summary>
    public static string Describe(Network network) =>
        $"input {network.InputShape}: " + string.Join(" -> ", network.Leaves.Select(n => $"{n.Path}={n.Layer}"));
}
