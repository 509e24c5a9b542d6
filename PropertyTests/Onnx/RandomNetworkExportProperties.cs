using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using static Cnn.Tests.Onnx.OnnxTestSupport;

namespace Cnn.Tests.Onnx;

/// <summary>A random small network, with the seed of its parameters and input, and whether ONNX Runtime optimises the graph.</summary>
public sealed record NetworkCase(Network Network, int Seed, int Batch, bool Optimize)
{
    public override string ToString() => $"{Describe(Network)}; seed {Seed}, batch {Batch}, optimise {Optimize}";
}

/// <summary>
/// Generates valid networks by construction: each layer's kernel, stride and padding are drawn knowing the
/// shape that reaches it, so no case is thrown away, and non-square, strided and padded windows are common.
/// </summary>
public static class NetworkCases
{
    public static Arbitrary<NetworkCase> Cases() => Arb.From(Case);

    public static Gen<NetworkCase> Case { get; } =
        from c in Gen.Choose(1, 3)
        from h in Gen.Choose(1, 10)
        from w in Gen.Choose(1, 10)
        from body in Body(new Shape(c, h, w))
        from seed in Gen.Choose(0, int.MaxValue - 1)
        from batch in Gen.Choose(1, 4)
        from optimize in Gen.Elements(false, true)
        select new NetworkCase(Network.Create(new Serial(body), new Shape(c, h, w)), seed, batch, optimize);

    /// <summary>Up to three spatial blocks (some wrapped in a nested Serial), then maybe Flatten and up to two Dense layers.</summary>
    private static Gen<Layer[]> Body(Shape input) =>
        from blockCount in Gen.Choose(0, 3)
        from spatial in Blocks(input, blockCount)
        from head in Gen.Frequency((1, Gen.Constant(Array.Empty<Layer>())), (3, Head(spatial.Shape.Size)))
        where spatial.Layers.Length + head.Length > 0
        select spatial.Layers.Concat(head).ToArray();

    private static Gen<(Layer[] Layers, Shape Shape)> Blocks(Shape input, int count)
    {
        if (count == 0) return Gen.Constant((Array.Empty<Layer>(), input));
        return from block in Block(input)
               from wrap in Gen.Elements(false, true)
               from rest in Blocks(block.Shape, count - 1)
               select (Prepend(wrap ? new Layer[] { new Serial(block.Layers) } : block.Layers, rest.Layers), rest.Shape);
    }

    /// <summary>A convolution or a pooling, maybe followed by a Relu, maybe followed by a pooling.</summary>
    private static Gen<(Layer[] Layers, Shape Shape)> Block(Shape input) =>
        from first in ConvOrPool(Conv(input), Pool(input))
        from relu in Gen.Elements(false, true)
        from pool in Gen.Elements(false, true)
        let afterRelu = relu ? Append(first, new Relu()) : first
        from second in pool ? Pool(afterRelu.Shape) : Gen.Constant((Layer: (Layer?)null, Shape: afterRelu.Shape))
        select second.Layer is null ? afterRelu : (afterRelu.Layers.Append(second.Layer).ToArray(), second.Shape);

    private static Gen<(Layer[] Layers, Shape Shape)> Conv(Shape input) =>
        from padH in Gen.Choose(0, 2)
        from padW in Gen.Choose(0, 2)
        from kh in Gen.Choose(1, Math.Min(4, input[1] + 2 * padH))
        from kw in Gen.Choose(1, Math.Min(4, input[2] + 2 * padW))
        from sh in Gen.Choose(1, 3)
        from sw in Gen.Choose(1, 3)
        from filters in Gen.Choose(1, 4)
        from bias in Gen.Elements(true, false)
        let conv = new Conv2d(filters, kh, kw, sh, sw, padH, padW, bias)
        select (new Layer[] { conv }, conv.OutputShape(input, "", false));

