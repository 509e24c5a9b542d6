using Cnn.Dsl;
using Cnn.Dsl.Data;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.Training;

/// <summary>
/// The issue's comparison on the real digits (8,000 to train, 2,000 held out, split by seed 1; lenet5 initialised with
/// seed 1; batches of 100). Measured with the commands in the README ("Learning-rate finder and one-cycle"): the
/// finder suggests 0.0102; one-cycle with that maximum reaches 96 % held-out accuracy at epoch 4 of a 5-epoch schedule
/// (96.00 %) and at epoch 5 of a 6-epoch one (96.20 %, then 96.35 %), where Adam at a constant 1e-3 first reaches it at
/// epoch 12 (96.05 %). LeNet-5 tops out near 96-96.5 % on 8,000 digits, so whether a given run crosses 96 % one epoch
/// earlier or later depends on the last digit of the rate: that run takes minutes and is documented, not tested.
/// What CI checks is the robust part of the claim, in two epochs each: the finder's rate with one-cycle is far ahead
/// of Adam at 1e-3 (measured 94.40 % against 90.00 %).
/// </summary>
[Trait("Category", "Slow")]
public sealed class OneCycleComparisonTests(ITestOutputHelper output)
{
    [Fact]
    public void TheFindersRateWithOneCycleTrainsLeNet5FasterThanAdamAt1e3()
    {
        var split = MnistNpm.Load().Split(8000, seed: 1);
        var net = Zoo.LeNet5();
        var init = Initializer.Init(net, 1);
        var found = LearningRateFinder.Find(net, init, split.First, new Adam(), new LearningRateFinderOptions(BatchSize: 100, Seed: 1));
        output.WriteLine($"suggested rate {found.SuggestedRate:G3} (minimum at {found.MinimumLossRate:G3}, {found.Curve.Count} steps)");
        Assert.InRange(found.SuggestedRate, 3e-3f, 3e-2f);

        const int Epochs = 2;
        IReadOnlyList<float> Accuracies(TrainOptions options) =>
            Trainer.Fit(net, init, split.First, options, split.Second).History.Select(e => e.Validation!.Accuracy).ToList();
        var oneCycle = Accuracies(new TrainOptions(Epochs, 100, new Adam(found.SuggestedRate), Seed: 1, Schedule: Schedule.OneCycle()));
        var adam = Accuracies(new TrainOptions(Epochs, 100, new Adam(1e-3f), Seed: 1));
        output.WriteLine($"one-cycle: {string.Join(", ", oneCycle.Select(a => a.ToString("P2")))}");
        output.WriteLine($"adam 1e-3: {string.Join(", ", adam.Select(a => a.ToString("P2")))}");
        Assert.True(oneCycle[^1] >= 0.93f, $"one-cycle reached only {oneCycle[^1]:P2} in {Epochs} epochs");
        Assert.True(oneCycle[^1] >= adam[^1] + 0.02f, $"one-cycle {oneCycle[^1]:P2} is not clearly ahead of Adam at 1e-3 {adam[^1]:P2}");
    }
}
