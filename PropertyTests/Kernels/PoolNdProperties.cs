using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>The pooling window along one spatial axis, and the input's size there.</summary>
public sealed record PoolAxis(int Size, int K, int S, int P, int D)
{
    /// <summary>The output size (floored).</summary>
    public int Out => (Size + 2 * P - D * (K - 1) - 1) / S + 1;

    /// <summary>Whether every window reads at least one input element (a dilated window can straddle a small input).</summary>
    public bool EveryWindowReadsInput => Enumerable.Range(0, Out).All(o =>
        Enumerable.Range(0, K).Any(j => o * S - P + j * D is var i && i >= 0 && i < Size));

    /// <summary>
    /// Kernel 1..<paramref name="maxK"/>, stride 1..3, padding up to half the kernel (PyTorch's limit) and 2, dilation 1
    /// or, when <paramref name="dilated"/>, 2..3 one time in four; input size from the smallest that fits up to
    /// <paramref name="maxSize"/>.
    /// </summary>
    public static Gen<PoolAxis> Generator(int maxSize, int maxK, bool dilated) =>
        from k in Gen.Choose(1, maxK)
        from s in Gen.Choose(1, 3)
        from p in Gen.Choose(0, Math.Min(2, k / 2))
        from d in dilated ? Gen.Frequency((3, Gen.Constant(1)), (1, Gen.Choose(2, 3))) : Gen.Constant(1)
        let min = Math.Max(1, d * (k - 1) + 1 - 2 * p)
        from size in Gen.Choose(min, Math.Max(min, maxSize))
        select new PoolAxis(size, k, s, p, d);
}

/// <summary>One random N-d pooling problem. <paramref name="Ties"/>: data drawn from {0, 1, 2}, so max windows tie often.</summary>
public sealed record PoolNdCase(int N, int C, PoolAxis[] Axes, bool Ties, bool CountIncludePad, int Seed)
{
    /// <summary>The number of spatial axes.</summary>
    public int Rank => Axes.Length;

    /// <summary>The geometry under test.</summary>
    public ConvGeometry Geometry => ConvGeometry.Create(
        Axes.Select(a => a.K).ToArray(), Axes.Select(a => a.S).ToArray(), Axes.Select(a => a.P).ToArray(),
        Axes.Select(a => a.P).ToArray(), Axes.Select(a => a.D).ToArray());

    /// <summary>Input dimensions.</summary>
    public int[] XDims => new[] { N, C }.Concat(Axes.Select(a => a.Size)).ToArray();

    /// <summary>The data: pairwise distinct values, or small integers that tie.</summary>
    public Tensor Input()
    {
        var rng = new Random(Seed);
        var dims = XDims;
        int size = new Shape(dims).Size;
        var data = Ties ? Enumerable.Range(0, size).Select(_ => (float)rng.Next(3)).ToArray() : Distinct(rng, size);
        return Tensor.FromArray(data, dims);
    }

    /// <summary>
    /// Spatial rank 1 (sizes up to 13, kernels up to 5), 2 (9, 4) or 3 (6, 3); batch 1..3, channels 1..3; dilation only
    /// when <paramref name="dilated"/> (max pooling), and only where every window still reads an input element. The
    /// average-pooling cases (not <paramref name="dilated"/>) of rank 3 have inputs at least the kernel on each axis,
    /// because LibTorch's avg_pool3d rejects a smaller input even when padding makes it fit (its avg_pool1d/2d and
    /// max_pool3d do not; PoolNdKernel accepts it).
    /// </summary>
    public static Gen<PoolNdCase> Generator(bool dilated) =>
        from rank in Gen.Elements(1, 1, 2, 3, 3)
        let axis = rank switch { 1 => PoolAxis.Generator(13, 5, dilated), 2 => PoolAxis.Generator(9, 4, dilated), _ => PoolAxis.Generator(6, 3, dilated) }
        from a0 in axis
        from a1 in axis
        from a2 in axis
        let axes = new[] { a0, a1, a2 }[..rank]
        where axes.All(a => a.EveryWindowReadsInput)
        where dilated || rank != 3 || axes.All(a => a.Size >= a.K)
        from n in Gen.Choose(1, 3)
        from c in Gen.Choose(1, 3)
        from ties in Gen.Elements(false, true)
        from countPad in Gen.Elements(false, true)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new PoolNdCase(n, c, axes, ties, countPad, seed);

    /// <summary>Prints the axes in full (a record prints arrays as their type name).</summary>
    public override string ToString() =>
        $"PoolNdCase {{ N = {N}, C = {C}, Axes = [{string.Join(", ", Axes.Select(a => a.ToString()))}], Ties = {Ties}, CountIncludePad = {CountIncludePad}, Seed = {Seed} }}";
}

/// <summary>
/// PoolNdKernel against TorchSharp's max_pool1d/2d/3d and avg_pool1d/2d/3d (with and without count_include_pad) and
/// their autograd. Half the max-pooling cases tie often: LibTorch's CPU kernels, like ours, give a tie to the first
/// maximum in row-major window order, so the routed gradients must agree there too.
/// </summary>
public sealed class PoolNdProperties
{
    private static readonly Arbitrary<PoolNdCase> MaxCases = PoolNdCase.Generator(dilated: true).ToArbitrary();
    private static readonly Arbitrary<PoolNdCase> AvgCases = PoolNdCase.Generator(dilated: false).ToArbitrary();

