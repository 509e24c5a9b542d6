using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Xunit;

namespace Cnn.Tests.Dsl;

public class ResumeTests
{
    /// <summary>Reports synchronously, so a test can cancel at an exact batch (Progress&lt;T&gt; posts asynchronously).</summary>
    private sealed class CancelAt(int epoch, int batch, CancellationTokenSource cts) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value)
        {
            if (value.Epoch == epoch && value.Batch == batch) cts.Cancel();
        }
    }

    private static (Network, LabeledData) Setup()
    {
        var rng = new Random(4);
        var images = Tensor.FromArray(Enumerable.Range(0, 40 * 2 * 6 * 6).Select(_ => (float)rng.NextDouble()).ToArray(), 40, 2, 6, 6);
        var data = new LabeledData(images, Enumerable.Range(0, 40).Select(i => i % 4).ToArray(), 4);
        var net = Network.Create(new Serial(
            new Conv2d(4, 3, 3, PadH: 1, PadW: 1), new BatchNorm(), new Relu(), new Dropout(0.3f),
            new Flatten(), new Dense(4)), new Shape(2, 6, 6));
        return (net, data);
    }

    [Theory]
    [InlineData(1, 3)]
    [InlineData(2, 1)]
    [InlineData(2, 5)]
    public void ACancelledRunResumedFromItsSavedCheckpointEndsBitwiseEqualToAnUninterruptedRun(int epoch, int batch)
    {
        var (net, data) = Setup();
        var options = new TrainOptions(3, 7, new Adam(0.01f), Seed: 9);
        var init = Initializer.Init(net, 1);
        var full = Trainer.Fit(net, init, data, options);

        using var cts = new CancellationTokenSource();
        var cut = Trainer.Fit(net, init, data, options, progress: new CancelAt(epoch, batch, cts), cancellation: cts.Token);
        Assert.Equal(batch == 6 ? epoch + 1 : epoch, cut.Checkpoint.Epoch);
        var path = Path.Combine(Directory.CreateTempSubdirectory("cnn-resume-").FullName, "ckpt.safetensors");
        Checkpoint.Save(path, cut.Checkpoint);
        var resumed = Trainer.Fit(net, Initializer.Init(net, 999), data, options, resume: Checkpoint.Load(path));

        foreach (var p in full.Parameters.Paths)
            Assert.True(full.Parameters[p].Span.SequenceEqual(resumed.Parameters[p].Span), $"parameter {p} differs after resuming at epoch {epoch}, batch {batch}");
        foreach (var s in full.State.Paths)
            Assert.True(full.State[s].Span.SequenceEqual(resumed.State[s].Span), $"state {s} differs");
        Assert.Equal(full.OptimizerState.Step, resumed.OptimizerState.Step);
    }

    [Fact]
    public void ACheckpointRoundTripsEveryTensorAndItsPosition()
    {
        var (net, data) = Setup();
        var r = Trainer.Fit(net, Initializer.Init(net, 1), data, new TrainOptions(1, 8, new Sgd(0.1f, 0.9f)));
        var ck = r.Checkpoint with { Metadata = new Dictionary<string, string> { ["network"] = "test" } };
        var path = Path.Combine(Directory.CreateTempSubdirectory("cnn-ckpt-").FullName, "c.safetensors");
        Checkpoint.Save(path, ck);
        var back = Checkpoint.Load(path);
        Assert.Equal((ck.Epoch, ck.Batch, ck.Step), (back.Epoch, back.Batch, back.Step));
        Assert.Equal("test", back.Metadata["network"]);
        Assert.Equal(ck.OptimizerState.Slots.Keys, back.OptimizerState.Slots.Keys);
        foreach (var p in ck.Parameters.Paths) Assert.True(ck.Parameters[p].Span.SequenceEqual(back.Parameters[p].Span));
        foreach (var p in ck.State.Paths) Assert.True(ck.State[p].Span.SequenceEqual(back.State[p].Span));
        var v = ck.OptimizerState.Slots["velocity"];
        foreach (var p in v.Paths) Assert.True(v[p].Span.SequenceEqual(back.OptimizerState.Slots["velocity"][p].Span));
    }

    [Fact]
    public void ANonFiniteLossNamesTheFirstLayerWhereItAppeared()
    {
        var net = Network.Create(new Serial(new Dense(3).Named("a"), new Relu(), new Dense(2).Named("b")), new Shape(4));
        var p = Initializer.Init(net, 1);
        p = p.With("b/weight", Tensor.Full(p["b/weight"].Shape, float.PositiveInfinity));
        var data = new LabeledData(Tensor.Full(new Shape(4, 4), 1f), new[] { 0, 1, 0, 1 }, 2);
        var e = Assert.Throws<CnnException>(() => Trainer.Fit(net, p, data, new TrainOptions(1, 4, new Sgd(0.1f))));
        Assert.Contains("layer 'b'", e.Message);
        Assert.Contains("step 1", e.Message);
    }
}
