using System.Diagnostics;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.LibTorch;

/// <summary>
/// The LibTorch interpreter against the apply interpreter on whole networks: forward outputs, and every parameter's
/// gradient from LibTorch's autograd against our composition of pullbacks.
/// </summary>
public sealed class NetworkBridgeTests
{
    private const int Batch = 16;

    private static (Tensor X, int[] Labels) RandomBatch(Network net, int seed, int classes)
    {
        var rng = new Random(seed);
        var shape = net.InputShape.PrependBatch(Batch);
        var x = new float[shape.Size];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle();
        var labels = Enumerable.Range(0, Batch).Select(_ => rng.Next(classes)).ToArray();
        return (Tensor.FromArray(x, shape), labels);
    }

    private static double Norm(ReadOnlySpan<float> v)
    {
        double s = 0;
        foreach (var e in v) s += (double)e * e;
        return Math.Sqrt(s);
    }

    private static double DiffNorm(Tensor a, Tensor b)
    {
        Assert.Equal(b.Shape, a.Shape);
        double s = 0;
        for (int i = 0; i < a.Size; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        return Math.Sqrt(s);
    }

    /// <summary>Logits are O(1) for inputs in [0, 1] and PyTorch's default initialisation: 1e-4 absolute is ~1000 float32 ulps.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void SimpleConvNet_forward_matches_apply(int seed)
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, seed);
        var (x, _) = RandomBatch(net, seed + 100, 10);

        var ours = Apply.Forward(net, p, x);
        var torchs = TorchNetwork.Forward(net, p, x);

