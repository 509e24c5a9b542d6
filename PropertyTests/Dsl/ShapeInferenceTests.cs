using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Dsl;

public class ShapeInferenceTests
{
    /// <summary>Random stacks of conv/pool/relu layers on random input sizes, ending in flatten and dense.</summary>
    private static Gen<(Layer Layer, Shape Input)> Stacks() =>
        from c in Gen.Choose(1, 3)
        from h in Gen.Choose(1, 14)
        from w in Gen.Choose(1, 14)
        from count in Gen.Choose(1, 4)
        from layers in Gen.ArrayOf(LayerGen(), count)
        from units in Gen.Choose(1, 6)
        select ((Layer)new Serial(layers.Append(new Flatten()).Append(new Dense(units))), new Shape(c, h, w));

    private static Gen<Layer> LayerGen() => Gen.OneOf(
        from f in Gen.Choose(1, 4)
        from kh in Gen.Choose(1, 4)
        from kw in Gen.Choose(1, 4)
        from s in Gen.Choose(1, 3)
        from p in Gen.Choose(0, 2)
        select (Layer)new Conv2d(f, kh, kw, s, s, p, p),
        from k in Gen.Choose(1, 3)
        from s in Gen.Choose(1, 3)
        select (Layer)new MaxPool2d(k, k, s, s),
        Gen.Constant((Layer)new Relu()));

    [Property(MaxTest = 200)]
    public Property InferredShapeIsTheShapeOfTheOutput() =>
        Prop.ForAll(Stacks().ToArbitrary(), t =>
        {
            Network net;
            try { net = Network.Create(t.Layer, t.Input); }
            catch (ShapeException e)
            {
                // A rejected stack must be one whose window really does not fit somewhere: the message says where.
                return e.Message.Contains("Layer '", StringComparison.Ordinal).Label("rejection names a layer: " + e.Message);
            }
            var x = Tensor.Full(t.Input.PrependBatch(2), 0.5f);
            var y = Apply.Forward(net, Initializer.Init(net, 1), x);
            return (y.Shape == net.OutputShape.PrependBatch(2)).Label($"inferred {net.OutputShape}, ran {y.Shape}");
        });

    [Fact]
    public void SimpleConvNetShapesAndParameterCountMatchTheTextbook()
    {
        var net = Zoo.SimpleConvNet();
        var shapes = net.Leaves.Select(n => n.Output.ToString()).ToArray();
        Assert.Equal(new[] { "[30, 24, 24]", "[30, 24, 24]", "[30, 12, 12]", "[4320]", "[100]", "[100]", "[10]" }, shapes);
        // conv 30*1*5*5 + 30, dense 4320*100 + 100, dense 100*10 + 10
        Assert.Equal(30 * 25 + 30 + 4320 * 100 + 100 + 100 * 10 + 10, Summary.ParameterCount(net));
        Assert.Equal(new[] { "conv1/bias", "conv1/weight", "dense1/bias", "dense1/weight", "dense2/bias", "dense2/weight" },
            Initializer.Init(net, 0).Paths);
    }

    [Fact]
    public void AKernelLargerThanItsInputNamesThePathShapesAndFormula()
    {
        var e = Assert.Throws<ShapeException>(() =>
            Network.Create(new Serial(new Relu(), new Conv2d(4, 5, 5).Named("stem")), new Shape(1, 3, 3)));
        Assert.Contains("'stem'", e.Message);
        Assert.Contains("[1, 3, 3]", e.Message);
        Assert.Contains("(3 + 2*0 - 1*(5-1) - 1) / 1 + 1", e.Message);
    }

    [Fact]
    public void StrictModeRejectsAWindowThatDoesNotTileWhileTheDefaultFloors()
    {
        var layer = new Serial(new MaxPool2d(2, 2, 2, 2));
        Assert.Equal(new Shape(1, 2, 2), Network.Create(layer, new Shape(1, 5, 5)).OutputShape);
        var e = Assert.Throws<ShapeException>(() => Network.Create(layer, new Shape(1, 5, 5), strict: true));
        Assert.Contains("remainder 1", e.Message);
    }

    [Fact]
    public void DenseOnAnImageAsksForFlatten()
    {
        var e = Assert.Throws<ShapeException>(() => Network.Create(new Serial(new Dense(3)), new Shape(1, 4, 4)));
        Assert.Contains("Flatten", e.Message);
    }

    [Fact]
    public void DuplicateNamesAreRejected()
    {
        var e = Assert.Throws<ShapeException>(() =>
            Network.Create(new Serial(new Relu().Named("a"), new Relu().Named("a")), new Shape(3)));
        Assert.Contains("'a'", e.Message);
    }

    [Fact]
    public void ABatchOfTheWrongShapeIsRejectedBeforeAnyKernelRuns()
    {
        var net = Zoo.SimpleConvNet();
        var e = Assert.Throws<ShapeException>(() => Apply.Forward(net, Initializer.Init(net, 0), Tensor.Zeros(4, 1, 32, 32)));
        Assert.Contains("[N, 1, 28, 28]", e.Message);
        Assert.Contains("[4, 1, 32, 32]", e.Message);
    }
}