    private static Gen<(Layer? Layer, Shape Shape)> Pool(Shape input) =>
        from kh0 in Gen.Choose(1, 3)
        from kw0 in Gen.Choose(1, 3)
        from padH in Gen.Choose(0, kh0 / 2)
        from padW in Gen.Choose(0, kw0 / 2)
        from sh in Gen.Choose(1, 3)
        from sw in Gen.Choose(1, 3)
        // Shrinking the window to fit keeps padding <= kernel/2, since kernel = size + 2*pad > 2*pad.
        let pool = new MaxPool2d(Math.Min(kh0, input[1] + 2 * padH), Math.Min(kw0, input[2] + 2 * padW), sh, sw, padH, padW)
        select ((Layer?)pool, pool.OutputShape(input, "", false));

    private static Gen<(Layer[] Layers, Shape Shape)> ConvOrPool(Gen<(Layer[] Layers, Shape Shape)> conv, Gen<(Layer? Layer, Shape Shape)> pool) =>
        Gen.OneOf(conv, pool.Select(p => (new[] { p.Layer! }, p.Shape)));

    /// <summary>Flatten, then zero to two Dense layers with optional Relus between.</summary>
    private static Gen<Layer[]> Head(int features) =>
        from denseCount in Gen.Choose(0, 2)
        from units in Gen.ArrayOf(Gen.Choose(1, 6), denseCount)
        from biases in Gen.ArrayOf(Gen.Elements(true, false), denseCount)
        from relus in Gen.ArrayOf(Gen.Elements(true, false), denseCount)
        select new Layer[] { new Flatten() }
            .Concat(units.SelectMany((u, i) => i < denseCount - 1 && relus[i]
                ? new Layer[] { new Dense(u, biases[i]), new Relu() }
                : new Layer[] { new Dense(u, biases[i]) }))
            .ToArray();

    private static (Layer[] Layers, Shape Shape) Append((Layer[] Layers, Shape Shape) block, Layer relu) =>
        (block.Layers.Append(relu).ToArray(), block.Shape);

    private static Layer[] Prepend(Layer[] first, Layer[] rest) => first.Concat(rest).ToArray();
}

/// <summary>Export is checked against the native interpreter on random small networks.</summary>
public sealed class RandomNetworkExportProperties
{
    [CnnProperty(Arbitrary = new[] { typeof(NetworkCases) })]
    public void Exported_output_equals_native_output(NetworkCase c)
    {
        var parameters = Initializer.Init(c.Network, c.Seed);
        var x = RandomBatch(c.Network.InputShape, c.Batch, c.Seed ^ 0x5bd1e995);

        var expected = Apply.Forward(c.Network, parameters, x);
        var actual = RunExported(c.Network, parameters, x, c.Optimize);

        AssertClose(expected, actual, c.ToString());
    }

    /// <summary>A property that generates only trivial shapes is a defect: check that the generator reaches the interesting ones.</summary>
    [Fact]
    public void Generator_covers_strided_padded_and_non_square_windows()
    {
        var cases = NetworkCases.Case.Sample(400);
        var leaves = cases.SelectMany(c => c.Network.Leaves).ToArray();
        var convs = leaves.Select(n => n.Layer).OfType<Conv2d>().ToArray();
        var pools = leaves.Select(n => n.Layer).OfType<MaxPool2d>().ToArray();

        Assert.Contains(convs, c => c.StrideH != c.StrideW && Math.Max(c.StrideH, c.StrideW) > 1);
        Assert.Contains(convs, c => c.PadH != c.PadW);
        Assert.Contains(convs, c => c.KernelH != c.KernelW);
        Assert.Contains(convs, c => !c.UseBias);
        Assert.Contains(pools, p => p.PadH > 0 || p.PadW > 0);
        Assert.Contains(pools, p => p.StrideH != p.KernelH);
        Assert.Contains(leaves, n => n.Layer is Dense { UseBias: false });
        Assert.Contains(cases, c => c.Network.InputShape[1] != c.Network.InputShape[2]);
        Assert.Contains(cases, c => c.Network.OutputShape.Rank == 3);
        Assert.Contains(leaves, n => n.Path.Count(ch => ch == '/') == 1);
        Assert.Contains(cases, c => c.Network.Leaves.Count >= 6);
    }
}
