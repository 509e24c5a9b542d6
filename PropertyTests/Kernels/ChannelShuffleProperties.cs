using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using TorchSharp;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>The channel shuffle kernel against LibTorch's view-transpose-reshape (PyTorch's definition) and its autograd.</summary>
public sealed class ChannelShuffleProperties
{
    private static readonly Arbitrary<(int[] Dims, int Groups, int Seed)> Cases =
        (from n in Gen.Choose(1, 3)
         from groups in Gen.Choose(1, 4)
         from perGroup in Gen.Choose(1, 4)
         from spatial in Gen.Choose(0, 2).SelectMany(r => Gen.ArrayOf(Gen.Choose(1, 4), r))
         from seed in Gen.Choose(0, 1_000_000_000)
         select (new[] { n, groups * perGroup }.Concat(spatial).ToArray(), groups, seed)).ToArbitrary();

    /// <summary>A permutation, copied: bitwise equal forward and backward.</summary>
    [CnnProperty]
    public Property Shuffle_and_its_pullback_match_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.Dims);
        var dy = RandomTensor(rng, 1f, c.Dims);
        var tx = T(x, requiresGrad: true);
        var split = new long[] { c.Dims[0], c.Groups, c.Dims[1] / c.Groups }.Concat(c.Dims.Skip(2).Select(d => (long)d)).ToArray();
        var ty = tx.reshape(split).transpose(1, 2).reshape(c.Dims.Select(d => (long)d).ToArray());
        Exact(ChannelShuffleKernel.Forward(x, c.Groups), ty, "shuffle");
        ty.backward(new[] { T(dy) });
        Exact(ChannelShuffleKernel.Backward(dy, c.Groups), Grad(tx), "shuffle dx");
    }));
}
