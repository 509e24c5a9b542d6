using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Xunit;

namespace Cnn.Tests.Dsl;

public class CallbackTests
{
    private static (Network, LabeledData, LabeledData) Setup()
    {
        var rng = new Random(8);
        LabeledData Make(int n) => new(
            Tensor.FromArray(Enumerable.Range(0, n * 16).Select(_ => (float)rng.NextDouble()).ToArray(), n, 16),
            Enumerable.Range(0, n).Select(i => i % 2).ToArray(), 2);
        var net = Network.Create(new Serial(new Dense(8), new Relu(), new Dense(2)), new Shape(16));
        return (net, Make(32), Make(16));
    }

    private static string TempDir() => Directory.CreateTempSubdirectory("cnn-cb-").FullName;

    [Fact]
    public void EarlyStoppingStopsAfterPatienceAndRestoresTheBestEpoch()
    {
        var (net, train, val) = Setup();
        var losses = new List<float>();
        var seen = new List<Parameters>();
        // A learning rate this high makes validation loss rise after the first epochs (memorising noise labels).
        var options = new TrainOptions(30, 4, new Sgd(0.5f), Callbacks: new[]
        {
            Callback.Custom(c => { losses.Add(c.Metric("val_loss")); seen.Add(c.Parameters); return CallbackDecision.Continue; }),
            Callback.EarlyStopping("val_loss", patience: 2, restoreBest: true),
        });
        var r = Trainer.Fit(net, Initializer.Init(net, 1), train, options, validation: val);
        int best = losses.IndexOf(losses.Min());
        Assert.True(r.History.Count < 30, "stopped early");
        Assert.Equal(best + 3, r.History.Count);
        Assert.True(r.Parameters["dense1/weight"].Span.SequenceEqual(seen[best]["dense1/weight"].Span), "restored the best epoch's parameters");
    }

    [Fact]
    public void ReduceOnPlateauCutsTheRateAndTheScheduleIsFollowed()
    {
        var (net, train, val) = Setup();
        var rates = new List<float>();
        var options = new TrainOptions(8, 8, new Sgd(0.4f), Schedule: Schedule.StepDecay(2, 0.5f), Callbacks: new[]
        {
            Callback.Custom(c => { rates.Add(c.LearningRate); return CallbackDecision.Continue; }),
        });
        Trainer.Fit(net, Initializer.Init(net, 1), train, options, validation: val);
        Assert.Equal(new[] { 0.4f, 0.4f, 0.2f, 0.2f, 0.1f, 0.1f, 0.05f, 0.05f }, rates);

        rates.Clear();
        var plateau = options with
        {
            Schedule = null,
            Callbacks = new[]
            {
                Callback.Custom(c => { rates.Add(c.LearningRate); return CallbackDecision.Continue; }),
                Callback.Custom(c => c.Stats.Epoch == 3 ? new CallbackDecision(LearningRateScale: 0.1f) : CallbackDecision.Continue),
            },
        };
        Trainer.Fit(net, Initializer.Init(net, 1), train, plateau, validation: val);
        Assert.Equal(0.4f, rates[2]);
        Assert.Equal(0.04f, rates[3], 6);
    }

    [Fact]
    public void SchedulesFollowTheirFormulas()
    {
        Assert.Equal(0.1f / (1 + 0.01f * 9), Schedule.KerasDecay(0.01f).Rate(0.1f, 10, 1, 5, 4), 6);
        Assert.Equal(0.1f * 0.9f * 0.9f, Schedule.Exponential(0.9f).Rate(0.1f, 10, 3, 5, 4), 6);
        var oc = Schedule.OneCycle(0.25f, 25f, 1e4f);
        var curve = Enumerable.Range(1, 100).Select(s => oc.Rate(1f, s, 1, 100, 1)).ToArray();
        Assert.Equal(1f / 25, curve[0], 5);
        Assert.Equal(1f, curve.Max(), 3);
        Assert.InRange(Array.IndexOf(curve, curve.Max()), 23, 26);
        Assert.True(curve[^1] < 1e-4f);
        // Momentum mirrors the rate: high when the rate is low, lowest at the rate's peak.
        var moms = Enumerable.Range(1, 100).Select(s => oc.Momentum(s, 100, 1)!.Value).ToArray();
        Assert.Equal(0.95f, moms[0], 5);
        Assert.Equal(0.85f, moms[Array.IndexOf(curve, curve.Max())], 3);
        Assert.Equal(0.95f, moms[^1], 3);
        Assert.Null(Schedule.Constant.Momentum(1, 10, 1));
        Assert.Equal(0.9f, ((Adam)new Adam().WithMomentum(0.9f)).Beta1);
        Assert.Equal(0.8f, ((Sgd)new Sgd(0.1f, 0.5f).WithMomentum(0.8f)).Momentum);
        Assert.Equal(0f, ((Sgd)new Sgd(0.1f).WithMomentum(0.8f)).Momentum);
    }