        Assert.Equal(new Shape(Batch, 10), torchs.Shape);
        Assert.Equal(ours.Shape, torchs.Shape);
        for (int i = 0; i < ours.Size; i++)
            Assert.True(Math.Abs(ours[i] - torchs[i]) <= 1e-4, $"logit {i}: apply {ours[i]}, LibTorch {torchs[i]}");
    }

    /// <summary>
    /// Gradients pass through two ReLUs and a max pool: an input within rounding of a kink or a tie can route a
    /// little differently, and dW of the first layer sums 16*24*24 products. So ||a-b|| &lt;= 1e-3 ||b|| per parameter,
    /// with norms (not elements) so one rerouted element cannot fail the test but a wrong gradient does.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void SimpleConvNet_gradients_match_our_pullbacks(int seed)
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, seed);
        var (x, labels) = RandomBatch(net, seed + 200, 10);

        var ours = Loss.SoftmaxCrossEntropy(net, p, x, labels);
        var torchs = TorchNetwork.SoftmaxCrossEntropy(net, p, x, labels);

        Assert.True(Math.Abs(ours.Loss - torchs.Loss) <= 1e-5 + 1e-4 * Math.Abs(torchs.Loss), $"loss: ours {ours.Loss}, LibTorch {torchs.Loss}");
        Assert.Equal(p.Paths, torchs.Gradients.Paths);
        Assert.Equal(ours.Gradients.Paths, torchs.Gradients.Paths);
        foreach (var path in p.Paths)
        {
            var a = ours.Gradients[path];
            var b = torchs.Gradients[path];
            double norm = Norm(b.Span);
            Assert.True(norm > 0, $"{path}: LibTorch's gradient is zero, so the comparison would prove nothing.");
            double diff = DiffNorm(a, b);
            Assert.True(diff <= 1e-3 * norm, $"{path}: ||ours - LibTorch|| = {diff:E3} > 1e-3 * ||LibTorch|| = {1e-3 * norm:E3}");
        }
        Assert.True(DiffNorm(ours.InputGradient, torchs.InputGradient) <= 1e-3 * Norm(torchs.InputGradient.Span), "input gradient");
    }

    [Fact]
    public void Both_interpreters_reject_an_unknown_layer_naming_its_path_and_type()
    {
        var net = Network.Create(new Serial(new Flatten(), new Mystery().Named("odd")).Named("net"), new Shape(2, 2));
        var x = Tensor.Zeros(1, 2, 2);
        var e = Assert.ThrowsAny<CnnException>(() => TorchNetwork.Forward(net, Parameters.Empty, x));
        Assert.Contains("net/odd", e.Message);
        Assert.Contains(nameof(Mystery), e.Message);
        var m = Assert.ThrowsAny<CnnException>(() => TorchModule.Build(net, Parameters.Empty));
        Assert.Contains("net/odd", m.Message);
        Assert.Contains(nameof(Mystery), m.Message);
    }

    [Fact]
    public void A_label_out_of_range_is_a_CnnException_naming_row_and_range()
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 1);
        var (x, labels) = RandomBatch(net, 1, 10);
        labels[3] = 10;
        var e = Assert.ThrowsAny<CnnException>(() => TorchNetwork.SoftmaxCrossEntropy(net, p, x, labels));
        Assert.Contains("row 3", e.Message);
        Assert.Contains("[0, 10)", e.Message);
    }

    [Fact]
    public void Training_batch_norm_on_one_value_per_channel_is_a_CnnException_naming_the_layer_on_both_backends()
    {
        var net = Network.Create(new Serial(new Flatten(), new Dense(3), new BatchNorm().Named("norm"), new Dense(2)), new Shape(1, 2, 2));
        var p = Initializer.Init(net, 1);
        var state = Initializer.InitState(net);
        var x = Tensor.Zeros(1, 1, 2, 2);
        var e = Assert.ThrowsAny<CnnException>(() => TorchNetwork.Gradient(net, p, x, new[] { 0 }, LossFunction.SoftmaxCrossEntropy, Mode.Train, state));
        Assert.Contains("norm", e.Message);
        Assert.ThrowsAny<CnnException>(() => Loss.Gradient(net, p, x, new[] { 0 }, LossFunction.SoftmaxCrossEntropy, Mode.Train, state));
        Assert.Equal(new Shape(1, 2), TorchNetwork.Forward(net, p, x, Mode.Eval, state).Shape);
    }

    [Fact]
    public void A_parameter_of_the_wrong_shape_is_a_ShapeException_naming_its_path()
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 1).With("dense2/bias", Tensor.Zeros(9));
        var (x, _) = RandomBatch(net, 1, 10);
        var e = Assert.Throws<ShapeException>(() => TorchNetwork.Forward(net, p, x));
        Assert.Contains("dense2/bias", e.Message);
    }

    /// <summary>The torch.nn.Module translation computes what the functional interpreter computes, on the same weights.</summary>
    [Fact]
    public void TorchModule_matches_the_functional_interpreter_and_round_trips_its_weights()
    {
        var net = Network.Create(
            new Serial(new Conv2d(3, 3, 2, StrideH: 2, PadW: 1), new Relu(), new MaxPool2d(2, 2, 1, 2, PadH: 1), new Flatten(), new Dense(4)).Named("root"),
            new Shape(2, 9, 7));
        var p = Initializer.Init(net, 5);
        var (x, _) = RandomBatch(net, 6, 4);

        using var module = TorchModule.Build(net, p);
        using var scope = torch.NewDisposeScope();
        var y = TorchTensors.FromTorch(module.call(TorchTensors.ToTorch(x)));
        var expected = TorchNetwork.Forward(net, p, x);

        Assert.Equal(expected.Shape, y.Shape);
        for (int i = 0; i < y.Size; i++) Assert.Equal(expected[i], y[i], 1e-6f);
        var read = TorchModule.ReadParameters(net, module);
        Assert.Equal(p.Paths, read.Paths);
        foreach (var path in p.Paths) Assert.Equal(p[path].ToArray(), read[path].ToArray());
    }

    private sealed record Mystery : LeafLayer
    {
        public override string Kind => "mystery";

        public override Shape OutputShape(Shape input, string path, bool strict) => input;
    }
}

/// <summary>Runs alone, so that the process's memory and LibTorch's live-tensor count are not moved by other tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasurementCollection
{
    public const string Name = "Memory measurement";
}

/// <summary>Long runs of the LibTorch interpreter do not leak native tensors.</summary>
[Collection(MemoryMeasurementCollection.Name)]
public sealed class NetworkBridgeMemoryTests(ITestOutputHelper output)
{
    private const int Steps = 1000;
    private const long NativeGrowthBound = 24_000_000;

