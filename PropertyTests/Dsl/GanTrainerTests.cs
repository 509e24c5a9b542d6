using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Tests.Kernels;
using Xunit;

namespace Cnn.Tests.Dsl;

/// <summary>
/// Adversarial training on small DCGAN pairs (the zoo's networks with few features) and 40 images of bars: determinism,
/// exact resume from a saved checkpoint at any batch (the generator's moving average and a decaying learning rate with it),
/// the loss the label smoothing changes, the rates the schedule sets, the average's recurrence, and the checks of its inputs.
/// </summary>
public sealed class GanTrainerTests
{
    internal static (Model Generator, Model Discriminator, Tensor Real) Setup(int images = 40)
    {
        var rng = new Random(5);
        var d = new float[images * 28 * 28];
        // Image i: a bright horizontal bar at row 2 (i % 10) + 4 over faint noise, in the generator's range [-1, 1].
        for (int i = 0; i < images; i++)
            for (int k = 0; k < 28 * 28; k++)
                d[i * 784 + k] = k / 28 == 2 * (i % 10) + 4 ? 1f : (float)(rng.NextDouble() * 0.2 - 1);
        return (Model.Init(Zoo.DcganGenerator(8, 4), 1), Model.Init(Zoo.DcganDiscriminator(4), 2), Tensor.FromArray(d, images, 1, 28, 28));
    }

    internal static GanOptions Options(int epochs) =>
        GanOptions.Dcgan(epochs, seed: 3, batchSize: 16) with { RealLabelSmoothing = 0.1f, GeneratorAverageDecay = 0.9f, Schedule = Schedule.LinearDecay(0.5) };

    internal static void SameBits(Parameters expected, Parameters actual, string what)
    {
        Assert.Equal(expected.Paths, actual.Paths);
        foreach (var (path, t) in expected.Entries) TorchReference.Exact(actual[path], t, $"{what} {path}");
    }

    internal static void SameBits(GanPlayer expected, GanPlayer actual, string what)
    {
        SameBits(expected.Parameters, actual.Parameters, what + " parameters");
        SameBits(expected.State, actual.State, what + " state");
        Assert.Equal(expected.OptimizerState.Step, actual.OptimizerState.Step);
        Assert.Equal(expected.OptimizerState.Slots.Keys, actual.OptimizerState.Slots.Keys);
        foreach (var (slot, p) in expected.OptimizerState.Slots) SameBits(p, actual.OptimizerState.Slots[slot], $"{what} optimizer {slot}");
    }

    [Fact]
    public void TheDiscriminatorTakesTheGeneratorsImagesAndGivesOneLogit()
    {
        var g = Zoo.DcganGenerator();
        var d = Zoo.DcganDiscriminator();
        Assert.Equal(g.OutputShape, d.InputShape);
        Assert.Equal(new Shape(1), d.OutputShape);
        Assert.Equal(new[] { new Shape(64, 14, 14), new Shape(128, 7, 7), new Shape(1, 1, 1) },
            d.Leaves.Where(n => n.Layer is Conv2d).Select(n => n.Output));
        Assert.DoesNotContain(d.Leaves, n => n.Layer is Sigmoid);
        Assert.Equal(2, d.Leaves.Count(n => n.Layer is LeakyRelu { Slope: 0.2f }));
        Assert.Equal(d, Zoo.ByName("dcgan-discriminator"));
    }

