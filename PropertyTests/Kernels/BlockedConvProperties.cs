using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The channel-blocked direct convolution (<see cref="BlockedConv"/>) against the GEMM path it stands in for, which it must
/// match bit for bit (it sums in the GEMM's depth blocks), and against a float64 sum (an independent check of the
/// indexing): planar input of 1-5 channels (a first layer) or 16-128, and blocked input of 16-128 channels, kernels 1/3/5/7, strides
/// 1 and 2 (and 3 vertically), padding 0-3 on either side under a border up to two pixels wider, widths that leave ragged
/// tiles, 32-128 filters, batches of 1-3, bias or none (a -0 sum stays -0), ReLU (NaN kept), and exact zeros of both signs
/// and a NaN in the input; on one worker and two, with the same bits; the output's border is never written. Each check runs
/// on the CPU's widest tile and again on the AVX2 tile (<see cref="Vector256Paths"/>): on a machine with AVX-512 the two are
/// different code.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class BlockedConvProperties
{
    public sealed record Case(int N, int C, bool Blocked, int F, ConvAxis H, ConvAxis W, int ExtraBorder, int OutBorder, bool Bias, bool Relu, int Zeros, bool Nan, int Seed)
    {
        public ConvGeometry Geometry => ConvGeometry.Create(new[] { H.K, W.K }, new[] { H.S, W.S }, new[] { H.PadBegin, W.PadBegin },
            new[] { H.PadEnd, W.PadEnd });

        public int Border => Math.Max(Math.Max(H.PadBegin, H.PadEnd), Math.Max(W.PadBegin, W.PadEnd)) + ExtraBorder;

        internal BlockedPlane Input => new(N, C, H.Size, W.Size, Border, Blocked);

        public override string ToString() =>
            $"Case {{ N = {N}, C = {C}, Blocked = {Blocked}, F = {F}, H = {H}, W = {W}, Border = +{ExtraBorder}, OutBorder = {OutBorder}, Bias = {Bias}, Relu = {Relu}, Zeros = 1/{Zeros}, Nan = {Nan}, Seed = {Seed} }}";
    }

    private static Gen<ConvAxis> Axis(int maxSize, Gen<int> stride) =>
        from k in Gen.Elements(1, 3, 5, 7)
        from s in stride
        from begin in Gen.Choose(0, 3)
        from end in Gen.Choose(0, 3)
        from size in Gen.Choose(Math.Max(1, k - begin - end), maxSize)
        select new ConvAxis(size, k, s, begin, end, 1);

    /// <summary>The cases, shared with <see cref="BlockedForwardProperties"/> (planar ones).</summary>
    internal static Gen<Case> Cases =>
        from h in Axis(12, Gen.Elements(1, 2, 3))
        from w in Axis(33, Gen.Elements(1, 2))
        from c in Gen.Frequency((1, Gen.Choose(1, 5)), (2, Gen.Elements(16, 32, 48, 64, 128)))
        from f in Gen.Elements(32, 64, 96, 128)
        from blocked in Gen.Elements(c % BlockedPlane.Lanes == 0, false)
        from n in Gen.Choose(1, 3)
        from extra in Gen.Choose(0, 2)
        from outBorder in Gen.Choose(0, 2)
        from bias in Gen.Elements(true, false)
        from relu in Gen.Elements(true, false)
        from zeros in Gen.Elements(2, 5, 1000)
        from nan in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
        from seed in Gen.Choose(0, 1_000_000_000)
        select new Case(n, c, blocked, f, h, w, extra, outBorder, bias, relu, zeros, nan, seed);

    /// <summary>Random operands with many exact zeros of either sign and, if asked, a NaN.</summary>
    internal static (Tensor X, Tensor W, Tensor? B) Operands(Case c)
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

    /// <summary>NCHW <paramref name="x"/> laid out in a zeroed buffer as <paramref name="p"/> says (the tests' own copy).</summary>
    private static float[] Lay(Tensor x, BlockedPlane p)
    {
        var buffer = new float[p.Length];
        int per = p.Blocked ? BlockedPlane.Lanes : 1;
        for (int n = 0; n < p.N; n++)
            for (int c = 0; c < p.C; c++)
                for (int h = 0; h < p.H; h++)
                    for (int w = 0; w < p.W; w++)
                        buffer[p.Offset(n, c / per, h, w) + c % per] = x[((n * p.C + c) * p.H + h) * p.W + w];
        return buffer;
    }

    /// <summary>The blocked kernel's output as NCHW, after checking that its border is still zero.</summary>
    private static float[] Blocked(Case c, Tensor x, Tensor w, Tensor? b)
    {
        var conv = new BlockedConv(c.Input, c.Geometry, ChannelTileConv.Pack(w.Span, b, c.F), c.F, c.Relu, c.OutBorder);
        var output = conv.Output;
        var y = new float[output.Length];
        conv.Run(Lay(x, c.Input), y);
        var interior = new bool[y.Length];
        for (int n = 0; n < output.N; n++)
            for (int blk = 0; blk < output.C / BlockedPlane.Lanes; blk++)
                for (int h = 0; h < output.H; h++)
                    for (int i = output.Offset(n, blk, h, 0); i < output.Offset(n, blk, h, output.W); i++) interior[i] = true;
        for (int i = 0; i < y.Length; i++)
            if (!interior[i] && BitConverter.SingleToInt32Bits(y[i]) != 0) throw new Xunit.Sdk.XunitException($"{c}: border element {i} written ({y[i]:R}).");
        var nchw = new float[output.Shape.Size];
        BlockedOps.ToNchw(y, output, nchw, 0, output.N);
        return nchw;
    }

    private static bool Matches(Case c, int workers) => WorkerCountCollection.With(workers, () =>
    {
        var (x, w, b) = Operands(c);
        var gemm = GemmPathReference.Forward(x, w, b, c.Geometry, c.Relu);
        var blocked = Blocked(c, x, w, b);
        Assert.Equal(gemm.Length, blocked.Length);
        for (int i = 0; i < gemm.Length; i++)
            if (!GemmPathReference.SameBits(gemm[i], blocked[i]))
                throw new Xunit.Sdk.XunitException($"{c}, {workers} workers: element {i} is {blocked[i]:R} blocked, {gemm[i]:R} on the GEMM path.");
        return true;
    });

    /// <summary>
    /// The output against a float64 sum of the same products, within float32 rounding of the sum of their magnitudes
    /// (|error| &lt;= 1e-5 x sum |x w| + 1e-30: about 80 ulps, for chains of up to 6,272 float32 fused multiply-adds);
    /// NaN where and only where the sum has one.
    /// </summary>
    private static bool MatchesFloat64(Case c)
    {
        var (x, w, b) = Operands(c);
        var y = Blocked(c, x, w, b);
        int oh = c.H.Out, ow = c.W.Out;
        for (int n = 0; n < c.N; n++)
            for (int f = 0; f < c.F; f++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                    {
                        double sum = b is null ? 0 : b[f], magnitude = Math.Abs(sum);
                        for (int ch = 0; ch < c.C; ch++)
                            for (int r = 0; r < c.H.K; r++)
                                for (int s = 0; s < c.W.K; s++)
                                {
                                    int ih = i * c.H.S - c.H.PadBegin + r, iw = j * c.W.S - c.W.PadBegin + s;
                                    if (ih < 0 || ih >= c.H.Size || iw < 0 || iw >= c.W.Size) continue;
                                    double p = (double)x[((n * c.C + ch) * c.H.Size + ih) * c.W.Size + iw] * w[((f * c.C + ch) * c.H.K + r) * c.W.K + s];
                                    sum += p;
                                    magnitude += Math.Abs(p);
                                }
                        if (c.Relu && sum < 0) sum = 0;
                        float actual = y[((n * c.F + f) * oh + i) * ow + j];
                        bool ok = double.IsNaN(sum) ? float.IsNaN(actual) : Math.Abs(actual - sum) <= 1e-5 * magnitude + 1e-30;
                        if (!ok) throw new Xunit.Sdk.XunitException($"{c}: y[{n}, {f}, {i}, {j}] is {actual:R}, the float64 sum {sum:R}.");
                    }
        return true;
    }

    private static bool Runs => BlockedConv.Available;

    [Property(MaxTest = 60)]
    public Property Matches_the_gemm_path_bit_for_bit_on_one_and_two_workers() =>
        Prop.ForAll(Cases.ToArbitrary(), c => !Runs || (Matches(c, 1) && Matches(c, 2)));

    [Property(MaxTest = 60)]
    public Property Matches_the_gemm_path_bit_for_bit_on_the_avx2_tile() =>
        Prop.ForAll(Cases.ToArbitrary(), c => !Runs || !Vector256Paths.Supported || Vector256Paths.With(() => Matches(c, 1) && Matches(c, 2)));

    [Property(MaxTest = 30)]
    public Property Matches_a_float64_sum() =>
        Prop.ForAll(Cases.ToArbitrary(), c => !Runs || MatchesFloat64(c));

    [Property(MaxTest = 20)]
    public Property Matches_a_float64_sum_on_the_avx2_tile() =>
        Prop.ForAll(Cases.ToArbitrary(), c => !Runs || !Vector256Paths.Supported || Vector256Paths.With(() => MatchesFloat64(c)));

    /// <summary>ResNet-18's layer shapes at batch 1 (several depth blocks, items shared by panel and rows) and keras-cifar's at batch 4.</summary>
    [Theory]
    [InlineData(1, 3, 40, 64, 7, 2, 3)]
    [InlineData(1, 64, 28, 64, 3, 1, 1)]
    [InlineData(1, 128, 14, 256, 3, 2, 1)]
    [InlineData(1, 512, 7, 512, 3, 1, 1)]
    [InlineData(1, 256, 14, 512, 1, 2, 0)]
    [InlineData(4, 32, 30, 32, 3, 1, 0)]
    [InlineData(4, 32, 15, 64, 3, 1, 1)]
    public void Matches_the_gemm_path_on_network_layers(int n, int c, int size, int f, int k, int stride, int pad)
    {
        if (!Runs) return; // the kernel needs AVX-512 or AVX2: nothing to compare
        var axis = new ConvAxis(size, k, stride, pad, pad, 1);
        var cs = new Case(n, c, c % BlockedPlane.Lanes == 0, f, axis, axis, 0, 1, Bias: true, Relu: true, Zeros: 5, Nan: false, Seed: size * 1000 + f);
        Assert.True(Matches(cs, 1));
        Assert.True(Matches(cs, 2));
        if (Vector256Paths.Supported) Assert.True(Vector256Paths.With(() => Matches(cs, 1) && Matches(cs, 2)));
    }

    [Fact]
    public void Refuses_a_border_narrower_than_the_padding_and_partial_channel_blocks()
    {
        if (!Runs) return;
        var g = ConvGeometry.Create(new[] { 3, 3 }, null, new[] { 1, 1 }, new[] { 1, 1 });
        var packed = ChannelTileConv.Pack(new float[32 * 16 * 9], null, 32);
        var e = Assert.Throws<ShapeException>(() => new BlockedConv(new BlockedPlane(1, 16, 8, 8, 0, true), g, packed, 32, false, 0));
        Assert.Contains("border of 0", e.Message);
        e = Assert.Throws<ShapeException>(() => new BlockedConv(new BlockedPlane(1, 24, 8, 8, 1, true), g, ChannelTileConv.Pack(new float[32 * 24 * 9], null, 32), 32, false, 0));
        Assert.Contains("found 24", e.Message);
    }

    [Fact]
    public void Covers_whole_panels_of_filters_without_groups_or_dilation()
    {
        if (!Runs) return;
        var plain = ConvGeometry.Create(new[] { 3, 3 });
        Assert.True(BlockedConv.Covers(plain, 64));
        Assert.False(BlockedConv.Covers(plain, 48));
        Assert.False(BlockedConv.Covers(plain with { Groups = 2 }, 64));
        Assert.False(BlockedConv.Covers(ConvGeometry.Create(new[] { 3, 3 }, dilation: new[] { 2, 2 }), 64));
        Assert.False(BlockedConv.Covers(ConvGeometry.Create(new[] { 3, 3 }, new[] { 1, 3 }), 64));
    }
}
