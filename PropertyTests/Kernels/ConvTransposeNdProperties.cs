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

/// <summary>
/// One axis of a random transposed convolution: input size, kernel, stride, padding at the start (<paramref name="P"/>) and the
/// end (<paramref name="PE"/>, ONNX's SAME_UPPER when they differ), output padding, dilation.
/// </summary>
public sealed record ConvTransposeAxis(int Size, int K, int S, int P, int OP, int D, int PE)
{
    /// <summary>The output size <c>(in-1)*s - p - pe + d*(k-1) + 1 + op</c>.</summary>
    public int Out => (Size - 1) * S - P - PE + D * (K - 1) + 1 + OP;

    /// <summary>
    /// Kernel 1..<paramref name="maxK"/>, stride 1..3, dilation mostly 1 (2..3 one time in four), padding 0..2 (the end's
    /// drawn apart one time in three), output padding below the stride, input size from the least that gives a non-empty
    /// output up to <paramref name="maxSize"/>.
    /// </summary>
    public static Gen<ConvTransposeAxis> Generator(int maxSize, int maxK) =>
        from k in Gen.Choose(1, maxK)
        from s in Gen.Choose(1, 3)
        from d in Gen.Frequency((3, Gen.Constant(1)), (1, Gen.Choose(2, 3)))
        from p in Gen.Choose(0, 2)
        from pe in Gen.Frequency((2, Gen.Constant(p)), (1, Gen.Choose(0, 2)))
        from op in Gen.Choose(0, s - 1)
        let min = 1 + (Math.Max(0, p + pe - d * (k - 1) - op) + s - 1) / s
        from size in Gen.Choose(min, Math.Max(min, maxSize))
        select new ConvTransposeAxis(size, k, s, p, op, d, pe);
}

/// <summary>One random N-d transposed convolution: batch, channels in groups, filters, one axis per spatial axis, and the seed of its data.</summary>
public sealed record ConvTransposeNdCase(int N, int Groups, int CPerGroup, int FPerGroup, ConvTransposeAxis[] Axes, bool Bias, int Seed)
{
    public int C => Groups * CPerGroup;

    public int F => Groups * FPerGroup;

    public int Rank => Axes.Length;

    public ConvGeometry Geometry => ConvGeometry.Create(Axes.Select(a => a.K).ToArray(), Axes.Select(a => a.S).ToArray(),
        Axes.Select(a => a.P).ToArray(), Axes.Select(a => a.PE).ToArray(), Axes.Select(a => a.D).ToArray(), Groups);

    public int[] OutputPad => Axes.Select(a => a.OP).ToArray();

    public int[] XDims => new[] { N, C }.Concat(Axes.Select(a => a.Size)).ToArray();

    /// <summary>Weight <c>[C, F/groups, kernel...]</c> (PyTorch's layout).</summary>
    public int[] WDims => new[] { C, FPerGroup }.Concat(Axes.Select(a => a.K)).ToArray();

    public int[] YDims => new[] { N, F }.Concat(Axes.Select(a => a.Out)).ToArray();

    /// <summary>
    /// Spatial rank 1..3 (sizes up to 8, 6 and 4, kernels up to 4, 3 and 3 per axis, each axis drawn on its own), batch 1..3,
    /// and one of: dense (1 group, 1..4 channels and filters), grouped (2..3 groups of 1..3 channels and filters), or
    /// depthwise (groups = channels = 2..4, 1..2 filters per group).
    /// </summary>
    public static Gen<ConvTransposeNdCase> Generator { get; } =
        from rank in Gen.Choose(1, 3)
        let axis = ConvTransposeAxis.Generator(rank switch { 1 => 8, 2 => 6, _ => 4 }, rank == 1 ? 4 : 3)
        from a0 in axis
        from a1 in axis
        from a2 in axis
        from grouping in ConvNdCase.Grouping
        from n in Gen.Choose(1, 3)
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ConvTransposeNdCase(n, grouping.Item1, grouping.Item2, grouping.Item3, new[] { a0, a1, a2 }[..rank], bias, seed);

    public override string ToString() =>
        $"ConvTransposeNdCase {{ N = {N}, Groups = {Groups}, C = {C}, F = {F}, Axes = [{string.Join(", ", Axes.Select(a => a.ToString()))}], Bias = {Bias}, Seed = {Seed} }}";
}

/// <summary>ConvTransposeKernel in 1, 2 and 3 dimensions against TorchSharp's conv_transpose1d/2d/3d and its autograd.</summary>
public sealed class ConvTransposeNdProperties
{
    /// <summary>
    /// |a-b| &lt;= 1e-5 + 1e-4 max|b|: each output is a float32 sum of up to C/groups * taps = 4*64 products (dX: F/groups * taps;
    /// dW and db: N * input positions, up to 3 * 64) that LibTorch adds in another order.
    /// </summary>
    private const double Atol = 1e-5, Rtol = 1e-4;

