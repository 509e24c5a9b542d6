using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Xunit;

namespace Cnn.Tests.Data;

/// <summary>The real files of Debian's dataset-fashion-mnist (installed by .ci/run), loaded once per test run.</summary>
internal static class RealFashionMnist
{
    private static readonly Lazy<ByteImageSplit> Data = new(() => FashionMnist.Load(), LazyThreadSafetyMode.ExecutionAndPublication);

    public static ByteImageSplit Value => Data.Value;
}

public sealed class FashionMnistTests
{
    [Fact]
    public void LoadsSixtyThousandTrainingAndTenThousandTestImagesAsBytes()
    {
        var (train, test) = (RealFashionMnist.Value.Train, RealFashionMnist.Value.Test);
        Assert.Equal(FashionMnist.TrainCount, train.Count);
        Assert.Equal(FashionMnist.TestCount, test.Count);
        Assert.Equal(new Shape(1, 28, 28), train.SampleShape);
        Assert.Equal(60_000 * 784, train.Pixels.Length);
        // The data set is balanced: 6,000 training and 1,000 test images of each class.
        Assert.All(train.Labels.CountBy(l => l), kv => Assert.Equal(6_000, kv.Value));
        Assert.All(test.Labels.CountBy(l => l), kv => Assert.Equal(1_000, kv.Value));
        // Fashion-MNIST's published training mean and deviation are 0.2860 and 0.3530.
        var n = train.FitNormalization();
        Assert.Equal(0.2860, n.Mean[0], 3);
        Assert.Equal(0.3530, n.Std[0], 3);
    }

    [Fact]
    public void TheClassesAreNamedInLabelOrder()
    {
        Assert.Equal(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"], FashionMnist.ClassNames);
        Assert.Equal(FashionMnist.Classes, RealFashionMnist.Value.Train.Classes);
    }

    [Fact]
    public void ALimitReadsOnlyTheFirstExamples()
    {
        var some = FashionMnist.Load(limit: 100);
        Assert.Equal((100, 100), (some.Train.Count, some.Test.Count));
        Assert.True(RealFashionMnist.Value.Train.Pixels[..(100 * 784)].SequenceEqual(some.Train.Pixels));
        Assert.Equal(RealFashionMnist.Value.Test.Labels.Take(100), some.Test.Labels);
    }

    [Fact]
    public void MissingFilesAreNamedWithHowToInstallThem()
    {
        var dir = Directory.CreateTempSubdirectory("no-fashion");
        try
        {
            var e = Assert.Throws<CnnException>(() => FashionMnist.Load(dir.FullName));
            Assert.Contains(dir.FullName, e.Message);
            Assert.Contains("apt-get install dataset-fashion-mnist", e.Message);
            Assert.Contains("train-images-idx3-ubyte.gz", e.Message);
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void AFewHundredStepsOnTheRealImagesLearnFarBeyondChance()
    {
        // 300 steps of 64 augmented, normalised images through the batch pipeline with a small network; chance is 10 %.
        var (train, test) = (RealFashionMnist.Value.Train.Batch(0, 19_200), RealFashionMnist.Value.Test.Batch(0, 2_000));
        var net = Network.Create(new Serial(
            new Conv2d(16, 3, 3, PadH: 1, PadW: 1, UseBias: false), new BatchNorm(), new Relu(), new MaxPool2d(2, 2, 2, 2),
            new Conv2d(32, 3, 3, PadH: 1, PadW: 1, UseBias: false), new BatchNorm(), new Relu(), new MaxPool2d(2, 2, 2, 2),
            new Flatten(), new Dense(10)), new Shape(1, 28, 28));
        var norm = train.FitNormalization();
        var options = new TrainOptions(1, 64, new Adam(3e-3f), Seed: 1, Schedule: Schedule.OneCycle())
        {
            Pipeline = new PipelineOptions(new AugmentOptions(FlipHorizontal: true, MaxShift: 2), norm, Threads: 2),
        };
        var result = Trainer.Fit(net, Initializer.Init(net, 1), train, options, validation: test);
        var epoch = Assert.Single(result.History);
        Assert.True(epoch.Validation!.Accuracy > 0.75f, $"test accuracy {epoch.Validation.Accuracy:P1} after 300 steps");
        Assert.Equal(epoch.Validation, Trainer.Evaluate(net, result.Parameters, test, 256, result.State, normalize: norm));
    }
}
