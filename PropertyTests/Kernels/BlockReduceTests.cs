using Cnn.Core;
using Cnn.Core.Filtering;
using FsCheck;
using FsCheck.Fluent;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>
/// One random block reduction: an <c>[H, W]</c> array (0..13 each way, so empty arrays, blocks larger than the array and
/// sizes the block does not divide all occur), the block, the padding (null: neutral; else scikit-image's cval), and
/// whether every value is negative (where a cval of 0 changes a maximum).
/// </summary>
public sealed record BlockCase(int H, int W, int BH, int BW, float? Pad, bool Negative, int Seed)
{
    /// <summary>Sizes 0..13, blocks 1..6, padding neutral (half the time), 0, -inf or 0.75.</summary>
    public static Gen<BlockCase> Generator { get; } =
        from h in Gen.Frequency((1, Gen.Constant(0)), (12, Gen.Choose(1, 13)))
        from w in Gen.Frequency((1, Gen.Constant(0)), (12, Gen.Choose(1, 13)))
        from bh in Gen.Choose(1, 6)
        from bw in Gen.Choose(1, 6)
        from pad in Gen.Frequency((3, Gen.Constant<float?>(null)), (1, Gen.Elements<float?>(0f, float.NegativeInfinity, 0.75f)))
        from negative in Gen.Elements(false, true)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new BlockCase(h, w, bh, bw, pad, negative, seed);

    /// <summary>Uniform values in [-1, 1), or in [-2, -1) when <see cref="Negative"/>.</summary>
    public Tensor Input()
    {
        var x = Uniform(new Random(Seed), H * W);
        if (Negative) for (int i = 0; i < x.Length; i++) x[i] = -1.5f + 0.5f * x[i];
        return Tensor.FromArray(x, H, W);
    }
}

/// <summary>
/// BlockReduce.Max and Mean against a plain reference written the way scikit-image states it (pad the array at the
/// end to a multiple of the block with the constant, then reduce every whole block; "neutral" padding marks the padded
/// cells and leaves them out), and hand-computed cases including scikit-image's own examples.
/// </summary>
public sealed class BlockReduceTests
{
    private static readonly Arbitrary<BlockCase> Cases = BlockCase.Generator.ToArbitrary();

