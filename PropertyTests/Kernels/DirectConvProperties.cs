using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The direct stride-1 convolution (<see cref="DirectConv"/>) against the GEMM path it stands in for, which it must match
/// bit for bit: bias, fused ReLU (NaN kept), depth blocks past 256 rows, rows narrower and wider than a vector,
/// the in-place and staged (padded) layouts, filter counts that leave a partial tile of eight, one image split by filters
/// between workers. <see cref="ConvGemmProperties"/> checks the GEMM path against im2col and GEMM.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class DirectConvProperties
{
    public sealed record Case(int N, int C, int F, ConvAxis H, ConvAxis W, bool Bias, bool Relu, int Zeros, bool Nan, int Seed)
    {
        public ConvGeometry Geometry => ConvGeometry.Create(new[] { H.K, W.K }, new[] { 1, 1 }, new[] { H.PadBegin, W.PadBegin },
            new[] { H.PadEnd, W.PadEnd }, new[] { H.D, W.D });

        public override string ToString() =>
            $"Case {{ N = {N}, C = {C}, F = {F}, H = {H}, W = {W}, Bias = {Bias}, Relu = {Relu}, Zeros = 1/{Zeros}, Nan = {Nan}, Seed = {Seed} }}";
    }

    private static Gen<ConvAxis> Axis(int maxSize) =>
        from k in Gen.Choose(1, 5)
        from d in Gen.Frequency((4, Gen.Constant(1)), (1, Gen.Constant(2)))
        from begin in Gen.Choose(0, 2)
        from end in Gen.Choose(0, 2)
        from size in Gen.Choose(Math.Max(1, (k - 1) * d + 1 - begin - end), maxSize)
        select new ConvAxis(size, k, 1, begin, end, d);

    private static Gen<Case> Cases =>
        from h in Axis(20)
        from w in Gen.Frequency((3, Axis(40)), (1, Axis(70)))
        from c in Gen.Frequency((3, Gen.Choose(1, 8)), (1, Gen.Choose(20, 60)))
        from f in Gen.Choose(5, 27)
        from n in Gen.Choose(1, 3)
        from bias in Gen.Elements(true, false)
        from relu in Gen.Elements(true, false)
        from zeros in Gen.Elements(2, 5, 1000)
        from nan in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
        from seed in Gen.Choose(0, 1_000_000_000)
        select new Case(n, c, f, h, w, bias, relu, zeros, nan, seed);

    /// <summary>Random operands with many exact zeros of either sign (sums of zero products reach the ReLU) and, if asked, a NaN.</summary>
    private static (Tensor X, Tensor W, Tensor? B) Operands(Case c)
    {
        var rng = new Random(c.Seed);
        float[] Values(int count)
        {
            var v = new float[count];
            for (int i = 0; i < count; i++) v[i] = rng.Next(c.Zeros) == 0 ? (rng.Next(2) == 0 ? 0f : -0f) : (float)(rng.NextDouble() * 2 - 1);
            return v;
        }
        var x = Values(c.N * c.C * c.H.Size * c.W.Size);
        if (c.Nan) x[rng.Next(x.Length)] = float.NaN;
        return (Tensor.FromArray(x, c.N, c.C, c.H.Size, c.W.Size), Tensor.FromArray(Values(c.F * c.C * c.H.K * c.W.K), c.F, c.C, c.H.K, c.W.K),
            c.Bias ? Tensor.FromArray(Values(c.F), c.F) : null);
    }

    private static float[] Forward(Case c, Tensor x, Tensor w, Tensor? b, bool direct, bool vector256)
    {
        bool saved = DirectConv.Disabled, savedWidth = KernelWidth.ForceVector256;
        DirectConv.Disabled = !direct;
        KernelWidth.ForceVector256 = vector256;
        try
        {
            return ConvKernel.Forward(x, w, b, c.Geometry, GemmInstructionSet.Auto, c.Relu, packedWeights: null).ToArray();
        }
        finally
        {
            DirectConv.Disabled = saved;
            KernelWidth.ForceVector256 = savedWidth;
        }
    }

    /// <summary>The direct kernel (on 8-lane vectors if <paramref name="vector256"/>, also on AVX-512 machines) against the GEMM path.</summary>
    private static bool Matches(Case c, int workers, bool vector256) => WorkerCountCollection.With(workers, () =>
    {
        var (x, w, b) = Operands(c);
        var gemm = Forward(c, x, w, b, direct: false, vector256: false);
        var direct = Forward(c, x, w, b, direct: true, vector256);
        Assert.Equal(gemm.Length, direct.Length);
        for (int i = 0; i < gemm.Length; i++)
        {
            bool same = float.IsNaN(gemm[i]) ? float.IsNaN(direct[i]) : BitConverter.SingleToInt32Bits(gemm[i]) == BitConverter.SingleToInt32Bits(direct[i]);
            if (!same)
                throw new Xunit.Sdk.XunitException(
                    $"{c}, {workers} workers, {(vector256 ? 8 : 16)} lanes: element {i} is {direct[i]:R} direct, {gemm[i]:R} on the GEMM path.");
        }
        return true;
    });

    [Property(MaxTest = 80)]
    public Property Matches_the_gemm_path_bit_for_bit() =>
        Prop.ForAll(Cases.ToArbitrary(), c => Matches(c, 1, vector256: false) && Matches(c, 2, vector256: false));

    [Property(MaxTest = 80)]
    public Property Matches_the_gemm_path_bit_for_bit_on_8_lanes() =>
        Prop.ForAll(Cases.ToArbitrary(), c => Matches(c, 1, vector256: true) && Matches(c, 2, vector256: true));

    [Fact]
    public void Covers_the_shapes_it_is_for_and_not_the_others()
    {
        static bool Covers(int c, int hw, int k, int stride, int groups, int lanes = 16)
        {
            var g = ConvGeometry.Create(new[] { k, k }, new[] { stride, stride }, new[] { k / 2, k / 2 }, new[] { k / 2, k / 2 }, new[] { 1, 1 }, groups);
            var plan = new WindowPlan(new[] { hw, hw }, g, "test");
            return DirectConv.Covers(new ConvColumns(2, c, groups, plan), 32, lanes);
        }
        Assert.True(Covers(3, 32, 3, 1, 1));     // keras-cifar's first layer
        Assert.True(Covers(32, 32, 3, 1, 1));    // 288 rows, two depth blocks
        Assert.False(Covers(64, 56, 3, 1, 1));   // 576 rows: the GEMM's packed columns are reused more
        Assert.False(Covers(4, 13, 3, 1, 1));    // 13-wide rows: a mostly empty last vector per row
        Assert.False(Covers(3, 32, 3, 2, 1));    // stride 2
        Assert.False(Covers(4, 32, 3, 1, 2));    // groups
        Assert.False(Covers(16, 7, 3, 1, 1));    // 7 of 16 lanes used
        // On 8 lanes, rows from 8 wide that fill three-quarters of their vectors.
        Assert.True(Covers(4, 13, 3, 1, 1, lanes: 8));   // 13 of 16 lanes
        Assert.True(Covers(32, 15, 3, 1, 1, lanes: 8));  // the bench's C32 15x15
        Assert.False(Covers(16, 10, 3, 1, 1, lanes: 8)); // 10 of 16 lanes
        Assert.False(Covers(16, 7, 3, 1, 1, lanes: 8));  // shorter than a vector
        Assert.False(Covers(3, 32, 3, 1, 1, lanes: 0));  // the scalar micro-kernel: no direct kernel
        Assert.Equal(0, DirectConv.Lanes(GemmInstructionSet.Scalar));
    }
}
