using Cnn.Core;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Tests.LibTorch;

/// <summary>
/// The nn.Module translation against the functional LibTorch interpreter (itself checked against Apply): same outputs,
/// gradients and running statistics from real nn modules, and weights that go to a TorchSharp file and come back.
/// </summary>
/// <remarks>
/// Both sides run LibTorch's kernels on the same values, so they agree to rounding: where a module computes differently
/// (adaptive pooling instead of a mean over flattened sites, <c>nn.Linear</c>'s fused kernel), sums are taken in another
/// order. Outputs and state: <c>1e-6 + 1e-5 * max|b|</c>; gradients: <c>1e-5 * S * sqrt(n) + 1e-4 * ||b||</c>.
/// </remarks>
public sealed class TorchModuleTests
{
    private static readonly Tolerance Close = new(1e-6, 1e-5);
    private static readonly Tolerance CloseGradient = new(1e-5, 1e-4);

    [CnnProperty(Arbitrary = new[] { typeof(BridgeCases) })]
    public void Module_computes_what_the_functional_interpreter_computes_and_its_weights_round_trip(BridgeCase c)
    {
        using var module = TorchModule.Build(c.Network, c.Parameters, c.State);
        AssertSame(c.Parameters, TorchModule.ReadParameters(c.Network, module), "parameters read back");
        AssertSame(c.State, TorchModule.ReadState(c.Network, module), "state read back");

        using (var scope = torch.NewDisposeScope())
        {
            module.eval();
            var y = TorchTensors.FromTorch(module.call(TorchTensors.ToTorch(c.X)));
            var expected = TorchNetwork.Forward(c.Network, c.Parameters, c.X, Mode.Eval, c.State);
            Assert.True(BridgeComparison.ElementUse(y, expected, Close) <= 1, $"eval output{Environment.NewLine}{c}");
        }

        // nn.Dropout draws LibTorch's own masks, so training mode is comparable only without active dropout.
        bool dropout = c.Network.RootNode.Leaves().Any(l => l.Layer is Dropout { P: > 0 } && !l.Frozen);
        if (!dropout) CompareTraining(module, c);

        var file = Path.Combine(Path.GetTempPath(), $"cnn-module-{Environment.ProcessId}-{c.Family}-{c.Seed}.bin");
        try
        {
            module.save(file);
            var loaded = TorchModule.Load(c.Network, file);
            AssertSame(TorchModule.ReadParameters(c.Network, module), loaded.Parameters, "parameters loaded from the file");
            AssertSame(TorchModule.ReadState(c.Network, module), loaded.State, "state loaded from the file");
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>One training-mode pass through the module with autograd, against <see cref="TorchNetwork.Gradient"/>.</summary>
    private static void CompareTraining(torch.nn.Module<TorchTensor, TorchTensor> module, BridgeCase c)
    {
        var reference = TorchNetwork.Gradient(c.Network, c.Parameters, c.X, c.Labels, c.Loss, Mode.Train, c.State, c.Seed);
        using var scope = torch.NewDisposeScope();
        module.train();
        var x = TorchTensors.ToTorch(c.X, requiresGrad: true);
        var output = module.call(x);
        // With auxiliary heads, the total the functional interpreter differentiates: each head's loss times its weight added.
        var loss = TorchLoss(output, c.Labels, c.Loss);
        foreach (var head in TorchModule.HeadOutputs(module)) loss = loss + head.Weight * TorchLoss(head.Output, c.Labels, c.Loss);
        loss.backward();

        var rows = new List<Comparison> { new("train output", BridgeComparison.ElementUse(TorchTensors.FromTorch(output), reference.Output, Close)) };
        double scale = reference.Gradients.Entries.Select(kv => kv.Value).Append(reference.InputGradient).Max(t => Math.Sqrt(t.Span.ToArray().Sum(v => (double)v * v) / t.Size));
        var trainable = new List<string>();
        foreach (var (name, parameter) in module.named_parameters())
        {
            string path = Network.Join(c.Network.RootNode.Path, name.Replace('.', '/'));
            if (!parameter.requires_grad) continue;
            trainable.Add(path);
            var grad = parameter.grad is { } g ? TorchTensors.FromTorch(g) : Tensor.Zeros(c.Parameters[path].Shape);
            rows.Add(new($"gradient {path}", BridgeComparison.NormUse(grad, reference.Gradients[path], CloseGradient, scale)));
        }
        rows.Add(new("input gradient", BridgeComparison.NormUse(TorchTensors.FromTorch(x.grad!), reference.InputGradient, CloseGradient, scale)));
        var state = TorchModule.ReadState(c.Network, module);
        rows.AddRange(state.Paths.Select(p => new Comparison($"state {p}", BridgeComparison.ElementUse(state[p], reference.State[p], Close))));
        var failed = rows.Where(r => !r.Passed).ToList();
        Assert.True(failed.Count == 0, $"{string.Join("; ", failed)}{Environment.NewLine}{c}");
        // Frozen parameters do not require gradients in the module, as they get none from Loss.Gradient.
        Assert.Equal(reference.Gradients.Paths, trainable.Order(StringComparer.Ordinal));
    }

    /// <summary>The loss as LibTorch computes it, for a module's output.</summary>
    internal static TorchTensor TorchLoss(TorchTensor output, int[] labels, LossFunction loss)
    {
        var t = torch.tensor(labels.Select(l => (long)l).ToArray());
        if (loss.Equals(LossFunction.NegativeLogLikelihood)) return nll_loss(output, t);
        if (loss.Equals(LossFunction.MeanSquaredError)) return mse_loss(output, one_hot(t, output.shape[1]).to_type(torch.ScalarType.Float32));
        return cross_entropy(output, t, label_smoothing: loss.LabelSmoothing);
    }

    /// <summary>
    /// A module a TorchSharp user wrote by hand (LeNet-5 with torch's own random initialisation, named as the DSL names its
    /// layers), trained for a few steps with torch.optim and saved with <c>module.save</c>: its weights load into the DSL and
    /// the im2col backend gives its outputs.
    /// </summary>
    [Fact]
    public void Weights_of_a_hand_written_TorchSharp_module_load_into_the_DSL_and_give_its_outputs()
    {
        var net = Zoo.LeNet5();
        torch.manual_seed(5);
        using var module = torch.nn.Sequential(
            ("conv1", torch.nn.Conv2d(1, 6, 5, padding: 2)), ("tanh1", torch.nn.Tanh()), ("pool1", torch.nn.AvgPool2d(2, 2)),
            ("conv2", torch.nn.Conv2d(6, 16, 5)), ("tanh2", torch.nn.Tanh()), ("pool2", torch.nn.AvgPool2d(2, 2)),
            ("flatten1", torch.nn.Flatten()),
            ("dense1", torch.nn.Linear(400, 120)), ("tanh3", torch.nn.Tanh()),
            ("dense2", torch.nn.Linear(120, 84)), ("tanh4", torch.nn.Tanh()),
            ("dense3", torch.nn.Linear(84, 10)));
        var rng = new Random(6);
        var x = Tensor.FromArray(Enumerable.Range(0, 4 * 784).Select(_ => rng.NextSingle()).ToArray(), 4, 1, 28, 28);
        var labels = new[] { 1, 7, 3, 0 };
        using (var optimizer = torch.optim.SGD(module.parameters(), 0.1))
        {
            for (int step = 0; step < 3; step++)
            {
                using var scope = torch.NewDisposeScope();
                optimizer.zero_grad();
                TorchLoss(module.call(TorchTensors.ToTorch(x)), labels, LossFunction.SoftmaxCrossEntropy).backward();
                optimizer.step();
            }
        }
        Tensor expected;
        using (var scope = torch.NewDisposeScope())
        using (torch.no_grad())
            expected = TorchTensors.FromTorch(module.call(TorchTensors.ToTorch(x)));

        var file = Path.Combine(Path.GetTempPath(), $"cnn-lenet5-{Environment.ProcessId}.bin");
        try
        {
            module.save(file);
            var loaded = TorchModule.Load(net, file);
            Assert.Equal(net.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()).Select(s => s.Path).Order(StringComparer.Ordinal), loaded.Parameters.Paths);
            Assert.Equal(0, loaded.State.Count);
            // Logits are O(1): 1e-5 + 1e-4 of the largest is well above float32 rounding through five layers.
            TorchReferenceClose(Apply.Forward(net, loaded.Parameters, x), expected);
            TorchReferenceClose(TorchNetwork.Forward(net, loaded.Parameters, x), expected);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Training in LibTorch moves the running statistics; the saved file brings them, and the weights, back.</summary>
    [Fact]
    public void Running_statistics_trained_in_LibTorch_come_back_through_a_file()
    {
        var net = Network.Create(new Serial(
            new Conv2d(4, 3, 3, PadH: 1, PadW: 1), new BatchNorm(), new Relu(),
            new Residual(new Serial(new Conv2d(4, 3, 3, PadH: 1, PadW: 1, UseBias: false), new BatchNorm())),
            new Freeze(new Serial(new Conv2d(4, 1, 1).Named("conv"), new BatchNorm().Named("bn")).Named("frozen")),
            new GlobalPool(), new Flatten(), new Dense(3)).Named("net"), new Shape(2, 6, 6));
        var p = Initializer.Init(net, 3);
        var state = Initializer.InitState(net);
        var rng = new Random(4);
        var x = Tensor.FromArray(Enumerable.Range(0, 8 * 72).Select(_ => rng.NextSingle()).ToArray(), 8, 2, 6, 6);
        var labels = Enumerable.Range(0, 8).Select(i => i % 3).ToArray();
        using var module = TorchModule.Build(net, p, state);
        module.train();
        using (var optimizer = torch.optim.SGD(module.parameters().Where(q => q.requires_grad), 0.05, momentum: 0.9))
        {
            for (int step = 0; step < 5; step++)
            {
                using var scope = torch.NewDisposeScope();
                optimizer.zero_grad();
                TorchLoss(module.call(TorchTensors.ToTorch(x)), labels, LossFunction.SoftmaxCrossEntropy).backward();
                optimizer.step();
            }
        }
        var file = Path.Combine(Path.GetTempPath(), $"cnn-bn-{Environment.ProcessId}.bin");
        try
        {
            module.save(file);
            var loaded = TorchModule.Load(net, file);
            AssertSame(TorchModule.ReadParameters(net, module), loaded.Parameters, "parameters");
            AssertSame(TorchModule.ReadState(net, module), loaded.State, "state");
            // Trained batch norm moved; frozen weights and statistics did not.
            Assert.NotEqual(state["net/bn1/running_mean"].ToArray(), loaded.State["net/bn1/running_mean"].ToArray());
            Assert.NotEqual(p["net/conv1/weight"].ToArray(), loaded.Parameters["net/conv1/weight"].ToArray());
            Assert.Equal(state["net/frozen/bn/running_var"].ToArray(), loaded.State["net/frozen/bn/running_var"].ToArray());
            Assert.Equal(p["net/frozen/conv/weight"].ToArray(), loaded.Parameters["net/frozen/conv/weight"].ToArray());

            module.eval();
            Tensor expected;
            using (var scope = torch.NewDisposeScope())
            using (torch.no_grad())
                expected = TorchTensors.FromTorch(module.call(TorchTensors.ToTorch(x)));
            TorchReferenceClose(Apply.Forward(net, loaded.Parameters, x, Mode.Eval, loaded.State), expected);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void A_file_of_another_network_or_no_file_is_a_CnnException_naming_the_file()
    {
        var file = Path.Combine(Path.GetTempPath(), $"cnn-other-{Environment.ProcessId}.bin");
        try
        {
            using (var module = TorchModule.Build(Zoo.SimpleConvNet(), Initializer.Init(Zoo.SimpleConvNet(), 1)))
                module.save(file);
            var e = Assert.ThrowsAny<CnnException>(() => TorchModule.Load(Zoo.LeNet5(), file));
            Assert.Contains(file, e.Message);
        }
        finally
        {
            File.Delete(file);
        }
        var missing = Assert.ThrowsAny<CnnException>(() => TorchModule.Load(Zoo.LeNet5(), file));
        Assert.Contains(file, missing.Message);
    }

    [Fact]
    public void Building_a_network_with_batch_norm_needs_its_state()
    {
        var net = Network.Create(new Serial(new Conv2d(2, 3, 3), new BatchNorm()), new Shape(1, 5, 5));
        var e = Assert.ThrowsAny<CnnException>(() => TorchModule.Build(net, Initializer.Init(net, 1)));
        Assert.Contains("bn1/running_mean", e.Message);
    }

    /// <summary>A caller's dispose scope does not take the module's weights with it when it closes.</summary>
    [Fact]
    public void A_module_built_inside_a_dispose_scope_outlives_it()
    {
        var net = Network.Create(new Serial(new Conv2d(2, 3, 3), new BatchNorm(), new Freeze(new BatchNorm()), new Flatten(), new Dense(3)), new Shape(1, 5, 5));
        var p = Initializer.Init(net, 1);
        var state = Initializer.InitState(net);
        torch.nn.Module<TorchTensor, TorchTensor> module;
        using (torch.NewDisposeScope())
            module = TorchModule.Build(net, p, state);
        using (module)
        {
            AssertSame(p, TorchModule.ReadParameters(net, module), "parameters");
            AssertSame(state, TorchModule.ReadState(net, module), "state");
            using var scope = torch.NewDisposeScope();
            module.eval();
            var x = Tensor.FromArray(Enumerable.Range(0, 50).Select(i => i / 50f).ToArray(), 2, 1, 5, 5);
            TorchReferenceClose(TorchTensors.FromTorch(module.call(TorchTensors.ToTorch(x))), Apply.Forward(net, p, x, Mode.Eval, state));
        }
    }

    private static void TorchReferenceClose(Tensor actual, Tensor expected) =>
        Kernels.TorchReference.Close(actual, expected, 1e-5, 1e-4, "output with the loaded weights");

    private static void AssertSame(Parameters expected, Parameters actual, string what)
    {
        Assert.Equal(expected.Paths, actual.Paths);
        foreach (var path in expected.Paths)
            Assert.True(expected[path].Span.SequenceEqual(actual[path].Span), $"{what}: '{path}' differs.");
    }
}
