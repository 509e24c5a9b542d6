using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Xunit;

namespace Cnn.Tests.Dsl;

/// <summary>
/// Trainer.Fit, Step and Evaluate on float targets (<see cref="TargetData"/>): a regression and a multi-label network train
/// (the loss falls), resume bitwise from a saved checkpoint, report accuracy as NaN, and refuse a loss that does not take
/// what the data holds.
/// </summary>
public class TargetTrainingTests
{
    private sealed class CancelAt(int epoch, int batch, CancellationTokenSource cts) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value)
        {
            if (value.Epoch == epoch && value.Batch == batch) cts.Cancel();
        }
    }

    private sealed class Collect(List<TrainProgress> into) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => into.Add(value);
    }

    /// <summary>
    /// 48 random 1x6x6 images and targets computed from them: for regression the mean brightness of the left and of the
    /// right half (two values in [0, 1]); for multi-label, for each of three quadrants whether it is brighter than the
    /// image (0/1, several at once). Learnable from the pixels, so the loss must fall.
    /// </summary>
    private static TargetData Data(bool multiLabel)
    {
        var rng = new Random(11);
        const int n = 48;
        var x = new float[n * 36];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble();
        int k = multiLabel ? 3 : 2;
        var t = new float[n * k];
        for (int s = 0; s < n; s++)
        {
            float Mean(int r0, int r1, int c0, int c1)
            {
                float sum = 0;
                for (int r = r0; r < r1; r++) for (int c = c0; c < c1; c++) sum += x[s * 36 + r * 6 + c];
                return sum / ((r1 - r0) * (c1 - c0));
            }
            if (multiLabel)
            {
                float all = Mean(0, 6, 0, 6);
                t[s * 3] = Mean(0, 3, 0, 3) > all ? 1 : 0;
                t[s * 3 + 1] = Mean(0, 3, 3, 6) > all ? 1 : 0;
                t[s * 3 + 2] = Mean(3, 6, 0, 3) > all ? 1 : 0;
            }
            else
            {
                t[s * 2] = Mean(0, 6, 0, 3);
                t[s * 2 + 1] = Mean(0, 6, 3, 6);
            }
        }
        return new TargetData(Tensor.FromArray(x, n, 1, 6, 6), Tensor.FromArray(t, n, k));
    }

    /// <summary>
    /// A small convolutional network with batch norm and dropout; the convolution has no bias, which batch norm would cancel
    /// (its gradient is rounding noise, which Adam would turn into full steps that differ between backends).
    /// </summary>
    private static Network Net(int outputs, bool sigmoid)
    {
        var layers = new List<Layer> { new Conv2d(4, 3, 3, PadH: 1, PadW: 1, UseBias: false), new BatchNorm(), new Relu(), new Dropout(0.2f), new Flatten(), new Dense(outputs) };
        if (sigmoid) layers.Add(new Sigmoid());
        return Network.Create(new Serial(layers.ToArray()), new Shape(1, 6, 6));
    }

    public static TheoryData<string> Losses() => new() { "mse", "l1", "bce", "bce-logits" };

    internal static (Network Net, TargetData Data, LossFunction Loss) Case(string name) => name switch
    {
        "mse" => (Net(2, false), Data(false), LossFunction.MeanSquaredError),
        "l1" => (Net(2, false), Data(false), LossFunction.MeanAbsoluteError),
        "bce" => (Net(3, true), Data(true), LossFunction.BinaryCrossEntropy),
        _ => (Net(3, false), Data(true), LossFunction.BinaryCrossEntropyWithLogits),
    };

    [Theory]
    [MemberData(nameof(Losses))]
    public void Fit_on_float_targets_lowers_the_loss_and_reports_no_accuracy(string name)
    {
        var (net, data, loss) = Case(name);
        var init = Initializer.Init(net, 3);
        var before = Trainer.Evaluate(net, init, data, loss, state: Initializer.InitState(net));
        var reports = new List<TrainProgress>();
        var r = Trainer.Fit(net, init, data, new TrainOptions(12, 8, new Adam(0.01f), Seed: 5, Loss: loss),
            validation: data, progress: new Collect(reports));
        var after = Trainer.Evaluate(net, r.Parameters, data, loss, state: r.State);

        Assert.True(after.Loss < 0.6 * before.Loss, $"{loss}: the loss went from {before.Loss} to {after.Loss}.");
        Assert.True(r.History[^1].TrainLoss < r.History[0].TrainLoss, $"{loss}: training loss {r.History[0].TrainLoss} -> {r.History[^1].TrainLoss}.");
        Assert.Equal(after.Loss, r.History[^1].Validation!.Loss);
        Assert.True(float.IsNaN(after.Accuracy) && float.IsNaN(before.Accuracy));
        Assert.All(r.History, s => Assert.True(float.IsNaN(s.TrainAccuracy) && float.IsNaN(s.Validation!.Accuracy)));
        Assert.NotEmpty(reports);
        Assert.All(reports, p => Assert.True(float.IsNaN(p.RunningAccuracy) && float.IsFinite(p.RunningLoss)));
    }

    [Theory]
    [MemberData(nameof(Losses))]
    public void A_cancelled_float_target_run_resumes_bitwise_from_its_saved_checkpoint(string name)
    {
        var (net, data, loss) = Case(name);
        var options = new TrainOptions(3, 7, new Adam(0.01f), Seed: 9, Loss: loss);
        var init = Initializer.Init(net, 1);
        var full = Trainer.Fit(net, init, data, options);

        using var cts = new CancellationTokenSource();
        var cut = Trainer.Fit(net, init, data, options, progress: new CancelAt(2, 3, cts), cancellation: cts.Token);
        Assert.Equal((2, 3), (cut.Checkpoint.Epoch, cut.Checkpoint.Batch));
        var path = Path.Combine(Directory.CreateTempSubdirectory("cnn-target-resume-").FullName, "ckpt.safetensors");
        Checkpoint.Save(path, cut.Checkpoint);
        var resumed = Trainer.Fit(net, Initializer.Init(net, 999), data, options, resume: Checkpoint.Load(path));

        foreach (var p in full.Parameters.Paths)
            Assert.True(full.Parameters[p].Span.SequenceEqual(resumed.Parameters[p].Span), $"{loss}: parameter {p} differs after resuming");
        foreach (var s in full.State.Paths)
            Assert.True(full.State[s].Span.SequenceEqual(resumed.State[s].Span), $"{loss}: state {s} differs after resuming");
        Assert.Equal(full.OptimizerState.Step, resumed.OptimizerState.Step);
    }

    [Fact]
    public void Step_on_float_targets_is_the_loss_gradient_and_the_update()
    {
        var (net, data, loss) = Case("bce-logits");
        var p = Initializer.Init(net, 2);
        var s = Initializer.InitState(net);
        var batch = data.Batch(0, 5);
        var sgd = new Sgd(0.5f);
        var step = Trainer.Step(net, p, s, sgd, sgd.Init(p), batch.Images, batch.Targets, loss, seed: 4);
        var g = Loss.Gradient(net, p, batch.Images, batch.Targets, loss, state: s, seed: 4);
        Assert.Equal(g.Loss, step.Loss);
        Assert.Equal(new Shape(5, 3), step.Output.Shape);
        foreach (var path in p.Paths)
            for (int i = 0; i < p[path].Size; i++)
            {
                // SGD's update w - lr g, up to the rounding of a fused multiply-add.
                float expected = p[path][i] - 0.5f * g.Gradients[path][i];
                Assert.True(Math.Abs(step.Parameters[path][i] - expected) <= 1e-6f * (1 + Math.Abs(expected)),
                    $"{path}[{i}]: {step.Parameters[path][i]} after the step, w - lr g = {expected}");
            }
        Assert.Contains(g.Gradients.Paths, path => g.Gradients[path].Span.ToArray().Any(v => v != 0));
    }

    [Fact]
    public void A_loss_that_does_not_take_what_the_data_holds_is_refused_before_training()
    {
        var (net, data, _) = Case("mse");
        var init = Initializer.Init(net, 1);
        var e = Assert.Throws<CnnException>(() => Trainer.Fit(net, init, data, new TrainOptions(1, 8, new Sgd(0.1f))));
        Assert.Contains("float targets of shape [2]", e.Message);
        Assert.Contains("softmax cross-entropy", e.Message);

        var labelled = new LabeledData(data.Images, Enumerable.Range(0, data.Count).Select(i => i % 2).ToArray(), 2);
        e = Assert.Throws<CnnException>(() => Trainer.Fit(net, init, labelled, new TrainOptions(1, 8, new Sgd(0.1f), Loss: LossFunction.MeanAbsoluteError)));
        Assert.Contains("integer class labels", e.Message);
        Assert.Contains("mean absolute error", e.Message);
        e = Assert.Throws<CnnException>(() => LossFunction.BinaryCrossEntropyWithLogits.Compute(Tensor.Zeros(2, 2), new[] { 0, 1 }));
        Assert.Contains("takes float targets", e.Message);

        var wide = new TargetData(data.Images, Tensor.Zeros(data.Count, 3));
        var s = Assert.Throws<ShapeException>(() => Trainer.Fit(net, init, wide, new TrainOptions(1, 8, new Sgd(0.1f), Loss: LossFunction.MeanSquaredError)));
        Assert.Contains("[3]", s.Message);
        Assert.Contains("[2]", s.Message);

        var outOfRange = new TargetData(data.Images, Tensor.Full(new Shape(data.Count, 2), 2f));
        e = Assert.Throws<CnnException>(() => Trainer.Fit(net, init, outOfRange, new TrainOptions(1, 8, new Sgd(0.1f), Loss: LossFunction.BinaryCrossEntropyWithLogits)));
        Assert.Contains("[0, 1]", e.Message);
    }

    [Fact]
    public void A_callback_monitoring_accuracy_on_float_targets_says_it_is_not_defined()
    {
        var (net, data, loss) = Case("l1");
        var options = new TrainOptions(2, 16, new Sgd(0.1f), Loss: loss, Callbacks: new[] { Callback.EarlyStopping("accuracy") });
        var e = Assert.Throws<CnnException>(() => Trainer.Fit(net, Initializer.Init(net, 1), data, options));
        Assert.Contains("'accuracy' is not defined", e.Message);
        var byLoss = options with { Callbacks = new[] { Callback.EarlyStopping("loss") } };
        Assert.Equal(2, Trainer.Fit(net, Initializer.Init(net, 1), data, byLoss).History.Count);
    }

    [Fact]
    public void The_console_lines_leave_out_the_accuracy_of_float_targets_and_keep_it_for_labels()
    {
        string Lines(float accuracy)
        {
            var text = new StringWriter();
            var console = new ConsoleProgress(ProgressStyle.Lines, 1, text, 200);
            console.Report(new TrainProgress(1, 1, 2, 0.25f, accuracy, TimeSpan.FromSeconds(1)));
            console.Epoch(new EpochStats(1, 0.2f, accuracy, new Evaluation(0.3f, accuracy, 10), TimeSpan.FromSeconds(2)));
            return text.ToString();
        }
        var targets = Lines(float.NaN);
        Assert.Contains("loss: 0.2500", targets);
        Assert.Contains("val_loss: 0.3000", targets);
        Assert.DoesNotContain("acc", targets);
        Assert.DoesNotContain("NaN", targets);
        var labels = Lines(0.5f);
        Assert.Contains("accuracy: 0.5000", labels);
        Assert.Contains("val_accuracy: 0.5000", labels);
    }

    [Fact]
    public void Target_data_checks_its_input_and_keeps_rows_together()
    {
        var images = Tensor.FromArray(Enumerable.Range(0, 10).Select(i => (float)i).ToArray(), 5, 2);
        var targets = Tensor.FromArray(Enumerable.Range(0, 5).Select(i => i * 10f).ToArray(), 5);
        var data = new TargetData(images, targets);
        Assert.Equal(new Shape(), data.TargetShape);
        var split = data.Split(2, seed: 3);
        Assert.Equal((2, 3), (split.First.Count, split.Second.Count));
        foreach (var part in new[] { split.First, split.Second, data.Take(new[] { 4, 0, 4 }), data.Batch(1, 3) })
            for (int i = 0; i < part.Count; i++)
                Assert.Equal(part.Images[i * 2] / 2 * 10, part.Targets[i]);
        Assert.Equal(new[] { 0f, 10f, 20f, 30f, 40f }, split.First.Targets.Span.ToArray().Concat(split.Second.Targets.Span.ToArray()).Order());

        var nan = targets.Span.ToArray();
        nan[3] = float.NaN;
        var e = Assert.Throws<CnnException>(() => new TargetData(images, Tensor.FromArray(nan, 5)));
        Assert.Contains("example 3", e.Message);
        e = Assert.Throws<CnnException>(() => new TargetData(images, Tensor.Zeros(4, 1)));
        Assert.Contains("5 examples", e.Message);
        Assert.Throws<CnnException>(() => data.Batch(3, 3));
        Assert.Throws<CnnException>(() => data.Split(6, 0));
    }
}