    [Fact]
    public void TrainingIsAFunctionOfTheSeedAndTheLossesAreFiniteProbabilities()
    {
        var (g, d, real) = Setup();
        var a = GanTrainer.Fit(g, d, real, Options(2));
        var b = GanTrainer.Fit(g, d, real, Options(2));
        SameBits(a.Checkpoint.Generator, b.Checkpoint.Generator, "generator");
        SameBits(a.Checkpoint.Discriminator, b.Checkpoint.Discriminator, "discriminator");
        SameBits(a.Checkpoint.GeneratorAverage!.Parameters, b.Checkpoint.GeneratorAverage!.Parameters, "generator average");
        SameBits(a.Checkpoint.GeneratorAverage.State, b.Checkpoint.GeneratorAverage.State, "generator average's statistics");
        Assert.Equal(a.History.Select(h => h.Losses), b.History.Select(h => h.Losses));
        Assert.Equal(2, a.History.Count);
        Assert.Equal(6, a.Checkpoint.Step);
        Assert.Equal((3, 0), (a.Checkpoint.Epoch, a.Checkpoint.Batch));
        Assert.All(a.History, h =>
        {
            Assert.True(float.IsFinite(h.Losses.DiscriminatorLoss) && h.Losses.DiscriminatorLoss > 0, $"d_loss {h.Losses.DiscriminatorLoss}");
            Assert.True(float.IsFinite(h.Losses.GeneratorLoss) && h.Losses.GeneratorLoss > 0, $"g_loss {h.Losses.GeneratorLoss}");
            Assert.InRange(h.Losses.RealScore, 0f, 1f);
            Assert.InRange(h.Losses.FakeScore, 0f, 1f);
        });
        Assert.Equal(a.Generator.Parameters, a.Checkpoint.Generator.Parameters);
        var other = GanTrainer.Fit(g, d, real, Options(2) with { Seed = 4 });
        Assert.NotEqual(a.Checkpoint.Generator.Parameters["deconv1/weight"].ToArray(), other.Checkpoint.Generator.Parameters["deconv1/weight"].ToArray());
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 3)]
    [InlineData(2, 2)]
    [InlineData(3, 1)]
    public void ACancelledRunResumedFromItsSavedCheckpointEndsBitwiseEqualToAnUninterruptedRun(int epoch, int batch)
    {
        var (g, d, real) = Setup();
        var full = GanTrainer.Fit(g, d, real, Options(3));
        using var cts = new CancellationTokenSource();
        var file = Path.Combine(Path.GetTempPath(), $"gan-resume-{Guid.NewGuid():N}.safetensors");
        try
        {
            var first = GanTrainer.Fit(g, d, real, Options(3), cancellation: cts.Token,
                onCheckpoint: cp => cp.Save(file, g.Network, d.Network),
                progress: p => { if (p.Epoch == epoch && p.Batch == batch) cts.Cancel(); });
            Assert.Equal(batch == 3 ? (epoch + 1, 0) : (epoch, batch), (first.Checkpoint.Epoch, first.Checkpoint.Batch));
            var loaded = GanCheckpoint.Load(file);
            SameBits(first.Checkpoint.GeneratorAverage!.Parameters, loaded.GeneratorAverage!.Parameters, "saved generator average");
            SameBits(first.Checkpoint.GeneratorAverage.State, loaded.GeneratorAverage.State, "saved generator average's statistics");
            Assert.Equal((first.Checkpoint.Epoch, first.Checkpoint.Batch, first.Checkpoint.Step), (loaded.Epoch, loaded.Batch, loaded.Step));
            var (gNet, dNet) = loaded.Networks(file)!.Value;
            Assert.Equal(g.Network, gNet);
            Assert.Equal(d.Network, dNet);
            // The resumed run starts from models with other weights: everything must come from the checkpoint.
            var rest = GanTrainer.Fit(Model.Init(gNet, 99), Model.Init(dNet, 98), real, Options(3), resume: loaded);
            SameBits(full.Checkpoint.Generator, rest.Checkpoint.Generator, "generator");
            SameBits(full.Checkpoint.Discriminator, rest.Checkpoint.Discriminator, "discriminator");
            SameBits(full.Checkpoint.GeneratorAverage!.Parameters, rest.Checkpoint.GeneratorAverage!.Parameters, "generator average");
            SameBits(full.Checkpoint.GeneratorAverage.State, rest.Checkpoint.GeneratorAverage.State, "generator average's statistics");
            // An epoch's means cover the steps of the call that ran them: equal when the last epoch ran whole after the resume.
            if (loaded.Epoch < 3) Assert.Equal(full.History[^1].Losses, rest.History[^1].Losses);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void OneSidedLabelSmoothingLowersOnlyTheRealTargetOfTheDiscriminator()
    {
        var (g, d, real) = Setup(16);
        var opt = new Sgd(0.01f);
        var gp = new GanPlayer(g.Parameters, g.State, opt.Init(g.Parameters));
        var dp = new GanPlayer(d.Parameters, d.State, opt.Init(d.Parameters));
        var noise = GanTrainer.Noise(g.Network.InputShape, 16, 7);
        var plain = GanTrainer.Step(g.Network, gp, d.Network, dp, opt, opt, real, noise, 1f, seed: 5);
        var smooth = GanTrainer.Step(g.Network, gp, d.Network, dp, opt, opt, real, noise, 0.9f, seed: 5);
        // BCE with logits is max(z, 0) - z t + log(1 + exp(-|z|)): lowering the real target by 0.1 adds 0.1 mean(z) over the real images.
        var zReal = Apply.Forward(d.Network, d.Parameters, real, Mode.Train, d.State, 6).ToArray();
        Assert.Equal(plain.Losses.DiscriminatorLoss + 0.1 * zReal.Average(v => (double)v), smooth.Losses.DiscriminatorLoss, 5);
        Assert.Equal(plain.Losses.RealScore, smooth.Losses.RealScore);
        Assert.Equal(plain.Losses.FakeScore, smooth.Losses.FakeScore);
        Assert.NotEqual(plain.Discriminator.Parameters["conv1/weight"].ToArray(), smooth.Discriminator.Parameters["conv1/weight"].ToArray());
        // Nothing in the arguments changed.
        Assert.Same(g.Parameters, gp.Parameters);
        Assert.Equal(0, gp.OptimizerState.Step);
    }

    [Fact]
    public void TheGeneratorsAverageMovesATenthOfTheWayToTheTrainedWeightsAtEachStep()
    {
        var (g, d, real) = Setup();
        // The state after each of an epoch's three steps, by cancelling after it (a cancelled run equals the first steps of an uninterrupted one).
        GanCheckpoint After(int steps)
        {
            using var cts = new CancellationTokenSource();
            return GanTrainer.Fit(g, d, real, Options(1), cancellation: cts.Token, progress: p => { if (p.Batch == steps) cts.Cancel(); }).Checkpoint;
        }
        var average = g.Parameters;
        foreach (var steps in new[] { 1, 2, 3 })
        {
            var cp = After(steps);
            Assert.Equal(steps, cp.Step);
            foreach (var (path, t) in cp.Generator.Parameters.Entries)
            {
                var expected = Tensor.FromArray(average[path].ToArray().Zip(t.ToArray(), (a, p) => 0.9f * a + 0.1f * p).ToArray(), t.Shape);
                TorchReference.Close(cp.GeneratorAverage!.Parameters[path], expected, 1e-6, 1e-6, $"step {steps} {path}");
            }
            average = cp.GeneratorAverage!.Parameters;
        }
        // The average lags the weights (Adam at 2e-4 moves each weight by about that much per step).
        Assert.NotEqual(average["deconv1/weight"].ToArray(), After(3).Generator.Parameters["deconv1/weight"].ToArray());
        var result = GanTrainer.Fit(g, d, real, Options(1));
        Assert.Same(result.Checkpoint.GeneratorAverage!.Parameters, result.AveragedGenerator!.Parameters);
        // The averaged weights' batch-norm statistics are measured with them, not the trained weights' running ones.
        SameBits(GanTrainer.StandingState(g.Network, average, result.Generator.State, 3), result.AveragedGenerator.State, "standing statistics");
        foreach (var path in result.Generator.State.Paths)
            Assert.NotEqual(result.Generator.State[path].ToArray(), result.AveragedGenerator.State[path].ToArray());
        var none = GanTrainer.Fit(g, d, real, Options(1) with { GeneratorAverageDecay = 0f });
        Assert.Null(none.Checkpoint.GeneratorAverage);
        Assert.Null(none.AveragedGenerator);
        SameBits(result.Checkpoint.Generator, none.Checkpoint.Generator, "the trained generator, which the average does not change");
    }

    [Fact]
    public void TheScheduleSetsBothRatesOfEveryStep()
    {
        var (g, d, real) = Setup();
        // Two epochs of three steps; the linear decay over the last half keeps steps 1 to 4 at the base rate, then takes
        // step 5 at 2/3 of it and step 6 at 1/3. SGD, whose update is the rate times the gradient.
        var constant = Options(2) with { GeneratorOptimizer = new Sgd(0.05f), DiscriminatorOptimizer = new Sgd(0.05f), Schedule = null };
        var decaying = constant with { Schedule = Schedule.LinearDecay(0.5) };
        GanCheckpoint After(GanOptions options, int steps)
        {
            using var cts = new CancellationTokenSource();
            return GanTrainer.Fit(g, d, real, options, cancellation: cts.Token, progress: p => { if ((p.Epoch - 1) * 3 + p.Batch == steps) cts.Cancel(); }).Checkpoint;
        }
        var four = After(constant, 4);
        SameBits(four.Generator, After(decaying, 4).Generator, "generator after the steps at the base rate");
        SameBits(four.Discriminator, After(decaying, 4).Discriminator, "discriminator after the steps at the base rate");
        // Step 5's discriminator gradient comes from the same parameters in both runs (its update precedes the
        // generator's): the decayed update is 2/3 of the constant one.
        var (fast, slow) = (After(constant, 5).Discriminator.Parameters, After(decaying, 5).Discriminator.Parameters);
        foreach (var (path, before) in four.Discriminator.Parameters.Entries)
        {
            var full = fast[path].ToArray().Zip(before.ToArray(), (a, b) => a - b).ToArray();
            var part = slow[path].ToArray().Zip(before.ToArray(), (a, b) => a - b).ToArray();
            Assert.Contains(full, v => v != 0);
            // Each parameter is stored in float: a difference carries up to half an ulp of it (6e-8 for batch-norm scales near 1).
            TorchReference.Close(part, full.Select(v => v * 2f / 3f).ToArray(), 2e-7, 1e-3, $"step 5's update of {path}");
        }
        Assert.NotEqual(After(constant, 5).Generator.Parameters["deconv1/weight"].ToArray(), After(decaying, 5).Generator.Parameters["deconv1/weight"].ToArray());
    }

    [Fact]
    public void NoiseIsStandardNormalAndAFunctionOfTheSeed()
    {
        var a = GanTrainer.Noise(new Shape(100, 1, 1), 200, 11);
        Assert.Equal(new Shape(200, 100, 1, 1), a.Shape);
        Assert.Equal(a.ToArray(), GanTrainer.Noise(new Shape(100, 1, 1), 200, 11).ToArray());
        Assert.NotEqual(a.ToArray(), GanTrainer.Noise(new Shape(100, 1, 1), 200, 12).ToArray());
        var v = a.ToArray();
        double mean = v.Average(x => (double)x), std = Math.Sqrt(v.Average(x => (x - mean) * (x - mean)));
        Assert.InRange(mean, -0.03, 0.03);
        Assert.InRange(std, 0.97, 1.03);
    }

    [Fact]
    public void InputsThatDoNotFitAreRejectedWithWhatWasExpected()
    {
        var (g, d, real) = Setup();
        var e1 = Assert.Throws<ShapeException>(() => GanTrainer.Fit(g, Model.Init(Zoo.Conv1dSignal()), real, Options(1)));
        Assert.Contains("makes samples of shape", e1.Message);
        var e2 = Assert.Throws<ShapeException>(() => GanTrainer.Fit(g, Model.Init(Zoo.LeNet5()), real, Options(1)));
        Assert.Contains("one logit", e2.Message);
        var e3 = Assert.Throws<ShapeException>(() => GanTrainer.Fit(g, d, real.Reshape(40, 28, 28), Options(1)));
        Assert.Contains("[N, 1, 28, 28]", e3.Message);
        var e4 = Assert.Throws<CnnException>(() => GanTrainer.Fit(g, d, real, Options(1) with { RealLabelSmoothing = 1f }));
        Assert.Contains("RealLabelSmoothing", e4.Message);
        var e8 = Assert.Throws<CnnException>(() => GanTrainer.Fit(g, d, real, Options(1) with { GeneratorAverageDecay = 1f }));
        Assert.Contains("GeneratorAverageDecay is from 0 (no average) up to but not including 1 (0.999 is usual); found 1", e8.Message);
        var cp = GanTrainer.Fit(g, d, real, Options(1)).Checkpoint;
        var e5 = Assert.Throws<CnnException>(() => GanTrainer.Fit(g, d, real, Options(2) with { BatchSize = 40 }, resume: cp with { Epoch = 1, Batch = 3 }));
        Assert.Contains("batch 3", e5.Message);
        var e6 = Assert.Throws<CnnException>(() => GanTrainer.Fit(g, d, real, Options(2) with { DiscriminatorOptimizer = new Sgd(0.1f, 0.9f) }, resume: cp));
        Assert.Contains("velocity", e6.Message);
        var e9 = Assert.Throws<CnnException>(() => GanTrainer.Fit(g, d, real, Options(2), resume: cp with { GeneratorAverage = new GanAverage(cp.Discriminator.Parameters, cp.Discriminator.State) }));
        Assert.Contains("generator average does not fit the generator", e9.Message);
        var file = Path.Combine(Path.GetTempPath(), $"not-gan-{Guid.NewGuid():N}.safetensors");
        try
        {
            g.Save(file);
            var e7 = Assert.Throws<Cnn.Core.FormatException>(() => GanCheckpoint.Load(file));
            Assert.Contains("not a GAN checkpoint", e7.Message);
        }
        finally
        {
            File.Delete(file);
        }
    }
}

/// <summary>
/// Adversarial training with another kernel thread count: the convolutions sum their weight gradients per chunk of the
/// batch, one chunk per thread (ChunkPartials), so the bits are a function of the seed and the thread count, as for
/// <c>Trainer.Fit</c>; across thread counts the results agree to float rounding.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class GanThreadCountTests
{
    [Fact]
    public void EachThreadCountRepeatsItsBitsAndOneTwoAndThreeThreadsAgreeToRounding()
    {
        var (g, d, real) = GanTrainerTests.Setup();
        // SGD, whose step is proportional to the gradient: Adam divides by the root of the squared gradient, so a gradient
        // near zero turns its rounding into a step of the learning rate's size, and agreement would say nothing.
        var sgd = GanTrainerTests.Options(1) with { GeneratorOptimizer = new Sgd(0.05f), DiscriminatorOptimizer = new Sgd(0.05f) };
        GanResult Run(int workers) => WorkerCountCollection.With(workers, () => GanTrainer.Fit(g, d, real, sgd));
        var runs = new[] { 1, 2, 3 }.Select(Run).ToArray();
        var again = Run(3);
        GanTrainerTests.SameBits(runs[2].Checkpoint.Generator, again.Checkpoint.Generator, "generator");
        GanTrainerTests.SameBits(runs[2].Checkpoint.Discriminator, again.Checkpoint.Discriminator, "discriminator");
        // Three steps from the same start: rounding differences of the gradient sums (relative 1e-7) stay far below 1e-4.
        foreach (var r in runs.Skip(1))
            foreach (var (path, t) in runs[0].Generator.Parameters.Entries.Concat(runs[0].Discriminator.Parameters.Entries.Select(kv => KeyValuePair.Create("d/" + kv.Key, kv.Value))))
            {
                var other = path.StartsWith("d/", StringComparison.Ordinal) ? r.Discriminator.Parameters[path[2..]] : r.Generator.Parameters[path];
                TorchReference.Close(other, t, 1e-6, 1e-4, path);
            }
    }
}
