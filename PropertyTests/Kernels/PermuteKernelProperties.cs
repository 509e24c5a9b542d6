using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>One random permutation problem: a tensor of rank 2..5 (the batch first) and a permutation that keeps the batch axis first.</summary>
public sealed record PermuteCase(int[] Dims, int[] Axes, int Seed)
{
    /// <summary>Ranks 2..5, sizes 1..4 per axis, any permutation of the axes after the first.</summary>
    public static Gen<PermuteCase> Generator { get; } =
        from rank in Gen.Choose(2, 5)
        from dims in Gen.ArrayOf(Gen.Choose(1, 4), rank)
        from keys in Gen.ArrayOf(Gen.Choose(0, 1000), rank - 1)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new PermuteCase(dims, new[] { 0 }.Concat(Enumerable.Range(1, rank - 1).OrderBy(i => keys[i - 1]).ThenBy(i => i)).ToArray(), seed);

    public override string ToString() => $"PermuteCase([{string.Join(", ", Dims)}], axes [{string.Join(", ", Axes)}], seed {Seed})";
}

/// <summary>The DSL's Permute on its kernel against LibTorch's <c>permute</c> and its autograd: a copy, so bit for bit.</summary>
public sealed class PermuteKernelProperties
{
    private static readonly Arbitrary<PermuteCase> Cases = PermuteCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = PermuteCase.Generator.Sample(1000, 50);
        foreach (var rank in new[] { 2, 3, 4, 5 }) Assert.Contains(cases, c => c.Dims.Length == rank);
        // A cycle of three sample axes (neither a swap nor the identity), with sizes that differ.
        Assert.Contains(cases, c => c.Dims.Length == 4 && c.Axes[1] == 2 && c.Axes[2] == 3 && c.Axes[3] == 1 && c.Dims.Skip(1).Distinct().Count() == 3);
        Assert.Contains(cases, c => c.Axes.Select((a, i) => a == i).All(same => same));
    }

    [Property(MaxTest = 100)]
    public Property Forward_and_backward_match_libtorch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.Dims);
        var y = PermuteKernel.Forward(x, c.Axes);
        var tx = T(x, requiresGrad: true);
        var ty = tx.permute(c.Axes.Select(a => (long)a).ToArray());
        Exact(y, ty, "permute");
        var dy = RandomTensor(rng, 1f, y.Shape.ToArray());
        ty.backward(new[] { T(dy) });
        Exact(PermuteKernel.Backward(dy, c.Axes), Grad(tx), "permute dx");
    }));

    [Fact]
    public void A_list_that_is_no_permutation_is_refused()
    {
        var x = Tensor.Zeros(2, 3, 4);
        Assert.Contains("permutation", Assert.Throws<ShapeException>(() => PermuteKernel.Forward(x, new[] { 0, 1, 1 })).Message);
        Assert.Contains("permutation", Assert.Throws<ShapeException>(() => PermuteKernel.Backward(x, new[] { 0, 2 })).Message);
        Assert.Contains("0..1", Assert.Throws<ShapeException>(() => new Cnn.Dsl.Permute(0, 0).OutputShape(new Shape(3, 4), "p", false)).Message);
    }
}
