using Cnn.Core;
using Cnn.Dsl;
using Xunit;

namespace Cnn.Tests.Training;

public sealed class LayerGradientsTests
{
    private static Tensor Random(int seed, params int[] dims)
    {
        var rng = new Random(seed);
        var shape = new Shape(dims);
        return Tensor.FromArray(Enumerable.Range(0, shape.Size).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), shape);
    }

    [Theory]
    [InlineData("conv1", 6)]
    [InlineData("relu1", 5)]
    [InlineData("pool1", 4)]
    [InlineData("dense1", 2)]
    public void TheGradientAtALayerIsThePullbackOfTheRestOfTheNetwork(string layer, int rest)
    {
        // simple-convnet cut after `layer`: the layers after it, as a network of their own, have the same paths.
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 4);
        var x = Random(1, 3, 1, 28, 28);
        int[] classes = [3, 0, 7];
        var g = LayerGradients.Compute(net, p, x, layer, LayerGradients.ClassScore(classes));
        Assert.Equal(Apply.Forward(net, p, x).ToArray(), g.Output.ToArray());
        Assert.Equal(Apply.Trace(net, p, x).First(kv => kv.Key == layer).Value.ToArray(), g.Activation.ToArray());

        var leaves = net.Leaves.ToList();
        int at = leaves.FindIndex(l => l.Path == layer);
        Assert.Equal(leaves.Count - rest - 1, at);
        var tail = Network.Create(new Serial(leaves.Skip(at + 1).Select(l => l.Layer.Named(l.Path)).ToArray()), leaves[at].Output);
        var fwd = Apply.WithPullback(tail, p, g.Activation);
        var expected = fwd.Pullback(LayerGradients.ClassScore(classes)(fwd.Output)).Input;
        Assert.Equal(expected.Shape, g.Gradient.Shape);
        Assert.Equal(expected.ToArray(), g.Gradient.ToArray());
    }

    [Fact]
    public void TheLastLayersGradientIsTheOutputGradientAndNestedPathsWork()
    {
        var net = Network.Create(new Serial(
            new Serial(new Conv2d(3, 3, 3), new Relu()).Named("block"),
            new Residual(new Conv2d(3, 3, 3, PadH: 1, PadW: 1)).Named("res"),
            new Flatten(), new Dense(4)), new Shape(2, 6, 6));
        var p = Initializer.Init(net, 2);
        var x = Random(3, 2, 2, 6, 6);
        var dy = Random(4, 2, 4);
        var last = LayerGradients.Compute(net, p, x, "dense1", _ => dy);
        Assert.Equal(dy.ToArray(), last.Gradient.ToArray());

        // A combinator's output: the gradient reaching block equals the input gradient of the residual's pullback.
        var block = LayerGradients.Compute(net, p, x, "block", _ => dy);
        var inner = LayerGradients.Compute(net, p, x, "block/relu1", _ => dy);
        Assert.Equal(new Shape(2, 3, 4, 4), block.Gradient.Shape);
        Assert.Equal(block.Gradient.ToArray(), inner.Gradient.ToArray());
        Assert.Equal(block.Activation.ToArray(), inner.Activation.ToArray());
        Assert.Contains("no layer 'block/conv9'", Assert.Throws<CnnException>(() => LayerGradients.Compute(net, p, x, "block/conv9", _ => dy)).Message);
    }
}
