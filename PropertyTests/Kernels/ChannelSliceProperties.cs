using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>The channel slice kernel against LibTorch's <c>narrow</c> and its autograd.</summary>
public sealed class ChannelSliceProperties
{
    private static readonly Arbitrary<(int[] Dims, int Start, int Count, int Seed)> Cases =
        (from n in Gen.Choose(1, 3)
         from c in Gen.Choose(1, 6)
         from start in Gen.Choose(0, c - 1)
         from count in Gen.Choose(1, c - start)
         from spatial in Gen.Choose(0, 2).SelectMany(r => Gen.ArrayOf(Gen.Choose(1, 4), r))
         from seed in Gen.Choose(0, 1_000_000_000)
         select (new[] { n, c }.Concat(spatial).ToArray(), start, count, seed)).ToArbitrary();

    /// <summary>A copy forward and a copy into zeros backward: bitwise equal.</summary>
    [CnnProperty]
    public Property Slice_and_its_pullback_match_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.Dims);
        var tx = T(x, requiresGrad: true);
        var ty = tx.narrow(1, c.Start, c.Count);
        var y = ChannelSliceKernel.Forward(x, c.Start, c.Count);
        Exact(y, ty, "slice");
        var dy = RandomTensor(rng, 1f, y.Shape.ToArray());
        ty.backward(new[] { T(dy) });
        Exact(ChannelSliceKernel.Backward(dy, x.Shape, c.Start), Grad(tx), "slice dx");
    }));
}
