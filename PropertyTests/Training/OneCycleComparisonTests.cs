using Cnn.Dsl;
using Cnn.Dsl.Data;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.Training;

/// <summary>
/// The issue's comparison on the real digits (8,000 to train, 2,000 held out, split by seed 1, lenet5 initialised
/// with seed 1, batches of 100): the learning-rate finder's suggestion as the maximum of a one-cycle schedule reaches
/// 96 % held-out accuracy in fewer epochs than plain Adam at 1e-3. Measured with `cnn` (see the README): the suggestion
/// is 0.0102; one-cycle over 6 epochs reaches 96.20 % at epoch 5 (over 5 epochs: 96.00 % at epoch 4); Adam at 1e-3
/// first reaches 96.05 % at epoch 12, and is at 94.55 % after 6. The test runs the 6-epoch one-cycle schedule and 6
/// epochs of Adam.
/// </summary>
[Trait("Category", "Slow")]
public sealed class OneCycleComparisonTests(ITestOutputHelper output)
{
    [Fact]
    public void TheFindersRateWithOneCycleReaches96PercentOnLeNet5InFewerEpochsThanAdamAt1e3()
    {
        var split = MnistNpm.Load().Split(8000, seed: 1);
        var net = Zoo.LeNet5();
        var init = Initializer.Init(net, 1);
        var found = LearningRateFinder.Find(net, init, split.First, new Adam(), new LearningRateFinderOptions(BatchSize: 100, Seed: 1));
        output.WriteLine($"suggested rate {found.SuggestedRate:G3} (minimum at {found.MinimumLossRate:G3})");
        Assert.InRange(found.SuggestedRate, 3e-3f, 3e-2f);

        const int Epochs = 6;
        IReadOnlyList<float> Accuracies(TrainOptions options) =>
            Trainer.Fit(net, init, split.First, options, split.Second).History.Select(e => e.Validation!.Accuracy).ToList();
        var oneCycle = Accuracies(new TrainOptions(Epochs, 100, new Adam(found.SuggestedRate), Seed: 1, Schedule: Schedule.OneCycle()));
        var adam = Accuracies(new TrainOptions(Epochs, 100, new Adam(1e-3f), Seed: 1));
        output.WriteLine($"one-cycle: {string.Join(", ", oneCycle.Select(a => a.ToString("P2")))}");
        output.WriteLine($"adam 1e-3: {string.Join(", ", adam.Select(a => a.ToString("P2")))}");
        int reached = oneCycle.ToList().FindIndex(a => a >= 0.96f) + 1;
        Assert.True(reached is > 0 and <= Epochs, "one-cycle did not reach 96 %");
        Assert.True(adam.All(a => a < 0.96f), $"Adam at 1e-3 reached 96 % within {Epochs} epochs");
    }
}
