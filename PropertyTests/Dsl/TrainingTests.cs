using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Xunit;

namespace Cnn.Tests.Dsl;

public class TrainingTests
{
    private static readonly Lazy<LabeledData> Digits = new(() => MnistNpm.Load());

    [Fact]
    public void SimpleConvNetLearnsRealDigitsInOneShortEpoch()
    {
        var split = Digits.Value.Split(1500, seed: 3);
        var heldOut = split.Second.Take(Enumerable.Range(0, 500).ToArray());
        var net = Zoo.SimpleConvNet();
        var init = Initializer.Init(net, 7);
        var before = Trainer.Evaluate(net, init, heldOut);
        var result = Trainer.Fit(net, init, split.First, new TrainOptions(1, 50, new Adam(1e-3f), Seed: 7));
        var after = Trainer.Evaluate(net, result.Parameters, heldOut);
        // Chance is 10 %; 1,500 real digits and 30 Adam steps reach well above 80 % (about 88 % measured).
        Assert.True(before.Accuracy < 0.3f, $"untrained accuracy {before.Accuracy}");
        Assert.True(after.Accuracy > 0.8f, $"held-out accuracy after one epoch {after.Accuracy}");
        Assert.True(after.Loss < before.Loss, $"loss {before.Loss} -> {after.Loss}");
    }

    /// <summary>
    /// The mobile networks learn the digits: the mean training loss of a second short epoch is below the first's (16 Adam
    /// steps each on 512 digits; chance is ln 10, about 2.3).
    /// </summary>
    [Theory]
    [InlineData("mobilenet-mini")]
    [InlineData("efficientnet-mini")]
    public void MobileZooNetworksLearnTheDigits(string name)
    {
        var net = Zoo.ByName(name);
        var data = Digits.Value.Take(Enumerable.Range(0, 512).ToArray());
        var result = Trainer.Fit(net, Initializer.Init(net, 3), data, new TrainOptions(2, 32, new Adam(3e-3f), Seed: 5));
        var losses = result.History.Select(e => e.TrainLoss).ToArray();
        Assert.True(losses[1] < losses[0] && losses[1] < 2.2f, $"{name}: epoch losses {string.Join(", ", losses)}");
    }

    [Fact]
    public void TrainingIsBitwiseReproducibleForTheSameSeed()
    {
        var data = Digits.Value.Take(Enumerable.Range(0, 300).ToArray());
        var net = Zoo.SimpleConvNet();
        Parameters Run() => Trainer.Fit(net, Initializer.Init(net, 5), data, new TrainOptions(1, 32, new Sgd(0.05f, 0.9f), Seed: 11)).Parameters;
        var a = Run();
        var b = Run();
        Assert.Equal(a.Paths, b.Paths);
        foreach (var path in a.Paths) Assert.True(a[path].Span.SequenceEqual(b[path].Span), $"{path} differs between two runs");
        var c = Trainer.Fit(net, Initializer.Init(net, 5), data, new TrainOptions(1, 32, new Sgd(0.05f, 0.9f), Seed: 12)).Parameters;
        Assert.False(a["dense2/weight"].Span.SequenceEqual(c["dense2/weight"].Span), "another shuffling seed must change the result");
    }

    [Fact]
    public void DataOfTheWrongShapeOrClassCountIsRejectedBeforeTraining()
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 0);
        var opts = new TrainOptions(1, 8, new Sgd(0.1f));
        var wrongShape = new LabeledData(Tensor.Zeros(4, 1, 32, 32), new[] { 0, 1, 2, 3 }, 10);
        Assert.Contains("[1, 28, 28]", Assert.Throws<ShapeException>(() => Trainer.Fit(net, p, wrongShape, opts)).Message);
        var wrongClasses = new LabeledData(Tensor.Zeros(4, 1, 28, 28), new[] { 0, 1, 2, 3 }, 5);
        Assert.Contains("5 classes", Assert.Throws<CnnException>(() => Trainer.Fit(net, p, wrongClasses, opts)).Message);
    }

    [Fact]
    public void ALabelOutOfRangeIsRejectedWithItsRow()
    {
        var e = Assert.Throws<CnnException>(() => new LabeledData(Tensor.Zeros(3, 1, 28, 28), new[] { 0, 10, 2 }, 10));
        Assert.Contains("10", e.Message);
    }

    [Fact]
    public void ANaNInTheInputStopsTrainingWithTheStep()
    {
        var pixels = new float[4 * 28 * 28];
        pixels[3 * 784 + 100] = float.NaN;
        var data = new LabeledData(Tensor.FromArray(pixels, 4, 1, 28, 28), new[] { 0, 1, 2, 3 }, 10);
        var net = Zoo.SimpleConvNet();
        var e = Assert.Throws<CnnException>(() =>
            Trainer.Fit(net, Initializer.Init(net, 0), data, new TrainOptions(1, 4, new Sgd(0.1f))));
        Assert.Contains("step 1", e.Message);
        Assert.Contains("NaN", e.Message);
    }
}
