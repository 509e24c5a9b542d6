using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Xunit;

namespace Cnn.Tests.Data;

public sealed class BatchPipelineTests
{
    /// <summary>53 random 1x8x8 byte images in 3 classes: batches of 10 leave a last batch of 3.</summary>
    internal static ByteImageSet Images(int count = 53, int seed = 5)
    {
        var rng = new Random(seed);
        var pixels = new byte[count * 64];
        rng.NextBytes(pixels);
        return new ByteImageSet(pixels, new Shape(1, 8, 8), Enumerable.Range(0, count).Select(i => rng.Next(3)).ToArray(), 3);
    }

    private static readonly PipelineOptions Augmented = new(new AugmentOptions(FlipHorizontal: true, MaxShift: 2), new Normalization([0.5f], [0.25f]));

    /// <summary>Every batch of the run, as (epoch, index, the images' bits, the labels).</summary>
    private static List<(int Epoch, int Index, float[] X, int[] Y)> Drain(ByteImageSet data, int seed, PipelineOptions options, int epochs = 3,
        int firstEpoch = 1, int firstBatch = 0)
    {
        using var pipeline = new BatchPipeline(data, 10, seed, options, epochs, firstEpoch, firstBatch);
        var all = new List<(int, int, float[], int[])>();
        int total = (epochs - firstEpoch + 1) * pipeline.BatchesPerEpoch - firstBatch;
        for (int i = 0; i < total; i++)
        {
            var b = pipeline.Next();
            all.Add((b.Epoch, b.Index, b.Images.ToArray(), b.Labels.ToArray()));
        }
        Assert.Throws<CnnException>(() => pipeline.Next());
        return all;
    }

