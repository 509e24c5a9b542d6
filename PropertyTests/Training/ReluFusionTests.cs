using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Training;

/// <summary>
/// The apply interpreter runs a layer and the ReLU after it as one rule where it can: a training-mode batch norm (the
/// kernel's fused write-out and masked pullback), a convolution (rectified strip by strip as it is written) and a residual
/// sum (rectified block by block as it adds). A network
/// where an <see cref="Identity"/> separates each pair runs them as two layers: both must give the same bits for the
/// output, the state, the input gradient and every parameter gradient, and the fused one must keep fewer arrays (the
/// ReLU's output and gradient are not made), which shows that it did fuse.
/// </summary>
public sealed class ReluFusionTests
{
    public static Arbitrary<(int N, int C, int H, int W, int Seed, bool Train)> Cases() =>
        (from n in Gen.Choose(1, 4)
         from c in Gen.Choose(1, 5)
         from h in Gen.Choose(1, 9)
         from w in Gen.Choose(1, 9)
         where n * h * w >= 2
         from seed in Gen.Choose(0, 1_000_000)
         from train in Gen.Elements(true, true, false)
         select (n, c, h, w, seed, train)).ToArbitrary();

    /// <summary>
    /// conv, batch norm, ReLU; conv, ReLU; conv, batch norm, ReLU; a residual block (conv plus identity), ReLU; dense.
    /// With <paramref name="separate"/>, an Identity before each ReLU.
    /// </summary>
    private static Network Net(int c, int h, int w, bool separate)
    {
        Layer[] Pair(string name, Layer layer) => separate
            ? new[] { layer.Named(name), new Identity().Named(name + "_id"), new Relu().Named(name + "_relu") }
            : new[] { layer.Named(name), new Relu().Named(name + "_relu") };
        Layer Conv(int filters) => new Conv2d(filters, 3, 3, PadH: 1, PadW: 1);
        var layers = new List<Layer> { Conv(3).Named("a") };
        layers.AddRange(Pair("a_bn", new BatchNorm()));
        layers.AddRange(Pair("c", Conv(2)));
        layers.Add(Conv(4).Named("b"));
        layers.AddRange(Pair("b_bn", new BatchNorm()));
        layers.AddRange(Pair("res", new Residual(Conv(4))));
        layers.Add(new Flatten());
        layers.Add(new Dense(5).Named("fc"));
        return Network.Create(new Serial(layers.ToArray()), new Shape(c, h, w));
    }

    private static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    [CnnProperty(Arbitrary = new[] { typeof(ReluFusionTests) })]
    public void Fused_layers_and_relu_give_the_bits_of_the_two_layers((int N, int C, int H, int W, int Seed, bool Train) c)
    {
        var fused = Net(c.C, c.H, c.W, separate: false);
        var separate = Net(c.C, c.H, c.W, separate: true);
        var p = Initializer.Init(fused, c.Seed);
        var state = Initializer.InitState(fused);
        var rng = new Random(c.Seed);
        var x = Tensor.FromArray(Enumerable.Range(0, c.N * c.C * c.H * c.W).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray(), c.N, c.C, c.H, c.W);
        var dy = Tensor.FromArray(Enumerable.Range(0, c.N * 5).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray(), c.N, 5);

        (ForwardResult Forward, Pulled Pulled, long Retained) Run(Network net)
        {
            var arena = new TensorArena(minimumLength: 1);
            using var scope = arena.Activate();
            var f = Apply.WithPullback(net, p, x, c.Train ? Mode.Train : Mode.Eval, state, c.Seed);
            var g = f.Pullback(dy);
            // The arena is never recycled, so the tensors it gave stay valid for the comparison.
            return (f, g, arena.RetainedBytes);
        }
        var (a, ga, retainedFused) = Run(fused);
        var (b, gb, retainedSeparate) = Run(separate);

        Assert.Equal(Bits(b.Output), Bits(a.Output));
        Assert.Equal(b.State.Paths, a.State.Paths);
        foreach (var path in a.State.Paths) Assert.Equal(Bits(b.State[path]), Bits(a.State[path]));
        Assert.Equal(Bits(gb.Input), Bits(ga.Input));
        Assert.Equal(gb.Parameters.Paths, ga.Parameters.Paths);
        foreach (var path in ga.Parameters.Paths) Assert.Equal(Bits(gb.Parameters[path]), Bits(ga.Parameters[path]));
        Assert.True(retainedFused < retainedSeparate, $"the fused pass kept {retainedFused} bytes, the separate one {retainedSeparate}: no fusion?");
    }

    [Fact]
    public void A_tap_on_the_batch_norm_sees_its_own_output_before_the_relu()
    {
        // A tap (Grad-CAM, LayerGradients) needs the batch norm's output itself, so the pair is not fused under it.
        var net = Net(2, 5, 5, separate: false);
        var p = Initializer.Init(net, 3);
        var state = Initializer.InitState(net);
        var rng = new Random(3);
        var x = Tensor.FromArray(Enumerable.Range(0, 4 * 2 * 25).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray(), 4, 2, 5, 5);
        var g = LayerGradients.Compute(net, p, x, "a_bn", LayerGradients.ClassScore(new[] { 0, 1, 2, 3 }), Mode.Train, state);
        Assert.Contains(g.Activation.ToArray(), v => v < 0f);
        var trace = Apply.Trace(net, p, x, Mode.Train, state);
        Assert.Equal(Bits(trace.First(kv => kv.Key == "a_bn").Value), Bits(g.Activation));
    }
}
