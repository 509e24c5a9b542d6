using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The inference convolution with filter vectors (<see cref="ChannelTileConv"/>) against the GEMM path it stands in for,
/// which it must match bit for bit (it sums in the GEMM's depth blocks): bias or none (a -0 sum stays -0), fused ReLU
/// (NaN kept), strides, padding on either side, dilation, depths past one block of 256 rows, filter counts that leave a
/// partial panel of 32, a last tile of fewer than 14 positions, several blocks of positions, and the three ways a call is
/// split (images; one image's blocks; one image's filter panels), on one worker and two.
/// <see cref="ConvGemmProperties"/> checks the GEMM path against im2col and GEMM, and LibTorch's properties check both.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class ChannelTileConvProperties
{
    public sealed record Case(int N, int C, int F, ConvAxis H, ConvAxis W, bool Bias, bool Relu, int Zeros, bool Nan, int Seed)
    {
        public ConvGeometry Geometry => ConvGeometry.Create(new[] { H.K, W.K }, new[] { H.S, W.S }, new[] { H.PadBegin, W.PadBegin },
            new[] { H.PadEnd, W.PadEnd }, new[] { H.D, W.D });

        public override string ToString() =>
            $"Case {{ N = {N}, C = {C}, F = {F}, H = {H}, W = {W}, Bias = {Bias}, Relu = {Relu}, Zeros = 1/{Zeros}, Nan = {Nan}, Seed = {Seed} }}";
    }

    private static Gen<ConvAxis> Axis(int maxSize) =>
        from k in Gen.Choose(1, 4)
        from s in Gen.Frequency((2, Gen.Constant(1)), (1, Gen.Constant(2)))
        from d in Gen.Frequency((4, Gen.Constant(1)), (1, Gen.Constant(2)))
        from begin in Gen.Choose(0, 2)
        from end in Gen.Choose(0, 2)
        from size in Gen.Choose(Math.Max(1, (k - 1) * d + 1 - begin - end), maxSize)
        select new ConvAxis(size, k, s, begin, end, d);

    /// <summary>Shapes the kernel takes: at most half as many output positions per image as filters (<see cref="ChannelTileConv.Worth"/>).</summary>
    private static Gen<Case> Cases =>
        (from h in Axis(12)
         from w in Axis(14)
         from c in Gen.Frequency((3, Gen.Choose(1, 12)), (1, Gen.Choose(29, 70)))
         from f in Gen.Frequency((2, Gen.Elements(32, 64, 96, 128)), (3, Gen.Choose(32, 150)))
         from n in Gen.Choose(1, 3)
         from bias in Gen.Elements(true, false)
         from relu in Gen.Elements(true, false)
         from zeros in Gen.Elements(2, 5, 1000)
         from nan in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
         from seed in Gen.Choose(0, 1_000_000_000)
         select new Case(n, c, f, h, w, bias, relu, zeros, nan, seed))
        .Where(c => ChannelTileConv.Worth(c.H.Out * c.W.Out, c.F));

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

    /// <summary>The inference call with the kernel's packed weights, as <see cref="PackedConvolution"/> binds it.</summary>
    private static float[] Tiles(Case c, Tensor x, Tensor w, Tensor? b)
    {
        bool saved = DirectConv.Disabled;
        DirectConv.Disabled = true;
        try
        {
            var call = new ConvForward(x.Shape, w, b, c.Geometry, GemmInstructionSet.Auto, c.Relu, packedWeights: null,
                new Lazy<(float[] Weights, float[]? Bias)>(() => ChannelTileConv.Pack(w.Span, b, c.F)));
            Assert.True(call.ChannelTiles, $"{c}: the kernel did not take the layer");
            var y = new float[call.OutputShape.Size];
            call.Run(x, y);
            return y;
        }
        finally { DirectConv.Disabled = saved; }
    }

    private static bool Matches(Case c, int workers) => WorkerCountCollection.With(workers, () =>
    {
        var (x, w, b) = Operands(c);
        var gemm = GemmPathReference.Forward(x, w, b, c.Geometry, c.Relu);
        var tiles = Tiles(c, x, w, b);
        Assert.Equal(gemm.Length, tiles.Length);
        for (int i = 0; i < gemm.Length; i++)
        {
            bool same = float.IsNaN(gemm[i]) ? float.IsNaN(tiles[i]) : BitConverter.SingleToInt32Bits(gemm[i]) == BitConverter.SingleToInt32Bits(tiles[i]);
            if (!same) throw new Xunit.Sdk.XunitException($"{c}, {workers} workers: element {i} is {tiles[i]:R} in tiles, {gemm[i]:R} on the GEMM path.");
        }
        return true;
    });

    private static bool Avx512 => ChannelTileConv.Covers(1, 32);

    [Property(MaxTest = 60)]
    public Property Matches_the_gemm_path_bit_for_bit() =>
        Prop.ForAll(Cases.ToArbitrary(), c => !Avx512 || (Matches(c, 1) && Matches(c, 2)));

    /// <summary>
    /// Shapes large enough for the other splits: ResNet's 7x7 stage at batch 1 (one block, filter panels shared between the
    /// workers), a deep 8x8 layer whose columns take two blocks (blocks shared), 72 filters (a panel of 8), and a batch.
    /// </summary>
    [Theory]
    [InlineData(1, 256, 7, 256, 3, 1)]
    [InlineData(1, 512, 8, 128, 3, 1)]
    [InlineData(1, 96, 9, 72, 3, 2)]
    [InlineData(3, 64, 14, 512, 1, 2)]
    public void Matches_the_gemm_path_on_larger_layers(int n, int c, int size, int f, int k, int stride)
    {
        if (!Avx512) return; // the kernel needs AVX-512: nothing to compare
        var axis = new ConvAxis(size, k, stride, k / 2, k / 2, 1);
        var cs = new Case(n, c, f, axis, axis, Bias: true, Relu: true, Zeros: 5, Nan: false, Seed: size * 1000 + f);
        Assert.True(ChannelTileConv.Worth(axis.Out * axis.Out, f));
        Assert.True(Matches(cs, 1));
        Assert.True(Matches(cs, 2));
    }

    [Fact]
    public void Takes_few_positions_for_many_filters_and_not_the_others()
    {
        Assert.True(ChannelTileConv.Worth(49, 512));    // ResNet-18's 7x7 stage
        Assert.True(ChannelTileConv.Worth(16, 32));
        Assert.False(ChannelTileConv.Worth(196, 256));  // its 14x14 stage: measured even, left to the GEMM
        Assert.False(ChannelTileConv.Worth(225, 64));   // keras-cifar's 15x15 layers: measured slower
        Assert.False(ChannelTileConv.Worth(17, 32));
        Assert.False(ChannelTileConv.Covers(2, 64));    // groups
        Assert.False(ChannelTileConv.Covers(1, 31));    // less than a panel of filters
    }
}
