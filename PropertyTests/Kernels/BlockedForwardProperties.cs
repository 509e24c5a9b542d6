using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The training forward pass on the blocked kernel (<see cref="BlockedForward"/>: NCHW in, NCHW out, each item transposed
/// on the way out) against the GEMM path, bit for bit: input channels 1-5 or 16-48, kernels 1/3/5, strides 1 and 2 (and 3
/// vertically), padding 0-2 on either side (the bordered copy), widths that leave ragged tiles and items, 32-96 filters,
/// batches of 1 (items split between the workers) to 5 (images split), bias or none, ReLU, and zeros of both signs and a
/// NaN in the input; every output element written; on one worker and two, and on the AVX2 tile.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class BlockedForwardProperties
{
    public sealed record Case(int N, int C, int F, ConvAxis H, ConvAxis W, bool Bias, bool Relu, bool Nan, int Seed)
    {
        public ConvGeometry Geometry => ConvGeometry.Create(new[] { H.K, W.K }, new[] { H.S, W.S }, new[] { H.PadBegin, W.PadBegin },
            new[] { H.PadEnd, W.PadEnd });
    }

    private static Gen<ConvAxis> Axis(int maxSize, Gen<int> stride) =>
        from k in Gen.Elements(1, 3, 5)
        from s in stride
        from begin in Gen.Choose(0, 2)
        from end in Gen.Choose(0, 2)
        from size in Gen.Choose(Math.Max(1, k - begin - end), maxSize)
        select new ConvAxis(size, k, s, begin, end, 1);

    private static Gen<Case> Cases =>
        from h in Axis(12, Gen.Elements(1, 2, 3))
        from w in Axis(30, Gen.Elements(1, 2))
        from c in Gen.Frequency((1, Gen.Choose(1, 5)), (2, Gen.Elements(16, 32, 48)))
        from f in Gen.Elements(32, 64, 96)
        from n in Gen.Frequency((1, Gen.Constant(1)), (2, Gen.Choose(2, 5)))
        from bias in Gen.Elements(true, false)
        from relu in Gen.Elements(true, false)
        from nan in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
        from seed in Gen.Choose(0, 1_000_000_000)
        select new Case(n, c, f, h, w, bias, relu, nan, seed);

    private static (Tensor X, Tensor W, Tensor? B) Operands(Case c)
    {
        var rng = new Random(c.Seed);
        float[] Values(int count)
        {
            var v = new float[count];
            for (int i = 0; i < count; i++) v[i] = rng.Next(5) == 0 ? (rng.Next(2) == 0 ? 0f : -0f) : (float)(rng.NextDouble() * 2 - 1);
            return v;
        }
        var x = Values(c.N * c.C * c.H.Size * c.W.Size);
        if (c.Nan) x[rng.Next(x.Length)] = float.NaN;
        return (Tensor.FromArray(x, c.N, c.C, c.H.Size, c.W.Size), Tensor.FromArray(Values(c.F * c.C * c.H.K * c.W.K), c.F, c.C, c.H.K, c.W.K),
            c.Bias ? Tensor.FromArray(Values(c.F), c.F) : null);
    }

    /// <summary>The GEMM path: the blocked and direct kernels off (each would take some of these shapes).</summary>
    private static float[] Gemm(Case c, Tensor x, Tensor w, Tensor? b)
    {
        var (direct, blocked) = (DirectConv.Disabled, BlockedForward.Disabled);
        (DirectConv.Disabled, BlockedForward.Disabled) = (true, true);
        try { return ConvKernel.Forward(x, w, b, c.Geometry, GemmInstructionSet.Auto, c.Relu, packedWeights: null).ToArray(); }
        finally { (DirectConv.Disabled, BlockedForward.Disabled) = (direct, blocked); }
    }

    /// <summary>The blocked path, into an output filled beforehand with a value no element has, so an unwritten one shows.</summary>
    private static float[] Blocked(Case c, Tensor x, Tensor w, Tensor? b)
    {
        var y = new float[c.N * c.F * c.H.Out * c.W.Out];
        Array.Fill(y, 12345.5f);
        BlockedForward.For(x.Shape, c.Geometry, c.F, c.Relu).Run(x, w, b, y);
        return y;
    }

    private static bool SameBits(float a, float b) => float.IsNaN(a) ? float.IsNaN(b) : BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b);

    private static bool Matches(Case c, int workers) => WorkerCountCollection.With(workers, () =>
    {
        var (x, w, b) = Operands(c);
        var gemm = Gemm(c, x, w, b);
        var blocked = Blocked(c, x, w, b);
        for (int i = 0; i < gemm.Length; i++)
            if (!SameBits(gemm[i], blocked[i]))
                throw new Xunit.Sdk.XunitException($"{c}, {workers} workers: element {i} is {blocked[i]:R} blocked, {gemm[i]:R} on the GEMM path.");
        return true;
    });

    private static bool Runs => BlockedConv.Available;

    [Property(MaxTest = 60)]
    public Property Matches_the_gemm_path_bit_for_bit_on_one_and_two_workers() =>
        Prop.ForAll(Cases.ToArbitrary(), c => !Runs || (Matches(c, 1) && Matches(c, 2)));

    [Property(MaxTest = 40)]
    public Property Matches_the_gemm_path_bit_for_bit_on_the_avx2_tile() =>
        Prop.ForAll(Cases.ToArbitrary(), c => !Runs || !Vector256Paths.Supported || Vector256Paths.With(() => Matches(c, 1) && Matches(c, 2)));

    /// <summary>
    /// One thread's convolution of a shape, kept between calls, with new weights each call; between them a padded layer of
    /// another shape whose interior overlaps the first one's border in the thread's bordered buffer (so a border left
    /// unzeroed shows). keras-cifar's and resnet-mini's layers, at batch 1 and 4.
    /// </summary>
    [Theory]
    [InlineData(4, 32, 15, 64, 3, 1, 0)]
    [InlineData(1, 64, 15, 64, 3, 1, 1)]
    [InlineData(4, 16, 32, 32, 3, 2, 1)]
    [InlineData(4, 32, 16, 64, 1, 2, 0)]
    public void Keeps_each_shape_and_takes_each_calls_weights(int n, int ch, int size, int f, int k, int stride, int pad)
    {
        if (!Runs) return; // the kernel needs AVX-512 or AVX2: nothing to compare
        var axis = new ConvAxis(size, k, stride, pad, pad, 1);
        var other = new ConvAxis(size + 3, 3, 1, 2, 2, 1);
        for (int seed = 1; seed <= 3; seed++)
        {
            Assert.True(Matches(new Case(n, ch, f, axis, axis, true, seed == 2, false, seed), 2));
            Assert.True(Matches(new Case(n, ch, 32, other, other, false, false, false, seed), 2));
        }
    }

    /// <summary>keras-cifar's 13x13 layer, which the training forward gives the blocked path, has the GEMM path's bits through the public entry point.</summary>
    [Fact]
    public void The_public_forward_gives_the_gemm_paths_bits_on_a_layer_the_blocked_path_takes()
    {
        if (!Runs) return;
        var axis = new ConvAxis(15, 3, 1, 0, 0, 1);
        var c = new Case(8, 32, 64, axis, axis, true, true, false, 7);
        var (x, w, b) = Operands(c);
        var on = ConvKernel.Forward(x, w, b, c.Geometry).ToArray();
        Assert.True(BlockedForward.Covers(c.Geometry, c.F));
        Assert.Equal(on, Gemm(c with { Relu = false }, x, w, b));
    }
}
