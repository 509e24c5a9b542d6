using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Xunit;

namespace Cnn.Tests.Training;

public sealed class LearningRateFinderTests
{
    private static readonly Lazy<LabeledData> Digits = new(() => MnistNpm.Load().Split(1000, seed: 1).First, LazyThreadSafetyMode.ExecutionAndPublication);

    private static Network SmallNet() => Network.Create(
        new Serial(new Conv2d(4, 5, 5, 2, 2), new Relu(), new Flatten(), new Dense(10)), new Shape(1, 28, 28));

    [Fact]
    public void TheSweepIsExponentialStopsWhenTheLossDivergesAndLeavesTheWeightsAsTheyWere()
    {
        var net = SmallNet();
        var init = Initializer.Init(net, 1);
        var copy = init.Entries.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        var options = new LearningRateFinderOptions(1e-6f, 1e4f, Steps: 60, BatchSize: 32, Seed: 2);
        var r = LearningRateFinder.Find(net, init, Digits.Value, new Adam(), options);

        // Rates grow by one factor per step from the start.
        Assert.Equal(1e-6f, r.Curve[0].Rate, 1e-12f);
        double factor = Math.Pow(1e4 / 1e-6, 1.0 / 59);
        for (int i = 1; i < r.Curve.Count; i++) Assert.Equal(factor, r.Curve[i].Rate / (double)r.Curve[i - 1].Rate, 3);
        Assert.Equal(Enumerable.Range(1, r.Curve.Count), r.Curve.Select(p => p.Step));
        // Adam at rates up to 1e4 diverges long before the end: the sweep stops once the smoothed loss is 4 x its best.
        Assert.True(r.Diverged);
        Assert.True(r.Curve.Count < 60, $"{r.Curve.Count} steps");
        Assert.True(r.Curve[^1].SmoothedLoss > 4 * r.Curve.Take(r.Curve.Count - 1).Min(p => p.SmoothedLoss));
        // The suggestion lies below the minimum, where the loss still falls; the minimum's tenth is reported too.
        Assert.InRange(r.SuggestedRate, 1e-5f, r.MinimumLossRate);
        Assert.Equal(r.MinimumLossRate / 10, r.MinimumOverTen, 1e-9f);
        Assert.Equal(r.Curve.MinBy(p => p.SmoothedLoss)!.Rate, r.MinimumLossRate);
        // Pure: the parameters passed in are unchanged.
        foreach (var (path, values) in copy) Assert.Equal(values, init[path].ToArray());
        // Deterministic for a seed.
        var again = LearningRateFinder.Find(net, init, Digits.Value, new Adam(), options);
        Assert.Equal(r.Curve, again.Curve);
    }

    [Fact]
    public void TrainingAtTheSuggestedRateLearnsAndBeatsTheSmallestRate()
    {
        var net = SmallNet();
        var init = Initializer.Init(net, 1);
        var data = Digits.Value;
        var r = LearningRateFinder.Find(net, init, data, new Sgd(0.1f, 0.9f), new LearningRateFinderOptions(1e-5f, 10f, Steps: 50, BatchSize: 32, Seed: 1));
        float Loss(float lr) => Trainer.Fit(net, init, data, new TrainOptions(1, 32, new Sgd(lr, 0.9f), Seed: 1)).History[0].TrainLoss;
        float atSuggestion = Loss(r.SuggestedRate), tiny = Loss(1e-5f);
        Assert.True(atSuggestion < 0.8f * tiny, $"loss at the suggestion {r.SuggestedRate}: {atSuggestion}; at 1e-5: {tiny}");
    }

    [Fact]
    public void TheSuggestionIsTheSteepestDescentBeforeTheMinimum()
    {
        // Smoothed losses over rates 1e-4 .. 1e2 (one decade a point): flat, falling (steepest around 1e-1), minimum at 10, rising.
        float[] losses = [2.3f, 2.25f, 2.0f, 1.2f, 0.8f, 0.7f, 3f];
        var curve = losses.Select((l, i) => new LearningRatePoint(i + 1, MathF.Pow(10, i - 4), l, l)).ToList();
        var (suggested, atMin) = LearningRateFinder.Suggest(curve);
        Assert.Equal(10f, atMin, 1e-5f);
        Assert.Equal(0.1f, suggested, 1e-6f);
        // Too few points before the minimum: a tenth of the minimum's rate.
        Assert.Equal((1e-5f, 1e-4f), LearningRateFinder.Suggest([new LearningRatePoint(1, 1e-4f, 1, 1), new LearningRatePoint(2, 1e-3f, 2, 2)]));
    }

    [Fact]
    public void BadOptionsAreRejected()
    {
        var net = SmallNet();
        var p = Initializer.Init(net, 1);
        var data = Digits.Value;
        Assert.Throws<CnnException>(() => LearningRateFinder.Find(net, p, data, new Adam(), new LearningRateFinderOptions(StartRate: 1f, EndRate: 0.1f)));
        Assert.Throws<CnnException>(() => LearningRateFinder.Find(net, p, data, new Adam(), new LearningRateFinderOptions(Steps: 1)));
        Assert.Throws<CnnException>(() => LearningRateFinder.Find(net, p, data, new Adam(), new LearningRateFinderOptions(Smoothing: 1f)));
        Assert.Throws<CnnException>(() => LearningRateFinder.Find(net, p, data, new Adam(), new LearningRateFinderOptions(DivergeFactor: 1f)));
        var wrong = new LabeledData(Tensor.Zeros(4, 1, 8, 8), [0, 1, 2, 3], 10);
        Assert.Throws<ShapeException>(() => LearningRateFinder.Find(net, p, wrong, new Adam()));
    }
}
