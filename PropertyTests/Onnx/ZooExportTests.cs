using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using static Cnn.Tests.Onnx.OnnxTestSupport;

namespace Cnn.Tests.Onnx;

/// <summary>
/// Every zoo network exports, loads in ONNX Runtime with strict shape inference, and gives the native backend's
/// output with graph optimisations off and on, at batches of 1 and 7. VGG-16 is the hard case: its first dense layer
/// sums 25,088 products and its deepest convolutions 4,608, in float32. Measured against a float64 run of the same
/// network (LibTorch), its outputs at batch 7 are off by rms 1.9e-6 here and 1.7e-6 in ONNX Runtime, and the two differ
/// by at most 0.6 of the 1e-5 + 1e-4 tolerance. Before the GEMM summed long products in blocks of at most 256 steps
/// (GemmDepth) it was one float32 chain per element: rms 8e-6 from float64 (the dense layer alone 7x ONNX Runtime's
/// error), and 1.8x the tolerance from ONNX Runtime at batch 7, so VGG-16 ran at batch 1 only.
/// </summary>
public sealed class ZooExportTests
{
    /// <summary>
    /// Every name of the zoo (aliases aside), with the batch sizes it runs at: 1 and 7 for all but GoogLeNet with heads, whose
    /// export is GoogLeNet's (the heads are left out: <see cref="AuxiliaryHeadExportTests"/>) and runs at batch 1 only.
    /// </summary>
    public static TheoryData<string, int[]> Networks()
    {
        var data = new TheoryData<string, int[]>();
        foreach (var name in Zoo.Names.Where(n => !Zoo.Aliases.ContainsKey(n)))
            data.Add(name, name == "googlenet-aux" ? new[] { 1 } : new[] { 1, 7 });
        return data;
    }

    [Fact]
    public void The_big_networks_are_among_them() =>
        Assert.Superset(new HashSet<string> { "alexnet", "vgg16", "googlenet", "resnet18" }, Networks().Select(row => (string)row[0]).ToHashSet());

    [Theory]
    [MemberData(nameof(Networks))]
    public void Zoo_network_matches_native_in_onnx_runtime(string name, int[] batches)
    {
        var net = Zoo.ByName(name);
        var (p, state) = ScaledParameters(net, seed: name.Length);
        state = CalibratedState(net, p, state);
        var bytes = OnnxExporter.ToBytes(net, p, state);
        using var plain = new OnnxPredictor(bytes, new OnnxPredictorOptions { OptimizeGraph = false });
        using var optimized = new OnnxPredictor(bytes, new OnnxPredictorOptions { OptimizeGraph = true });
        foreach (int batch in batches)
        {
            var x = RandomBatch(net.InputShape, batch, seed: 100 + batch);
            var expected = Apply.Forward(net, p, x, Mode.Eval, state);
            // One value (a discriminator's logit for one image) has no spread; its batch of 7 is checked.
            Assert.True(expected.Size == 1 || TensorPrimitivesStd(expected) > 1e-2f, $"{name}: outputs of size {TensorPrimitivesStd(expected)} would hide errors");
            AssertClose(expected, plain.Run(x), $"{name}, batch {batch}, graph optimisation off");
            AssertClose(expected, optimized.Run(x), $"{name}, batch {batch}, graph optimisation on");
        }
    }

    /// <summary>
    /// Weights uniform in ±sqrt(6/fan_in) (He's scale, so that activations keep their size through VGG-16's depth and
    /// the comparison sees every layer, unlike PyTorch's ±1/sqrt(fan_in) whose outputs shrink towards the last bias),
    /// biases in ±0.1, and random batch-norm statistics; a fast generator, since VGG-16 has 138 million weights.
    /// </summary>
    internal static (Parameters, Parameters) ScaledParameters(Network net, int seed)
    {
        ulong s = 0x9E3779B97F4A7C15UL ^ (ulong)seed;
        float Next()
        {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            return (s >> 40) / (float)(1UL << 24) * 2f - 1f;
        }
        Tensor Fill(Shape shape, Func<float> value)
        {
            var d = new float[shape.Size];
            for (int i = 0; i < d.Length; i++) d[i] = value();
            return Tensor.Own(d, shape);
        }
        var parameters = new List<KeyValuePair<string, Tensor>>();
        foreach (var leaf in net.Leaves)
            foreach (var (path, spec) in leaf.ParameterSpecs())
            {
                float bound = leaf.Layer is BatchNorm ? 0.5f : spec.IsBias ? 0.1f : MathF.Sqrt(6f / Math.Max(1, spec.FanIn));
                float center = leaf.Layer is BatchNorm && !spec.IsBias ? 1f : 0f;
                parameters.Add(KeyValuePair.Create(path, Fill(spec.Shape, () => center + bound * Next())));
            }
        var state = Initializer.InitState(net).Map((path, t) =>
            Fill(t.Shape, path.EndsWith("running_var", StringComparison.Ordinal) ? () => 1f + 0.5f * Next() : () => 0.5f * Next()));
        return (Parameters.Of(parameters), state);
    }

    /// <summary>
    /// Running statistics as a trained network has them: those of a batch, so that each batch normalisation does
    /// normalise and activations keep their size through a residual network's additions (with arbitrary statistics
    /// they grow block after block, and float32 rounding with them).
    /// </summary>
    private static Parameters CalibratedState(Network net, Parameters p, Parameters state)
    {
        if (state.Count == 0) return state;
        var once = Network.Create(MomentumOne(net.Root), net.InputShape);
        return Apply.WithPullback(once, p, RandomBatch(net.InputShape, 4, seed: 7), Mode.Train, state).State;
    }

    private static Layer MomentumOne(Layer layer) => layer switch
    {
        BatchNorm bn => bn with { Momentum = 1f },
        Serial s => new Serial(s.Layers.Select(MomentumOne)) { Name = s.Name, WeightInit = s.WeightInit },
        FanOut f => new FanOut(f.Join, f.Branches.Select(MomentumOne)) { Name = f.Name, WeightInit = f.WeightInit },
        Residual r => r with { Block = MomentumOne(r.Block), Shortcut = r.Shortcut is null ? null : MomentumOne(r.Shortcut) },
        Freeze f => f with { Inner = MomentumOne(f.Inner) },
        _ => layer,
    };

    private static float TensorPrimitivesStd(Tensor t)
    {
        double mean = 0, sq = 0;
        foreach (var v in t.Span) mean += v;
        mean /= t.Size;
        foreach (var v in t.Span) sq += (v - mean) * (v - mean);
        return (float)Math.Sqrt(sq / t.Size);
    }
}
