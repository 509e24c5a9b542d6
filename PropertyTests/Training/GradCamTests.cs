using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.Training;

public sealed class GradCamTests(ITestOutputHelper output)
{
    private static readonly Lazy<LabeledData> Digits = new(() => MnistNpm.Load(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>simple-convnet after one short epoch on 1,500 real digits (83 % on the 100 held-out digits used here).</summary>
    private static readonly Lazy<(Network Net, Parameters Parameters, LabeledData Test)> Trained = new(() =>
    {
        var split = Digits.Value.Split(1500, seed: 3);
        var net = Zoo.SimpleConvNet();
        var r = Trainer.Fit(net, Initializer.Init(net, 7), split.First, new TrainOptions(1, 50, new Adam(1e-3f), Seed: 7));
        return (net, r.Parameters, split.Second.Batch(0, 100));
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    [Fact]
    public void TheMapOfATrainedSimpleConvNetFallsOnTheStrokesMoreThanOnTheBackground()
    {
        var (net, p, test) = Trained.Value;
        output.WriteLine($"held-out accuracy of the briefly trained network: {Trainer.Evaluate(net, p, test).Accuracy:P0}");
        foreach (var (layer, least) in new[] { ("conv1", 70), ("relu1", 55), ("pool1", 55) })
        {
            var cam = GradCam.Compute(net, p, test.Images, layer);
            Assert.Equal(new Shape(100, 28, 28), cam.Maps.Shape);
            int wins = 0;
            double strokes = 0, background = 0;
            for (int i = 0; i < test.Count; i++)
            {
                var (s, b) = StrokeAndBackground(test.Images.Span.Slice(i * 784, 784), cam.Maps.Span.Slice(i * 784, 784));
                if (s > b) wins++;
                (strokes, background) = (strokes + s / test.Count, background + b / test.Count);
            }
            // Measured: conv1 79/100 (mean map 0.46 on strokes, 0.11 on background), relu1 and pool1 65/100 (0.39-0.43 against 0.25).
            output.WriteLine($"{layer}: mean map on strokes (pixel > 0.5) beats background (pixel = 0) for {wins}/100 digits; means {strokes:F3} vs {background:F3}");
            Assert.True(wins >= least, $"{layer}: the map favours the strokes for only {wins} of 100 digits");
            Assert.True(strokes > background, $"{layer}: mean map on strokes {strokes} <= on background {background}");
        }
    }

    [Fact]
    public void MapsAreInTheUnitRangeAndExplainThePredictedClassByDefault()
    {
        var (net, p, test) = Trained.Value;
        var x = test.Images.Slice(0, 8);
        var cam = GradCam.Compute(net, p, x);
        Assert.Equal("pool1", cam.Layer);
        Assert.Equal(Trainer.ArgMax(Apply.Forward(net, p, x)), cam.Classes);
        Assert.Equal(new Shape(8, 30), cam.Weights.Shape);
        Assert.Equal(new Shape(8, 12, 12), cam.LayerMaps.Shape);
        for (int i = 0; i < 8; i++)
        {
            var m = cam.Maps.Span.Slice(i * 784, 784);
            Assert.Equal(1f, System.Numerics.Tensors.TensorPrimitives.Max(m), 5);
            Assert.Equal(0f, System.Numerics.Tensors.TensorPrimitives.Min(m), 5);
            Assert.Equal(Apply.Forward(net, p, x)[i * 10 + cam.Classes[i]], cam.Scores[i], 4);
        }
        // Another class gives another map.
        var other = GradCam.Compute(net, p, x, "conv1", Enumerable.Range(0, 8).Select(i => (cam.Classes[i] + 1) % 10).ToArray());
        var same = GradCam.Compute(net, p, x, "conv1");
        Assert.False(other.Maps.Span.SequenceEqual(same.Maps.Span));
    }

    [Fact]
    public void TheMapIsTheReluOfTheGradientWeightedSumOfTheChannels()
    {
        // A network whose map can be worked out by hand: conv (2 channels) -> flatten -> dense.
        var net = Network.Create(new Serial(new Conv2d(2, 3, 3, PadH: 1, PadW: 1), new Flatten(), new Dense(3)), new Shape(1, 4, 4));
        var p = Initializer.Init(net, 3);
        var rng = new Random(1);
        var x = Tensor.FromArray(Enumerable.Range(0, 16).Select(_ => (float)rng.NextDouble()).ToArray(), 1, 1, 4, 4);
        var cam = GradCam.Compute(net, p, x, "conv1", [2]);
        // d(score 2)/d(conv output) is row 2 of the dense weight, laid out as [2, 4, 4].
        var w = p["dense1/weight"];
        var a = Apply.Trace(net, p, x).First(kv => kv.Key == "conv1").Value;
        var expected = new float[16];
        for (int c = 0; c < 2; c++)
        {
            float alpha = 0;
            for (int k = 0; k < 16; k++) alpha += w[2 * 32 + c * 16 + k] / 16f;
            Assert.Equal(alpha, cam.Weights[c], 5);
            for (int k = 0; k < 16; k++) expected[k] += alpha * a[c * 16 + k];
        }
        for (int k = 0; k < 16; k++) Assert.Equal(Math.Max(0, expected[k]), cam.LayerMaps[k], 5);
    }

    [Fact]
    public void BilinearUpsamplingMatchesHalfPixelResizing()
    {
        // 2x2 -> 4x4 with half-pixel centres, as OpenCV's resize and PyTorch's interpolate(align_corners=False).
        var up = GradCam.Upsample(Tensor.FromArray([0f, 1f, 2f, 3f], 1, 2, 2), 4, 4);
        float[] row0 = [0f, 0.25f, 0.75f, 1f];
        Assert.Equal(row0, up.Span[..4].ToArray());
        float[] col0 = [0f, 0.5f, 1.5f, 2f];
        Assert.Equal(col0, new[] { up[0], up[4], up[8], up[12] });
        // Same size is the identity; a constant stays constant.
        var m = Tensor.FromArray(Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 1, 3, 4);
        Assert.Equal(m.ToArray(), GradCam.Upsample(m, 3, 4).ToArray());
        Assert.All(GradCam.Upsample(Tensor.Full(new Shape(2, 3, 3), 0.7f), 28, 28).ToArray(), v => Assert.Equal(0.7f, v, 6));
        Assert.All(GradCam.Normalize(Tensor.Full(new Shape(1, 5), 2f)).ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void ALayerWithoutSpatialOutputOrAnUnknownPathIsRejectedWithTheCandidates()
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 1);
        var x = Tensor.Zeros(1, 1, 28, 28);
        Assert.Contains("conv1, relu1, pool1", Assert.Throws<CnnException>(() => GradCam.Compute(net, p, x, "dense1")).Message);
        Assert.Contains("has no layer 'nope'", Assert.Throws<CnnException>(() => GradCam.Compute(net, p, x, "nope")).Message);
    }

    private static (double Strokes, double Background) StrokeAndBackground(ReadOnlySpan<float> image, ReadOnlySpan<float> map)
    {
        double s = 0, b = 0;
        int ns = 0, nb = 0;
        for (int k = 0; k < image.Length; k++)
        {
            if (image[k] > 0.5f) (s, ns) = (s + map[k], ns + 1);
            else if (image[k] == 0f) (b, nb) = (b + map[k], nb + 1);
        }
        return (s / Math.Max(1, ns), b / Math.Max(1, nb));
    }
}