    private static void AssertSame(IReadOnlyList<(int Epoch, int Index, float[] X, int[] Y)> a, IReadOnlyList<(int Epoch, int Index, float[] X, int[] Y)> b)
    {
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal((a[i].Epoch, a[i].Index), (b[i].Epoch, b[i].Index));
            Assert.Equal(a[i].Y, b[i].Y);
            // Bitwise: compare the floats' bits, so that -0 and 0 or two NaNs are not taken as equal.
            Assert.Equal(a[i].X.Select(BitConverter.SingleToInt32Bits), b[i].X.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public void TheSameSeedGivesBitwiseTheSameBatchesWithOneOrTwoThreadsAndAnyPrefetch()
    {
        var data = Images();
        var reference = Drain(data, 7, Augmented with { Threads = 1, Prefetch = 1 });
        Assert.Equal(18, reference.Count);
        Assert.Equal(3, reference[5].Y.Length); // the last batch of an epoch holds what is left
        AssertSame(reference, Drain(data, 7, Augmented with { Threads = 1, Prefetch = 4 }));
        for (int run = 0; run < 3; run++) AssertSame(reference, Drain(data, 7, Augmented with { Threads = 2, Prefetch = 3 }));
        // ... and the seed matters: another seed orders and augments differently.
        var other = Drain(data, 8, Augmented);
        Assert.NotEqual(reference[0].X, other[0].X);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(1, 4)]
    [InlineData(2, 0)]
    [InlineData(3, 5)]
    public void APipelineStartedAtABatchPositionGivesTheBatchesOfAnUninterruptedOne(int epoch, int batch)
    {
        var data = Images();
        var whole = Drain(data, 11, Augmented with { Threads = 2 });
        var resumed = Drain(data, 11, Augmented with { Threads = 2 }, firstEpoch: epoch, firstBatch: batch);
        AssertSame(whole.Skip((epoch - 1) * 6 + batch).ToList(), resumed);
    }

    [Fact]
    public void EachEpochIsAPermutationAndWithoutAugmentationTheBatchesAreTheBytesOver255()
    {
        var data = Images();
        var batches = Drain(data, 3, PipelineOptions.Default, epochs: 2);
        var order = Trainer.EpochOrder(data.Count, 3, 2);
        var second = batches.Where(b => b.Epoch == 2).SelectMany(b => b.X).ToArray();
        var expected = order.SelectMany(r => data.Sample(r).ToArray().Select(k => k / 255f)).ToArray();
        Assert.Equal(expected, second);
        Assert.Equal(order.Select(r => data.Labels[r]), batches.Where(b => b.Epoch == 2).SelectMany(b => b.Y));
    }

    [Fact]
    public void CancellingStopsTheThreadsAndNextSaysSo()
    {
        using var cts = new CancellationTokenSource();
        using var pipeline = new BatchPipeline(Images(), 10, 1, Augmented with { Threads = 2 }, epochs: 1000, cancellation: cts.Token);
        pipeline.Next();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => { for (int i = 0; i < 10; i++) pipeline.Next(); });
    }

    [Fact]
    public void OptionsThatDoNotFitTheImagesAreRejected()
    {
        Assert.Throws<CnnException>(() => new BatchPipeline(Images(), 10, 1, new PipelineOptions(Threads: 0)));
        Assert.Throws<CnnException>(() => new BatchPipeline(Images(), 10, 1, new PipelineOptions(Normalize: new Normalization([0f, 0f], [1f, 1f]))));
        Assert.Throws<CnnException>(() => new BatchPipeline(Images(), 0, 1));
    }

    internal static Network SmallNet() => Network.Create(new Serial(
        new Conv2d(4, 3, 3, PadH: 1, PadW: 1), new BatchNorm(), new Relu(), new Dropout(0.2f), new Flatten(), new Dense(3)), new Shape(1, 8, 8));

    [Fact]
    public void TrainingOnBytesIsBitwiseTrainingOnTheirFloats()
    {
        // The pipeline replaced the training loop's own gather: on the same data, the results are what they were.
        var data = Images();
        var net = SmallNet();
        var init = Initializer.Init(net, 2);
        var options = new TrainOptions(2, 10, new Adam(0.01f), Seed: 4);
        var onBytes = Trainer.Fit(net, init, data, options, validation: Images(20, 6));
        var onFloats = Trainer.Fit(net, init, data.ToLabeledData(), options, validation: Images(20, 6).ToLabeledData());
        foreach (var (path, t) in onFloats.Parameters.Entries) Assert.Equal(t.ToArray(), onBytes.Parameters[path].ToArray());
        Assert.Equal(onFloats.History.Select(h => (h.TrainLoss, h.Validation)), onBytes.History.Select(h => (h.TrainLoss, h.Validation)));
    }

    private sealed class CancelAt(int epoch, int batch, CancellationTokenSource cts) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value)
        {
            if (value.Epoch == epoch && value.Batch == batch) cts.Cancel();
        }
    }

    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 5)]
    public void AnAugmentedRunResumedMidEpochEndsBitwiseEqualToAnUninterruptedOne(int epoch, int batch)
    {
        var data = Images();
        var net = SmallNet();
        var init = Initializer.Init(net, 2);
        var options = new TrainOptions(3, 10, new Sgd(0.05f, 0.9f), Seed: 4, Schedule: Schedule.OneCycle()) { Pipeline = Augmented with { Threads = 2 } };
        var whole = Trainer.Fit(net, init, data, options);
        using var cts = new CancellationTokenSource();
        var stopped = Trainer.Fit(net, init, data, options, progress: new CancelAt(epoch, batch, cts), cancellation: cts.Token);
        Assert.Equal((epoch, batch), (stopped.Checkpoint.Epoch, stopped.Checkpoint.Batch));
        var resumed = Trainer.Fit(net, init, data, options with { Pipeline = Augmented with { Threads = 1 } }, resume: stopped.Checkpoint);
        foreach (var (path, t) in whole.Parameters.Entries) Assert.Equal(t.ToArray(), resumed.Parameters[path].ToArray());
        foreach (var (path, t) in whole.State.Entries) Assert.Equal(t.ToArray(), resumed.State[path].ToArray());
    }

    [Fact]
    public void EachEpochReportsTheTimeItsStepsWaitedForData()
    {
        var stats = Trainer.Fit(SmallNet(), Initializer.Init(SmallNet(), 1), Images(), new TrainOptions(2, 10, new Adam(0.01f)) { Pipeline = Augmented }).History;
        Assert.All(stats, s =>
        {
            Assert.True(s.TrainingElapsed > TimeSpan.Zero && s.TrainingElapsed <= s.Elapsed, $"{s.TrainingElapsed} of {s.Elapsed}");
            Assert.InRange(s.DataWait, TimeSpan.Zero, s.TrainingElapsed);
            Assert.InRange(s.DataWaitFraction, 0, 1);
        });
    }

    [Fact]
    public void ByteImagesConvertAndFitTheirNormalisationAsTheirFloatsDo()
    {
        var data = Images();
        Assert.Equal(Normalization.Fit(data.ToLabeledData().Images), data.FitNormalization());
        Assert.Equal(new Shape(53, 1, 8, 8), data.ToLabeledData().Images.Shape);
        Assert.Equal(data.Pixels[64 * 3 + 5] / 255f, data.ToLabeledData().Images[64 * 3 + 5]);
        Assert.Throws<CnnException>(() => new ByteImageSet(new byte[10], new Shape(1, 2, 2), [0, 1], 2));
        Assert.Throws<CnnException>(() => new ByteImageSet(new byte[8], new Shape(1, 2, 2), [0, 2], 2));
    }
}
