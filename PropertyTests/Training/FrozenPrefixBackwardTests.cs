using Cnn.Core;
using Cnn.Dsl;
using Cnn.Tests.Onnx;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Training;

/// <summary>
/// A training step stops its pullback where no earlier layer has a trainable parameter (a frozen prefix gets none): the
/// step must be bit for bit the one made from the full pullback of <see cref="Apply.WithPullback"/>, on networks with
/// batch norm, residual sums, concatenating and multiplying fan-outs and auxiliary heads, whatever subtrees are frozen.
/// </summary>
public sealed class FrozenPrefixBackwardTests
{
    private static readonly Shape Small = new(3, 16, 16);

    private static readonly Func<Network>[] Networks =
    {
        () => Zoo.ResNetMini(Small),
        () => Zoo.InceptionMiniAux(Small),
        () => Zoo.EfficientNetMini(Small),
        () => Zoo.MobileNetMini(Small),
    };

    public static Arbitrary<(int Net, int Seed, int[] Frozen)> Cases() =>
        (from net in Gen.Choose(0, Networks.Length - 1)
         from seed in Gen.Choose(0, 1_000_000)
         // Indices into the network's nodes (any depth); duplicates and misses are harmless, none means a full step.
         from frozen in Gen.ArrayOf(Gen.Choose(0, 200)).Select(a => a.Take(4).ToArray())
         select (net, seed, frozen)).ToArbitrary();

    private static IEnumerable<Node> Nodes(Node n) => n.Children.SelectMany(Nodes).Prepend(n);

    [Property(MaxTest = 24, Arbitrary = new[] { typeof(FrozenPrefixBackwardTests) })]
    public void A_step_is_bitwise_the_step_of_the_full_pullback((int Net, int Seed, int[] Frozen) c)
    {
        var whole = Networks[c.Net]();
        // The root and the head stay trainable so that something trains; a node inside the head may still be frozen.
        var candidates = Nodes(whole.RootNode).Where(n => n.Path.Length > 0 && n.Path != "fc" && n.Leaves().Any(l => l.ParameterSpecs().Any())).ToList();
        var paths = c.Frozen.Where(i => i < candidates.Count).Select(i => candidates[i].Path).Distinct().ToList();
        var net = Transfer.Freeze(whole, paths);
        var p = Initializer.Init(net, c.Seed);
        var state = Initializer.InitState(net);
        var x = OnnxTestSupport.RandomBatch(Small, 3, c.Seed);
        int[] labels = { c.Seed % 10, (c.Seed + 3) % 10, (c.Seed + 7) % 10 };
        var sgd = new Sgd(0.1f, 0.9f);
        var optimizerState = sgd.Init(p);

        var step = Trainer.Step(net, p, state, sgd, optimizerState, x, labels, seed: c.Seed);

        var full = Apply.WithPullback(net, p, x, Mode.Train, state, c.Seed);
        var loss = TotalLoss.Of(full, LossFunction.SoftmaxCrossEntropy, labels);
        var gradients = full.Pullback(loss.Main.Gradient, loss.HeadGradients).Parameters;
        var expected = sgd.Step(p, gradients, optimizerState);
        var frozen = net.RootNode.Leaves().Where(l => l.Frozen).SelectMany(l => l.ParameterSpecs()).Select(s => s.Path).ToHashSet();
        Assert.Equal(expected.Parameters.Paths, step.Parameters.Paths);
        foreach (var path in p.Paths)
        {
            Assert.True(expected.Parameters[path].Span.SequenceEqual(step.Parameters[path].Span), $"{path} differs from the full pullback's step (frozen: {string.Join(", ", paths)})");
            if (frozen.Contains(path)) Assert.True(p[path].Span.SequenceEqual(step.Parameters[path].Span), $"frozen {path} changed");
        }
        foreach (var path in state.Paths)
            Assert.True(full.State[path].Span.SequenceEqual(step.State[path].Span), $"state {path} differs");
        Assert.Equal(loss.Value, step.Loss);
    }

    [Fact]
    public void A_trainable_stem_before_a_frozen_middle_still_gets_its_gradient()
    {
        // The pullback must run through frozen layers that have a trainable layer before them.
        var whole = Zoo.ResNetMini(Small);
        var net = Transfer.Freeze(whole, new[] { "block1", "block2" });
        var p = Initializer.Init(net, 3);
        var state = Initializer.InitState(net);
        var x = OnnxTestSupport.RandomBatch(Small, 2, 3);
        var sgd = new Sgd(0.1f);

        var step = Trainer.Step(net, p, state, sgd, sgd.Init(p), x, new[] { 1, 4 });

        Assert.False(p["conv1/weight"].Span.SequenceEqual(step.Parameters["conv1/weight"].Span), "the stem did not train");
        Assert.True(p["block1/res1/block/conv1/weight"].Span.SequenceEqual(step.Parameters["block1/res1/block/conv1/weight"].Span), "a frozen block changed");
    }
}
