using Cnn.Core;
using Cnn.Dsl;
using Xunit;

namespace Cnn.Tests.Dsl;

public class ZooTests
{
    /// <summary>Parameter counts published for these architectures (torchvision, the Keras example, the LeNet-5 paper's layer sizes).</summary>
    [Theory]
    [InlineData("simple-convnet", 433_890)]
    [InlineData("lenet5", 61_706)]
    [InlineData("alexnet", 60_965_224)]
    [InlineData("vgg16", 138_357_544)]
    [InlineData("resnet18", 11_689_512)]
    [InlineData("keras-cifar", 1_250_858)]
    public void ParameterCountsMatchThePublishedFigures(string name, long count) =>
        Assert.Equal(count, Summary.ParameterCount(Zoo.ByName(name)));

    [Theory]
    [InlineData("alexnet", new[] { 1000 })]
    [InlineData("vgg16", new[] { 1000 })]
    [InlineData("googlenet", new[] { 1000 })]
    [InlineData("resnet18", new[] { 1000 })]
    [InlineData("dcgan-generator", new[] { 3, 64, 64 })]
    public void LargeNetworksInferTheirOutputShapes(string name, int[] output) =>
        Assert.Equal(new Shape(output), Zoo.ByName(name).OutputShape);

    [Fact]
    public void GoogLeNetsInceptionModulesConcatenateTheirBranches()
    {
        var net = Zoo.GoogLeNet();
        var channels = net.RootNode.Children.Where(n => n.Path.StartsWith("inception", StringComparison.Ordinal)).Select(n => n.Output[0]).ToArray();
        Assert.Equal(new[] { 256, 480, 512, 512, 512, 528, 832, 832, 1024 }, channels);
    }

    [Theory]
    [InlineData("simple-convnet")]
    [InlineData("lenet5")]
    [InlineData("keras-cifar")]
    [InlineData("vgg-small")]
    [InlineData("dcgan-generator")]
    [InlineData("conv1d-signal")]
    [InlineData("conv3d-volume")]
    [InlineData("resnet18")]
    public void EveryZooNetworkRunsForwardAndBackwardWithTheInferredShapes(string name)
    {
        var net = Zoo.ByName(name);
        var p = Initializer.Init(net, 1);
        var state = Initializer.InitState(net);
        var rng = new Random(2);
        var x = Tensor.FromArray(Enumerable.Range(0, 2 * net.InputShape.Size).Select(_ => (float)rng.NextDouble()).ToArray(), net.InputShape.PrependBatch(2));
        var f = Apply.WithPullback(net, p, x, Mode.Train, state, seed: 3);
        Assert.Equal(net.OutputShape.PrependBatch(2), f.Output.Shape);
        var g = f.Pullback(Tensor.Full(f.Output.Shape, 0.01f));
        Assert.Equal(x.Shape, g.Input.Shape);
        Assert.Equal(p.Paths, g.Parameters.Paths);
        foreach (var path in p.Paths) Assert.Equal(p[path].Shape, g.Parameters[path].Shape);
        Assert.All(f.Output.ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void InitialisersDrawWithTheirStatedSpreadAndPerPathStreams()
    {
        var layer = new Serial(new Dense(400).Named("a"), new Dense(300).Named("b"));
        var net = Network.Create(layer, new Shape(500));
        var glorot = Initializer.Init(net, 1, Init.GlorotUniform)["b/weight"].ToArray();
        double bound = Math.Sqrt(6.0 / (400 + 300));
        Assert.All(glorot, v => Assert.True(Math.Abs(v) <= bound));
        Assert.True(glorot.Max() > 0.95 * bound && glorot.Min() < -0.95 * bound);
        var he = Initializer.Init(net, 1, Init.HeNormal)["b/weight"].ToArray();
        double std = Math.Sqrt(he.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.97 * Math.Sqrt(2.0 / 400), 1.03 * Math.Sqrt(2.0 / 400));
        Assert.All(Initializer.Init(net, 1, Init.HeNormal)["b/bias"].ToArray(), v => Assert.Equal(0f, v));
        // Per-layer choice overrides the default, and adding a layer leaves the others' values as they were.
        var mixed = Network.Create(new Serial(new Dense(400).Named("a"), new Dense(300).Named("b").InitWith(Init.Zeros)), new Shape(500));
        Assert.All(Initializer.Init(mixed, 1)["b/weight"].ToArray(), v => Assert.Equal(0f, v));
        var grown = Network.Create(new Serial(new Dense(400).Named("a"), new Relu(), new Dense(300).Named("b"), new Dense(7).Named("c")), new Shape(500));
        Assert.True(Initializer.Init(grown, 1)["a/weight"].Span.SequenceEqual(Initializer.Init(net, 1)["a/weight"].Span));
    }
}