    [Fact]
    public void Generators_cover_the_hard_cases()
    {
        var cases = PoolNdCase.Generator(dilated: true).Sample(3000, 50);
        foreach (var rank in new[] { 1, 2, 3 }) Assert.Contains(cases, c => c.Rank == rank);
        Assert.Contains(cases, c => c.N == 1);
        Assert.Contains(cases, c => c.Ties);
        Assert.Contains(cases, c => c.Axes.Any(a => a.D > 1 && a.K > 1));
        Assert.Contains(cases, c => c.Axes.Any(a => a.S < a.K));
        Assert.Contains(cases, c => c.Axes.Any(a => a.S > a.K));
        Assert.Contains(cases, c => c.Axes.Any(a => a.P == 2));
        Assert.Contains(cases, c => c.Axes.Any(a => a.P > 0 && a.K % 2 == 1));
        Assert.Contains(cases, c => c.Axes.Any(a => (a.Size + 2 * a.P - a.D * (a.K - 1) - 1) % a.S != 0));
        Assert.Contains(cases, c => c.Rank == 3 && c.Axes.Select(a => a.K).Distinct().Count() > 1);
        Assert.Contains(cases, c => c.Rank == 2 && c.Axes[0].K == 1 && c.Axes[1].K > 1);
        Assert.Contains(cases, c => c.Axes.All(a => a.K == 1));
        Assert.Contains(cases, c => c.Axes.All(a => a.Out == 1));
        var avg = PoolNdCase.Generator(dilated: false).Sample(1000, 50);
        Assert.All(avg, c => Assert.All(c.Axes, a => Assert.Equal(1, a.D)));
        Assert.Contains(avg, c => c.CountIncludePad && c.Axes.Any(a => a.P > 0));
        Assert.Contains(avg, c => !c.CountIncludePad && c.Axes.Any(a => a.P > 0));
        Assert.Contains(avg, c => c.Rank == 3 && c.Axes.Any(a => a.P > 0));
        Assert.Contains(avg, c => c.Rank == 1 && c.Axes[0].Size < c.Axes[0].K);
    }

    /// <summary>The maximum is one of the inputs, chosen exactly: the output must be bitwise equal.</summary>
    [Property(MaxTest = 150)]
    public Property Max_forward_matches_torch() => Prop.ForAll(MaxCases, c => Scoped(() =>
    {
        var x = c.Input();
        var r = PoolNdKernel.MaxForward(x, c.Geometry);
        Exact(r.Output, TorchMax(c, T(x)), $"max_pool{c.Rank}d forward");
    }));