    private static readonly Arbitrary<ConvTransposeNdCase> Cases = ConvTransposeNdCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = ConvTransposeNdCase.Generator.Sample(3000, 50);
        foreach (var rank in new[] { 1, 2, 3 }) Assert.Contains(cases, c => c.Rank == rank);
        Assert.Contains(cases, c => c.Groups > 1 && c.CPerGroup > 1 && c.FPerGroup > 1);
        Assert.Contains(cases, c => c.Groups == c.C && c.C > 1);
        Assert.Contains(cases, c => c.Axes.Any(a => a.D > 1 && a.K > 1));
        Assert.Contains(cases, c => c.Axes.Any(a => a.OP > 0 && a.D > 1));
        Assert.Contains(cases, c => c.Axes.Any(a => a.S > a.K));
        Assert.Contains(cases, c => c.Axes.Any(a => a.P > 0 && a.Out == 1));
        Assert.Contains(cases, c => c.Rank == 2 && c.Axes[0].K != c.Axes[1].K && c.Axes[0].S != c.Axes[1].S);
        Assert.Contains(cases, c => c.Rank == 3 && c.Axes.Select(a => a.K).Distinct().Count() == 3);
        Assert.Contains(cases, c => c.Rank == 3 && c.Axes.Select(a => a.S).Distinct().Count() > 1 && c.Axes.Any(a => a.OP > 0));
        Assert.Contains(cases, c => c.Axes.All(a => a.K == 1 && a.S == 1 && a.P == 0));
        Assert.Contains(cases, c => !c.Bias);
        Assert.Contains(cases, c => c.Axes.Any(a => a.PE > a.P && a.OP > 0));
        Assert.Contains(cases, c => c.Axes.Any(a => a.PE < a.P && a.D > 1));
        Assert.Contains(cases, c => c.Rank == 3 && c.Axes.Count(a => a.PE != a.P) >= 2);
    }

    [Property(MaxTest = 150)]
    public Property Forward_matches_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.XDims);
        var w = RandomTensor(rng, 1f, c.WDims);
        var b = c.Bias ? RandomTensor(rng, 1f, c.F) : null;

        var y = ConvTransposeKernel.Forward(x, w, b, c.Geometry, c.OutputPad);

        Close(y, Reference(c, T(x), T(w), b is null ? null : T(b)), Atol, Rtol, $"conv_transpose{c.Rank}d forward");
    }));

    [Property(MaxTest = 150)]
    public Property Backward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.XDims);
        var w = RandomTensor(rng, 1f, c.WDims);
        var b = c.Bias ? RandomTensor(rng, 1f, c.F) : null;
        var dy = RandomTensor(rng, 1f, c.YDims);

        var grads = ConvTransposeKernel.Backward(x, w, c.Bias, dy, c.Geometry, c.OutputPad);

        var tx = T(x, requiresGrad: true);
        var tw = T(w, requiresGrad: true);
        var tb = b is null ? null : T(b, requiresGrad: true);
        Reference(c, tx, tw, tb).backward(new[] { T(dy) });
        Close(grads.Input, Grad(tx), Atol, Rtol, $"conv_transpose{c.Rank}d dx");
        Close(grads.Weight, Grad(tw), Atol, Rtol, $"conv_transpose{c.Rank}d dW");
        if (tb is null) Assert.Null(grads.Bias);
        else Close(grads.Bias ?? throw new Xunit.Sdk.XunitException("db missing"), Grad(tb), Atol, Rtol, $"conv_transpose{c.Rank}d db");
    }));

    [Fact]
    public void Bad_windows_and_shapes_are_refused_with_the_numbers()
    {
        var x = Tensor.Zeros(1, 4, 3, 3);
        var g = ConvGeometry.Create(new[] { 3, 3 }, new[] { 2, 1 }, groups: 2);
        Assert.Equal(new Shape(1, 6, 7, 5), ConvTransposeKernel.Forward(x, Tensor.Zeros(4, 3, 3, 3), null, g).Shape);
        Assert.Contains("smaller than the stride", Assert.Throws<ShapeException>(() => ConvTransposeKernel.Forward(x, Tensor.Zeros(4, 3, 3, 3), null, g, new[] { 0, 1 })).Message);
        Assert.Contains("[4, Cout/groups, 3, 3]", Assert.Throws<ShapeException>(() => ConvTransposeKernel.Forward(x, Tensor.Zeros(2, 3, 3, 3), null, g)).Message);
        Assert.Contains("3 channels do not split into 2 groups",
            Assert.Throws<ShapeException>(() => ConvTransposeKernel.Forward(Tensor.Zeros(1, 3, 3, 3), Tensor.Zeros(3, 3, 3, 3), null, g)).Message);
        Assert.Contains("bias [6]", Assert.Throws<ShapeException>(() => ConvTransposeKernel.Forward(x, Tensor.Zeros(4, 3, 3, 3), Tensor.Zeros(3), g)).Message);
        var cropped = ConvGeometry.Create(new[] { 1, 1 }, padBegin: new[] { 1, 1 }, padEnd: new[] { 1, 1 });
        Assert.Contains("must be >= 1", Assert.Throws<ShapeException>(() => ConvTransposeKernel.Forward(Tensor.Zeros(1, 1, 2, 2), Tensor.Zeros(1, 1, 1, 1), null, cropped)).Message);
    }

    /// <summary>
    /// LibTorch's transposed convolution; where the padding differs between the ends of an axis (which its padding argument
    /// cannot say), the unpadded output with the output padding, narrowed to <c>[p, full + op - pe)</c> on each axis.
    /// </summary>
    private static TorchTensor Reference(ConvTransposeNdCase c, TorchTensor x, TorchTensor w, TorchTensor? b)
    {
        var g = c.Geometry;
        long[] L(int[] v) => v.Select(e => (long)e).ToArray();
        var pad = g.SymmetricPadding ? L(g.PadBegin) : new long[c.Rank];
        var y = c.Rank switch
        {
            1 => conv_transpose1d(x, w, b, g.Stride[0], pad[0], c.OutputPad[0], g.Dilation[0], g.Groups),
            2 => conv_transpose2d(x, w, b, L(g.Stride), pad, L(c.OutputPad), L(g.Dilation), g.Groups),
            _ => conv_transpose3d(x, w, b, L(g.Stride), pad, L(c.OutputPad), L(g.Dilation), g.Groups),
        };
        if (!g.SymmetricPadding)
            for (int a = 0; a < c.Rank; a++) y = y.narrow(2 + a, g.PadBegin[a], c.Axes[a].Out);
        return y;
    }
}