    /// <summary>
    /// 1,000 SGD steps (LibTorch forward in training mode, cross-entropy, backward, gradients and updated batch-norm
    /// statistics copied back, dropout masks converted in) on a tiny network with batch norm and dropout, after 100 warm-up
    /// steps. Two checks: no more live TorchSharp tensors after the run than before (read before any forced collection,
    /// since finalizers would otherwise free leaked tensors and hide the leak); and the resident set, less the managed heap's
    /// committed bytes, grows by at most 24 MB. The managed heap is taken out because the GC grows its budget by ~13 MB over
    /// such a run whatever LibTorch does; a clean run grows by a few MB. A variant that does not dispose the step's tensors
    /// was measured at +95 MB and 13,500 more live tensors.
    /// </summary>
    [Fact]
    public void A_thousand_training_steps_do_not_grow_memory()
    {
        var net = Network.Create(
            new Serial(new Conv2d(4, 3, 3), new BatchNorm(), new Relu(), new MaxPool2d(2, 2, 2, 2), new Flatten(), new Dropout(0.2f), new Dense(10)),
            new Shape(1, 12, 12));
        var p = Initializer.Init(net, 1);
        var state = Initializer.InitState(net);
        var rng = new Random(2);
        var x = Tensor.FromArray(Enumerable.Range(0, 16 * 144).Select(_ => rng.NextSingle()).ToArray(), 16, 1, 12, 12);
        var labels = Enumerable.Range(0, 16).Select(_ => rng.Next(10)).ToArray();
        int step = 0;

        for (int i = 0; i < 100; i++) Step();
        var before = Settled();
        long tensorsBefore = torch.Tensor.TotalCount;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Steps; i++) Step();
        clock.Stop();
        long tensorsAfter = torch.Tensor.TotalCount;
        var after = Settled();

        long growth = (after.WorkingSet - after.GcCommitted) - (before.WorkingSet - before.GcCommitted);
        output.WriteLine($"{Steps} steps in {clock.ElapsedMilliseconds} ms; working set {before.WorkingSet / 1e6:F1} -> {after.WorkingSet / 1e6:F1} MB, " +
                         $"GC committed {before.GcCommitted / 1e6:F1} -> {after.GcCommitted / 1e6:F1} MB, native growth {growth / 1e6:F1} MB; " +
                         $"live tensors {tensorsBefore} -> {tensorsAfter}");
        Assert.True(tensorsAfter <= tensorsBefore, $"Live TorchSharp tensors grew from {tensorsBefore} to {tensorsAfter} over {Steps} steps.");
        Assert.True(growth <= NativeGrowthBound, $"Resident memory outside the managed heap grew by {growth / 1e6:F1} MB over {Steps} steps (bound {NativeGrowthBound / 1e6} MB).");
        // The statistics moved: the state really went through LibTorch and back at every step.
        Assert.NotEqual(Initializer.InitState(net)["bn1/running_mean"].ToArray(), state["bn1/running_mean"].ToArray());

        void Step()
        {
            var r = TorchNetwork.Gradient(net, p, x, labels, LossFunction.SoftmaxCrossEntropy, Mode.Train, state, seed: step++);
            Assert.True(float.IsFinite(r.Loss));
            state = r.State;
            p = p.Map((path, w) =>
            {
                var d = w.ToArray();
                var g = r.Gradients[path].Span;
                for (int i = 0; i < d.Length; i++) d[i] -= 0.01f * g[i];
                return Tensor.Own(d, w.Shape);
            });
        }
    }

    private static (long WorkingSet, long GcCommitted) Settled()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        // Aggressive: the heap gives back the memory it no longer uses now, not over the next collections. After the whole
        // suite's tests (a 2.7 GB heap), the GC went on decommitting between the two readings: its committed bytes fell by
        // 115 MB while the resident set fell by 13, which the difference below read as 103 MB of native growth.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        return (self.WorkingSet64, GC.GetGCMemoryInfo().TotalCommittedBytes);
    }
}
