using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Dsl;

public class CombinatorTests
{
    private static Tensor Random(Shape shape, int seed)
    {
        var rng = new Random(seed);
        return Tensor.FromArray(Enumerable.Range(0, shape.Size).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), shape);
    }

    /// <summary>Shape-preserving blocks on a [C, H, W] input with C channels.</summary>
    private static Gen<Layer> Block(int channels) => Gen.OneOf(
        Gen.Choose(1, 2).Select(k => (Layer)new Conv2d(channels, 2 * k + 1, 2 * k + 1, PadH: k, PadW: k)),
        Gen.Constant((Layer)new Relu()),
        Gen.Constant((Layer)new Tanh()),
        Gen.Constant((Layer)new Serial(new Conv2d(channels, 1, 1), new Sigmoid())));

    [CnnProperty]
    public Property SerialWithIdentityIsTheLayerItself() =>
        Prop.ForAll((from c in Gen.Choose(1, 3) from b in Block(c) from seed in Gen.Choose(0, 999) select (c, b, seed)).ToArbitrary(), t =>
        {
            var input = new Shape(t.c, 5, 4);
            var alone = Network.Create(new Serial(t.b.Named("f")), input);
            var withId = Network.Create(new Serial(t.b.Named("f"), new Identity()), input);
            var p = Initializer.Init(alone, t.seed);
            var x = Random(input.PrependBatch(2), t.seed);
            return Apply.Forward(alone, p, x).Span.SequenceEqual(Apply.Forward(withId, p, x).Span);
        });

    [CnnProperty]
    public Property ResidualIsTheBlockPlusItsInputAndItsGradientFlowsThroughBoth() =>
        Prop.ForAll((from c in Gen.Choose(1, 3) from b in Block(c) from seed in Gen.Choose(0, 999) select (c, b, seed)).ToArbitrary(), t =>
        {
            var input = new Shape(t.c, 4, 4);
            var block = Network.Create(t.b.Named("block"), input);
            var res = Network.Create(new Residual(t.b), input);
            var p = Initializer.Init(res, t.seed);
            var x = Random(input.PrependBatch(3), t.seed + 1);
            var fb = Apply.WithPullback(block, p, x);
            var fr = Apply.WithPullback(res, p, x);
            bool sum = Enumerable.Range(0, x.Size).All(i => fr.Output[i] == fb.Output[i] + x[i]);
            var dy = Random(fr.Output.Shape, t.seed + 2);
            var gb = fb.Pullback(dy);
            var gr = fr.Pullback(dy);
            bool dx = Enumerable.Range(0, x.Size).All(i => MathF.Abs(gr.Input[i] - (gb.Input[i] + dy[i])) <= 1e-6f * (1 + MathF.Abs(dy[i])));
            bool dp = gb.Parameters.Paths.SequenceEqual(gr.Parameters.Paths)
                && gb.Parameters.Paths.All(k => gb.Parameters[k].Span.SequenceEqual(gr.Parameters[k].Span));
            return sum.Label("y = block(x) + x").And(dx.Label("dx = dblock + dy")).And(dp.Label("parameter gradients equal"));
        });

    [Fact]
    public void ConcatJoinsBranchesAlongChannelsInOrder()
    {
        var input = new Shape(2, 3, 3);
        var net = Network.Create(FanOut.Concat(new Identity(), new Conv2d(3, 1, 1).Named("proj")), input);
        Assert.Equal(new Shape(5, 3, 3), net.OutputShape);
        var p = Initializer.Init(net, 1);
        var x = Random(input.PrependBatch(2), 4);
        var y = Apply.Forward(net, p, x);
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < 18; i++)
                Assert.Equal(x[n * 18 + i], y[n * 45 + i]);
    }

    [Fact]
    public void BranchesThatDisagreeNameTheirPathsAndShapes()
    {
        var e = Assert.Throws<ShapeException>(() =>
            Network.Create(FanOut.Sum(new Conv2d(4, 3, 3).Named("a"), new Identity().Named("b")).Named("join"), new Shape(4, 8, 8)));
        Assert.Contains("'join'", e.Message);
        Assert.Contains("'join/a' [4, 6, 6]", e.Message);
        Assert.Contains("'join/b' [4, 8, 8]", e.Message);
    }

    [Fact]
    public void FrozenLayersGetNoGradientAndDoNotChangeInTraining()
    {
        var data = new Cnn.Dsl.Data.LabeledData(Random(new Shape(16, 1, 8, 8), 1), Enumerable.Range(0, 16).Select(i => i % 3).ToArray(), 3);
        var net = Network.Create(new Serial(new Freeze(new Conv2d(4, 3, 3).Named("features")), new Relu(), new Flatten(), new Dense(3).Named("head")), new Shape(1, 8, 8));
        var p = Initializer.Init(net, 2);
        var g = Loss.SoftmaxCrossEntropy(net, p, data.Images, data.Labels.ToArray());
        Assert.Equal(new[] { "head/bias", "head/weight" }, g.Gradients.Paths);
        var trained = Trainer.Fit(net, p, data, new TrainOptions(2, 4, new Adam(0.01f))).Parameters;
        Assert.True(trained["features/weight"].Span.SequenceEqual(p["features/weight"].Span));
        Assert.False(trained["head/weight"].Span.SequenceEqual(p["head/weight"].Span));
        var t = Summary.Totals(net);
        Assert.Equal(4 * 9 + 4, t.NonTrainable);
        Assert.Equal(4 * 36 * 3 + 3, t.Trainable);
    }

    [Fact]
    public void BatchNormUpdatesItsRunningStatisticsOnlyInTrainingAndNeedsItsState()
    {
        var net = Network.Create(new Serial(new Conv2d(3, 1, 1), new BatchNorm(Momentum: 0.5f).Named("bn")), new Shape(2, 4, 4));
        var p = Initializer.Init(net, 3);
        var s0 = Initializer.InitState(net);
        Assert.Equal(new[] { "bn/running_mean", "bn/running_var" }, s0.Paths);
        var x = Random(new Shape(5, 2, 4, 4), 9);
        var eval = Apply.WithPullback(net, p, x, Mode.Eval, s0);
        Assert.Same(s0["bn/running_mean"], eval.State["bn/running_mean"]);
        var train = Apply.WithPullback(net, p, x, Mode.Train, s0);
        Assert.False(train.State["bn/running_mean"].Span.SequenceEqual(s0["bn/running_mean"].Span));
        // In training the output is normalised per channel: mean 0 over batch and positions (γ = 1, β = 0).
        for (int c = 0; c < 3; c++)
        {
            double mean = 0;
            for (int n = 0; n < 5; n++) for (int i = 0; i < 16; i++) mean += train.Output[n * 48 + c * 16 + i];
            Assert.True(Math.Abs(mean / 80) < 1e-5, $"channel {c} mean {mean / 80}");
        }
        Assert.Contains("InitState", Assert.Throws<CnnException>(() => Apply.Forward(net, p, x)).Message);
    }

    [Fact]
    public void DropoutIsTheIdentityInInferenceAndSeededInTraining()
    {
        var net = Network.Create(new Serial(new Dropout(0.5f)), new Shape(100));
        var x = Tensor.Full(new Shape(4, 100), 1f);
        Assert.True(Apply.Forward(net, Parameters.Empty, x).Span.SequenceEqual(x.Span));
        var a = Apply.Forward(net, Parameters.Empty, x, Mode.Train, seed: 5);
        var b = Apply.Forward(net, Parameters.Empty, x, Mode.Train, seed: 5);
        var c = Apply.Forward(net, Parameters.Empty, x, Mode.Train, seed: 6);
        Assert.True(a.Span.SequenceEqual(b.Span));
        Assert.False(a.Span.SequenceEqual(c.Span));
        Assert.All(a.ToArray(), v => Assert.True(v == 0f || v == 2f));
    }
}