    [Fact]
    public void LinearDecayHoldsTheRateThenFallsInEqualStepsOverTheLastFraction()
    {
        // 40 steps, the last quarter decaying: steps 1 to 31 at the base rate, then 0.9, 0.8, ... 0.1 of it.
        var rates = Enumerable.Range(1, 40).Select(s => Schedule.LinearDecay(0.25).Rate(0.2f, s, (s - 1) / 10 + 1, 10, 4)).ToArray();
        Assert.All(rates[..31], r => Assert.Equal(0.2f, r));
        for (int k = 31; k < 40; k++) Assert.Equal(0.2 * (40 - k) / 10, rates[k], 6);
        var whole = Schedule.LinearDecay(1);
        Assert.Equal(0.2f, whole.Rate(0.2f, 1, 1, 10, 4));
        Assert.Equal(0.2 * 0.5, whole.Rate(0.2f, 21, 3, 10, 4), 6);
        Assert.Null(whole.Momentum(5, 10, 4));
        Assert.Equal(Schedule.LinearDecay(0.4), Schedule.LinearDecay(0.4));
        foreach (var bad in new[] { 0, -0.1, 1.5, double.NaN })
            Assert.Contains("above 0 and at most 1", Assert.Throws<CnnException>(() => Schedule.LinearDecay(bad)).Message);
    }

    [Fact]
    public void WeightDecayAddsLambdaTimesTheWeightToTheGradient()
    {
        var p = Parameters.Of(new[] { KeyValuePair.Create("w", Tensor.FromArray(new[] { 2f, -4f }, 2)) });
        var g = Parameters.Of(new[] { KeyValuePair.Create("w", Tensor.FromArray(new[] { 1f, 1f }, 2)) });
        var opt = new Sgd(0.1f) { WeightDecay = 0.5f };
        var next = opt.Step(p, g, opt.Init(p)).Parameters["w"].ToArray();
        Assert.Equal(new[] { 2f - 0.1f * (1 + 1f), -4f - 0.1f * (1 - 2f) }, next);
    }

    [Fact]
    public void SaveBestOnlyNeverOverwritesABetterCheckpointEvenAcrossRuns()
    {
        var (net, train, val) = Setup();
        var dir = TempDir();
        var path = Path.Combine(dir, "best.safetensors");
        var options = new TrainOptions(4, 8, new Adam(0.01f), Callbacks: new[] { Callback.ModelCheckpoint(path, "val_loss", saveBestOnly: true) });
        Trainer.Fit(net, Initializer.Init(net, 1), train, options, validation: val);
        var first = Checkpoint.Load(path);
        float best = float.Parse(first.Metadata["best_metric"], System.Globalization.CultureInfo.InvariantCulture);
        // A second run that starts from a much worse point must not replace the file.
        var bad = Initializer.Init(net, 2).With("dense2/bias", Tensor.FromArray(new[] { 20f, -20f }, 2));
        Trainer.Fit(net, bad, train, options with { Optimizer = new Sgd(1e-6f) }, validation: val);
        var after = Checkpoint.Load(path);
        Assert.Equal(first.Metadata["best_metric"], after.Metadata["best_metric"]);
        Assert.True(after.Parameters["dense1/weight"].Span.SequenceEqual(first.Parameters["dense1/weight"].Span));
        Assert.True(best < 5f);
    }

    [Fact]
    public void KeepLastDeletesOlderCheckpointsAndTheCsvLoggerWritesOneRowPerEpoch()
    {
        var (net, train, val) = Setup();
        var dir = TempDir();
        var csv = Path.Combine(dir, "metrics.csv");
        var options = new TrainOptions(5, 8, new Adam(0.01f), Callbacks: new[]
        {
            Callback.ModelCheckpoint(Path.Combine(dir, "ckpt-{epoch}-{val_loss}.safetensors"), keepLast: 2),
            Callback.CsvLogger(csv),
        });
        Trainer.Fit(net, Initializer.Init(net, 1), train, options, validation: val);
        var files = Directory.GetFiles(dir, "ckpt-*.safetensors").Select(Path.GetFileName).OrderBy(f => f).ToArray();
        Assert.Equal(2, files.Length);
        Assert.StartsWith("ckpt-004-", files[0]);
        Assert.StartsWith("ckpt-005-", files[1]);
        var lines = File.ReadAllLines(csv);
        Assert.Equal("epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds", lines[0]);
        Assert.Equal(6, lines.Length);
        Assert.StartsWith("5,", lines[5]);
    }
}
