using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>Add, channel concatenation and its pullback against TorchSharp's add and cat.</summary>
public sealed class TensorOpsProperties
{
    /// <summary>
    /// 1..4 parts of rank 2..5 that agree on every axis but 1: batch 1..3, channels 0..5 per part (an empty part is legal
    /// in cat), spatial axes 1..5.
    /// </summary>
    private static readonly Arbitrary<(int[] Dims, int[] Channels, int Seed)> Parts =
        (from rank in Gen.Choose(2, 5)
         from n in Gen.Choose(1, 3)
         from spatial in Gen.ArrayOf(Gen.Choose(1, 5), rank - 2)
         from count in Gen.Choose(1, 4)
         from channels in Gen.ArrayOf(Gen.Frequency((1, Gen.Constant(0)), (6, Gen.Choose(1, 5))), count)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (new[] { n, 0 }.Concat(spatial).ToArray(), channels, seed)).ToArbitrary();

    private static Tensor[] MakeParts(int[] dims, int[] channels, Random rng) =>
        channels.Select(ch =>
        {
            var d = (int[])dims.Clone();
            d[1] = ch;
            return RandomTensor(rng, 1f, d);
        }).ToArray();

    /// <summary>One float addition per element, as LibTorch: bitwise equal.</summary>
    [CnnProperty]
    public Property Add_matches_torch_add() => Prop.ForAll(Parts, s => Scoped(() =>
    {
        var rng = new Random(s.Seed);
        var dims = (int[])s.Dims.Clone();
        dims[1] = Math.Max(1, s.Channels[0]);
        var a = RandomTensor(rng, 1f, dims);
        var b = RandomTensor(rng, 1f, dims);
        Exact(TensorOps.Add(a, b), T(a) + T(b), "add");
    }));

    /// <summary>Concatenation only copies: bitwise equal to torch.cat along axis 1.</summary>
    [Property(MaxTest = 100)]
    public Property ConcatChannels_matches_torch_cat() => Prop.ForAll(Parts, s => Scoped(() =>
    {
        var parts = MakeParts(s.Dims, s.Channels, new Random(s.Seed));
        Exact(TensorOps.ConcatChannels(parts), torch.cat(parts.Select(p => T(p)).ToArray(), 1), "cat");
    }));

    /// <summary>The pullback of cat only copies: each part's gradient is bitwise equal to autograd's.</summary>
    [Property(MaxTest = 100)]
    public Property SplitChannels_matches_torch_cat_autograd() => Prop.ForAll(Parts, s => Scoped(() =>
    {
        var rng = new Random(s.Seed);
        var parts = MakeParts(s.Dims, s.Channels, rng);
        var leaves = parts.Select(p => T(p, requiresGrad: true)).ToArray();
        var y = TensorOps.ConcatChannels(parts);
        var dy = RandomTensor(rng, 1f, y.Shape.ToArray());
        torch.cat(leaves, 1).backward(new[] { T(dy) });
        var grads = TensorOps.SplitChannels(dy, s.Channels);
        Assert.Equal(parts.Length, grads.Count);
        for (int i = 0; i < parts.Length; i++) Exact(grads[i], Grad(leaves[i]), $"cat d(part {i})");
    }));

    [Fact]
    public void Concat_rejects_parts_that_differ_off_the_channel_axis()
    {
        var e = Assert.Throws<ShapeException>(() => TensorOps.ConcatChannels(new[] { Tensor.Zeros(2, 3, 4), Tensor.Zeros(2, 1, 5) }));
        Assert.Contains("[2, 1, 5]", e.Message);
        Assert.Contains("position 1", e.Message);
    }

    [Fact]
    public void Split_rejects_counts_that_do_not_add_up()
    {
        var e = Assert.Throws<ShapeException>(() => TensorOps.SplitChannels(Tensor.Zeros(2, 5, 3), new[] { 2, 2 }));
        Assert.Contains("adding up to 5", e.Message);
    }

    [Fact]
    public void Add_rejects_different_shapes() =>
        Assert.Throws<ShapeException>(() => TensorOps.Add(Tensor.Zeros(2, 3), Tensor.Zeros(3, 2)));
}
