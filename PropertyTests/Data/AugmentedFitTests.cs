using Cnn.Dsl;
using Cnn.Dsl.Data;
using Xunit;

namespace Cnn.Tests.Data;

/// <summary>Augmentation inside <c>Trainer.Fit</c> for every kind of data, drawn afresh each epoch.</summary>
public sealed class AugmentedFitTests
{
    private static readonly PipelineOptions Everything = new(
        new AugmentOptions(FlipHorizontal: true, MaxShift: 1, MaxRotationDegrees: 10)
        {
            FlipVertical = true, MaxShiftFraction = 0.1f, ZoomRange = 0.2f, MaxShearDegrees = 10, Brightness = 0.3f, Contrast = 0.3f, Fill = FillMode.Reflect,
            Erasing = RandomErasing.Default,
        },
        new Normalization([0.5f], [0.25f]), Threads: 2);

    [Fact]
    public void FloatDataTrainsWithTheSameAugmentedBatchesAsItsBytes()
    {
        var bytes = BatchPipelineTests.Images(30);
        var net = BatchPipelineTests.SmallNet();
        var init = Initializer.Init(net, 2);
        var options = new TrainOptions(2, 10, new Sgd(0.05f, 0.9f), Seed: 3) { Pipeline = Everything };
        var onBytes = Trainer.Fit(net, init, bytes, options);
        var onFloats = Trainer.Fit(net, init, bytes.ToLabeledData(), options);
        var plain = Trainer.Fit(net, init, bytes.ToLabeledData(), options with { Pipeline = Everything with { Augment = null } });
        foreach (var (path, t) in onBytes.Parameters.Entries) Assert.Equal(t.ToArray(), onFloats.Parameters[path].ToArray());
        Assert.Contains(onBytes.Parameters.Entries, e => !e.Value.Span.SequenceEqual(plain.Parameters[e.Key].Span));
    }

    [Fact]
    public void EachEpochDrawsItsOwnAugmentationOfEveryExample()
    {
        var data = BatchPipelineTests.Images(20).ToLabeledData();
        const int Seed = 5, Epochs = 3;
        using var pipeline = new BatchPipeline(data, 20, Seed, Everything with { Augment = Everything.Augment! with { Erasing = null } }, Epochs);
        int size = 64;
        var seen = new float[Epochs][][];
        for (int e = 0; e < Epochs; e++)
        {
            var batch = pipeline.Next();
            var order = Trainer.EpochOrder(20, Seed, e + 1);
            seen[e] = new float[20][];
            for (int i = 0; i < 20; i++) seen[e][order[i]] = batch.Images.Span.Slice(i * size, size).ToArray();
        }
        // Every example comes out differently in each epoch (the draws are continuous: equal twice has probability 0).
        for (int k = 0; k < 20; k++)
        {
            Assert.False(seen[0][k].SequenceEqual(seen[1][k]), $"example {k}, epochs 1 and 2");
            Assert.False(seen[1][k].SequenceEqual(seen[2][k]), $"example {k}, epochs 2 and 3");
        }
    }
}