    /// <summary>The reference: pad explicitly, then reduce each whole padded block, skipping marked cells when neutral.</summary>
    private static Tensor Reference(Tensor x, int bh, int bw, float? pad, bool mean)
    {
        int h = x.Shape[0], w = x.Shape[1];
        int ph = (h + bh - 1) / bh * bh, pw = (w + bw - 1) / bw * bw;
        var padded = new float[ph * pw];
        var real = new bool[ph * pw];
        for (int i = 0; i < ph; i++)
            for (int j = 0; j < pw; j++)
            {
                bool inside = i < h && j < w;
                padded[i * pw + j] = inside ? x[i * w + j] : pad ?? 0f;
                real[i * pw + j] = inside || pad is not null;
            }
        int oh = ph / bh, ow = pw / bw;
        var y = new float[oh * ow];
        for (int by = 0; by < oh; by++)
            for (int bx = 0; bx < ow; bx++)
            {
                double sum = 0;
                int count = 0;
                float max = float.NegativeInfinity;
                for (int i = by * bh; i < (by + 1) * bh; i++)
                    for (int j = bx * bw; j < (bx + 1) * bw; j++)
                    {
                        if (!real[i * pw + j]) continue;
                        float v = padded[i * pw + j];
                        sum += v;
                        count++;
                        max = float.IsNaN(max) || v > max || float.IsNaN(v) ? (float.IsNaN(max) ? max : v) : max;
                    }
                y[by * ow + bx] = mean ? (float)(sum / count) : max;
            }
        return Tensor.FromArray(y, oh, ow);
    }

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = BlockCase.Generator.Sample(2000, 50);
        Assert.Contains(cases, c => c.H == 0 || c.W == 0);
        Assert.Contains(cases, c => c.H > 0 && c.H < c.BH);
        Assert.Contains(cases, c => c.H % c.BH != 0 && c.W % c.BW != 0 && c.Pad is null && c.Negative);
        Assert.Contains(cases, c => c.H % c.BH == 0 && c.W % c.BW == 0 && c.H > 0);
        Assert.Contains(cases, c => c.Pad == 0f && c.Negative && c.W % c.BW != 0);
    }

    /// <summary>A maximum only selects: bitwise equal to the reference.</summary>
    [CnnProperty]
    public Property Max_matches_the_padded_reference() => Prop.ForAll(Cases, c =>
    {
        var x = c.Input();
        Exact(BlockReduce.Max(x, c.BH, c.BW, c.Pad), Reference(x, c.BH, c.BW, c.Pad, mean: false), "block max");
    });

    /// <summary>
    /// Both sum at most 36 floats in double, in different orders (the kernel adds the padding last), and round once:
    /// |a-b| &lt;= 1e-7 + 1e-6 max|b|. With a -inf pad both give -inf in partial blocks, which Close accepts as equal.
    /// </summary>
    [CnnProperty]
    public Property Mean_matches_the_padded_reference() => Prop.ForAll(Cases.Filter(c => c.Pad is null || float.IsFinite(c.Pad.Value)), c =>
    {
        var x = c.Input();
        Close(BlockReduce.Mean(x, c.BH, c.BW, c.Pad), Reference(x, c.BH, c.BW, c.Pad, mean: true), 1e-7, 1e-6, "block mean");
    });

    private static Tensor Arange(int h, int w, float offset = 0f, float sign = 1f) =>
        Tensor.FromArray(Enumerable.Range(0, h * w).Select(i => sign * (i + offset)).ToArray(), h, w);

    [Fact]
    public void Divisible_blocks_match_scikit_image_documented_means()
    {
        // skimage's test: block_reduce(np.arange(24).reshape(4, 6), (2, 3), np.mean) == [[4, 7], [16, 19]].
        var x = Arange(4, 6);
        foreach (float? pad in new float?[] { null, 0f, 5f })
            Assert.Equal(new[] { 4f, 7f, 16f, 19f }, BlockReduce.Mean(x, 2, 3, pad).ToArray());
        Assert.Equal(new[] { 8f, 11f, 20f, 23f }, BlockReduce.Max(x, 2, 3).ToArray());
    }

    [Fact]
    public void Partial_blocks_with_scikit_image_default_padding()
    {
        // skimage's test: block_reduce(np.arange(40).reshape(5, 8), (3, 3)) (sum, cval 0) == [[81, 108, 87], [174, 192, 138]];
        // the mean with cval 0 divides each by the block area 9.
        var x = Arange(5, 8);
        var mean = BlockReduce.Mean(x, 3, 3, padValue: 0f);
        Assert.Equal(new Shape(2, 3), mean.Shape);
        Close(mean, Tensor.FromArray(new[] { 81f, 108f, 87f, 174f, 192f, 138f }.Select(s => s / 9f).ToArray(), 2, 3), 0, 1e-7, "cval 0 mean");
        Assert.Equal(new[] { 18f, 21f, 23f, 34f, 37f, 39f }, BlockReduce.Max(x, 3, 3, padValue: 0f).ToArray());
    }

    [Fact]
    public void Partial_blocks_with_neutral_padding_reduce_their_real_elements()
    {
        // The same sums over 9, 9, 6 / 6, 6, 4 real elements.
        var x = Arange(5, 8);
        Assert.Equal(new[] { 9f, 12f, 14.5f, 29f, 32f, 34.5f }, BlockReduce.Mean(x, 3, 3).ToArray());
        Assert.Equal(new[] { 18f, 21f, 23f, 34f, 37f, 39f }, BlockReduce.Max(x, 3, 3).ToArray());
    }

    [Fact]
    public void Negative_values_show_the_difference_the_padding_makes()
    {
        // [[-1, -2, -3], [-4, -5, -6]] in 2x2 blocks: the right block holds only -3 and -6.
        var x = Arange(2, 3, offset: 1f, sign: -1f);
        Assert.Equal(new[] { -1f, -3f }, BlockReduce.Max(x, 2, 2).ToArray());
        Assert.Equal(new[] { -1f, 0f }, BlockReduce.Max(x, 2, 2, padValue: 0f).ToArray());
        Assert.Equal(new[] { -1f, -3f }, BlockReduce.Max(x, 2, 2, padValue: float.NegativeInfinity).ToArray());
        Assert.Equal(new[] { -3f, -4.5f }, BlockReduce.Mean(x, 2, 2).ToArray());
        Assert.Equal(new[] { -3f, -2.25f }, BlockReduce.Mean(x, 2, 2, padValue: 0f).ToArray());
    }

    [Fact]
    public void Unit_blocks_copy_and_one_large_block_reduces_everything()
    {
        var x = RandomTensor(new Random(5), 1f, 3, 4);
        Exact(BlockReduce.Max(x, 1, 1), x, "1x1 max");
        Exact(BlockReduce.Mean(x, 1, 1), x, "1x1 mean");
        var all = BlockReduce.Max(x, 7, 9);
        Assert.Equal(new Shape(1, 1), all.Shape);
        Assert.Equal(x.ToArray().Max(), all[0]);
        Assert.Equal(x.ToArray().Select(v => (double)v).Average(), BlockReduce.Mean(x, 7, 9)[0], 6);
        Assert.Equal(new Shape(0, 2), BlockReduce.Mean(Tensor.Zeros(0, 5), 2, 3).Shape);
    }

    [Fact]
    public void NaN_propagates_to_its_block_only()
    {
        var x = Tensor.FromArray(new[] { 1f, float.NaN, 3f, 4f, 5f, 6f, 7f, 8f }, 2, 4);
        var max = BlockReduce.Max(x, 2, 2).ToArray();
        var mean = BlockReduce.Mean(x, 2, 2).ToArray();
        Assert.True(float.IsNaN(max[0]) && float.IsNaN(mean[0]));
        Assert.Equal(8f, max[1]);
        Assert.Equal(5.5f, mean[1]);
    }

    [Fact]
    public void Rejects_other_ranks_and_empty_blocks()
    {
        var e = Assert.Throws<ShapeException>(() => BlockReduce.Max(Tensor.Zeros(1, 2, 3), 2, 2));
        Assert.Contains("[1, 2, 3]", e.Message);
        var b = Assert.Throws<CnnException>(() => BlockReduce.Mean(Tensor.Zeros(4, 4), 0, 2));
        Assert.Contains("(0, 2)", b.Message);
        Assert.Contains("[4, 4]", b.Message);
    }
}