    /// <summary>
    /// Each input's gradient is the sum of the upstream gradients of the windows it won; overlapping windows add up to
    /// 27 terms in another order: |a-b| &lt;= 1e-6 + 1e-5 max|b|.
    /// </summary>
    [Property(MaxTest = 150)]
    public Property Max_backward_matches_torch_autograd() => Prop.ForAll(MaxCases, c => Scoped(() =>
    {
        var x = c.Input();
        var r = PoolNdKernel.MaxForward(x, c.Geometry);
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, r.Output.Shape.ToArray());

        var dx = PoolNdKernel.MaxBackward(dy, r.ArgMax, x.Shape);

        var tx = T(x, requiresGrad: true);
        TorchMax(c, tx).backward(new[] { T(dy) });
        Close(dx, Grad(tx), 1e-6, 1e-5, $"max_pool{c.Rank}d dx");
    }));

    /// <summary>
    /// Each output is a float32 sum of at most 27 inputs in [-1, 1), divided by the window's divisor; LibTorch may add
    /// in another order: |a-b| &lt;= 1e-6 + 1e-5 max|b|.
    /// </summary>
    [Property(MaxTest = 150)]
    public Property Average_forward_matches_torch() => Prop.ForAll(AvgCases, c => Scoped(() =>
    {
        var x = c.Input();
        var y = PoolNdKernel.AverageForward(x, c.Geometry, c.CountIncludePad);
        Close(y, TorchAvg(c, T(x)), 1e-6, 1e-5, $"avg_pool{c.Rank}d forward (count_include_pad {c.CountIncludePad})");
    }));

    /// <summary>Each input's gradient sums at most 27 shares of upstream gradients: |a-b| &lt;= 1e-6 + 1e-5 max|b|.</summary>
    [Property(MaxTest = 150)]
    public Property Average_backward_matches_torch_autograd() => Prop.ForAll(AvgCases, c => Scoped(() =>
    {
        var x = c.Input();
        var outShape = PoolNdKernel.AverageForward(x, c.Geometry, c.CountIncludePad).Shape;
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, outShape.ToArray());

        var dx = PoolNdKernel.AverageBackward(dy, x.Shape, c.Geometry, c.CountIncludePad);

        var tx = T(x, requiresGrad: true);
        TorchAvg(c, tx).backward(new[] { T(dy) });
        Close(dx, Grad(tx), 1e-6, 1e-5, $"avg_pool{c.Rank}d dx (count_include_pad {c.CountIncludePad})");
    }));

    /// <summary>
    /// A hand-checked 1-d case: x = [1, 5, 2, 8, 3], window 2, stride 2, padding 1. Windows [pad, 1], [5, 2], [8, 3]:
    /// max [1, 5, 8]; average with padding counted [0.5, 3.5, 5.5], without [1, 3.5, 5.5].
    /// </summary>
    [Fact]
    public void Hand_checked_1d_pooling()
    {
        var x = Tensor.FromArray(new float[] { 1, 5, 2, 8, 3 }, 1, 1, 5);
        var g = ConvGeometry.Create(new[] { 2 }, new[] { 2 }, new[] { 1 }, new[] { 1 });
        var max = PoolNdKernel.MaxForward(x, g);
        Assert.Equal(new float[] { 1, 5, 8 }, max.Output.ToArray());
        Assert.Equal(new[] { 0, 1, 3 }, max.ArgMax.ToArray());
        Assert.Equal(new float[] { 0.5f, 3.5f, 5.5f }, PoolNdKernel.AverageForward(x, g, countIncludePad: true).ToArray());
        Assert.Equal(new float[] { 1, 3.5f, 5.5f }, PoolNdKernel.AverageForward(x, g, countIncludePad: false).ToArray());
        var dy = Tensor.FromArray(new float[] { 2, 4, 6 }, 1, 1, 3);
        Assert.Equal(new float[] { 2, 4, 0, 6, 0 }, PoolNdKernel.MaxBackward(dy, max.ArgMax, x.Shape).ToArray());
        Assert.Equal(new float[] { 1, 2, 2, 3, 3 }, PoolNdKernel.AverageBackward(dy, x.Shape, g, countIncludePad: true).ToArray());
        Assert.Equal(new float[] { 2, 2, 2, 3, 3 }, PoolNdKernel.AverageBackward(dy, x.Shape, g, countIncludePad: false).ToArray());
    }

    [Fact]
    public void Windows_pooling_cannot_take_are_rejected()
    {
        var x = Tensor.Zeros(1, 1, 6, 6, 6);
        Assert.Throws<ShapeException>(() => PoolNdKernel.MaxForward(x, ConvGeometry.Create(new[] { 2, 2, 2 }, padBegin: new[] { 1, 0, 0 })));
        Assert.Throws<ShapeException>(() => PoolNdKernel.MaxForward(x, ConvGeometry.Create(new[] { 3, 3, 3 }, padBegin: new[] { 2, 0, 0 }, padEnd: new[] { 2, 0, 0 })));
        Assert.Throws<ShapeException>(() => PoolNdKernel.AverageForward(x, ConvGeometry.Create(new[] { 2, 2, 2 }, dilation: new[] { 1, 2, 1 }), true));
        Assert.Throws<ShapeException>(() => PoolNdKernel.MaxForward(Tensor.Zeros(1, 6, 6, 6), ConvGeometry.Create(new[] { 2, 2, 2 })));
        // Size 2, kernel 2 dilated by 3, padding 1: the one window reads positions -1 and 2, both outside the input.
        var empty = Assert.Throws<ShapeException>(() => PoolNdKernel.MaxForward(Tensor.Zeros(1, 1, 2), ConvGeometry.Create(new[] { 2 }, padBegin: new[] { 1 }, padEnd: new[] { 1 }, dilation: new[] { 3 })));
        Assert.Contains("only padding", empty.Message);
        Assert.Throws<ShapeException>(() => PoolNdKernel.AverageBackward(Tensor.Zeros(1, 1, 2), new Shape(1, 1, 5), ConvGeometry.Create(new[] { 2 }), true));
    }

    private static TorchTensor TorchMax(PoolNdCase c, TorchTensor x)
    {
        long[] k = Longs(c, a => a.K), s = Longs(c, a => a.S), p = Longs(c, a => a.P), d = Longs(c, a => a.D);
        return c.Rank switch
        {
            1 => max_pool1d(x, k[0], s[0], p[0], d[0]),
            2 => max_pool2d(x, k, s, p, d),
            _ => max_pool3d(x, k, s, p, d),
        };
    }

    private static TorchTensor TorchAvg(PoolNdCase c, TorchTensor x)
    {
        long[] k = Longs(c, a => a.K), s = Longs(c, a => a.S), p = Longs(c, a => a.P);
        return c.Rank switch
        {
            1 => avg_pool1d(x, k[0], s[0], p[0], ceil_mode: false, count_include_pad: c.CountIncludePad),
            2 => avg_pool2d(x, k, s, p, ceil_mode: false, count_include_pad: c.CountIncludePad),
            _ => avg_pool3d(x, k, s, p, ceil_mode: false, count_include_pad: c.CountIncludePad),
        };
    }

    private static long[] Longs(PoolNdCase c, Func<PoolAxis, int> f) => c.Axes.Select(a => (long)f(a)).ToArray();
}
