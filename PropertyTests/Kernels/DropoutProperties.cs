using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>
/// Dropout's own properties: its randomness cannot be compared with LibTorch's generator, so the mask is checked for what
/// it must be (values, drop rate, reproducibility) and the output and pullback for being exactly x*mask and dy*mask.
/// </summary>
public sealed class DropoutProperties
{
    /// <summary>Shapes of rank 1..4 (each axis 1..9), a drop probability in [0, 0.95] (0 one case in eight), a seed.</summary>
    private static readonly Arbitrary<(int[] Dims, float P, int Seed)> Small =
        (from rank in Gen.Choose(1, 4)
         from dims in Gen.ArrayOf(Gen.Choose(1, 9), rank)
         from p in Gen.Frequency((1, Gen.Constant(0f)), (7, Gen.Choose(1, 95).Select(i => i / 100f)))
         from seed in Gen.Choose(0, 1_000_000_000)
         select (dims, p, seed)).ToArbitrary();

    /// <summary>20k-60k elements and p in [0.01, 0.99].</summary>
    private static readonly Arbitrary<(int Count, float P, int Seed)> Large =
        (from count in Gen.Choose(20_000, 60_000)
         from p in Gen.Choose(1, 99).Select(i => i / 100f)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (count, p, seed)).ToArbitrary();

    /// <summary>Every mask element is exactly 0 or 1f/(1f - p), and the output is exactly x * mask (one float product each).</summary>
    [Property(MaxTest = 100)]
    public Property Mask_is_zero_or_the_inverse_keep_rate_and_output_is_x_times_mask() => Prop.ForAll(Small, s =>
    {
        var x = RandomTensor(new Random(s.Seed), 3f, s.Dims);
        var r = DropoutKernel.Forward(x, s.P, new Random(s.Seed + 1));
        Assert.Equal(x.Shape, r.Mask.Shape);
        Assert.Equal(x.Shape, r.Output.Shape);
        float keep = 1f / (1f - s.P);
        for (int i = 0; i < x.Size; i++)
        {
            Assert.True(r.Mask[i] == 0f || r.Mask[i] == keep, $"mask element {i} is {r.Mask[i]:R}; expected 0 or {keep:R}.");
            Assert.Equal(x[i] * r.Mask[i], r.Output[i]);
        }
        if (s.P == 0f) Assert.All(r.Mask.ToArray(), m => Assert.Equal(1f, m));
    });

    /// <summary>
    /// The number dropped is Binomial(n, p): within 6 standard deviations of n*p (a false failure has probability about
    /// 2e-9 per case), while a kernel that used p as the keep rate, or never dropped, misses by hundreds of deviations.
    /// </summary>
    [CnnProperty]
    public Property Drop_fraction_is_within_a_binomial_bound_of_p() => Prop.ForAll(Large, s =>
    {
        var x = Tensor.Full(new Shape(s.Count), 1f);
        var r = DropoutKernel.Forward(x, s.P, new Random(s.Seed));
        int dropped = r.Mask.ToArray().Count(m => m == 0f);
        double mean = s.Count * (double)s.P, sd = Math.Sqrt(s.Count * (double)s.P * (1 - s.P));
        Assert.True(Math.Abs(dropped - mean) <= 6 * sd + 1, $"{dropped} of {s.Count} dropped at p = {s.P}; expected {mean:F0} +- {6 * sd:F0}.");
    });

    /// <summary>The same seed gives the same mask; another seed gives another (for 20k+ elements with 1% &lt;= p &lt;= 99%, equal masks are impossible in practice).</summary>
    [CnnProperty]
    public Property Same_seed_same_mask_other_seed_other_mask() => Prop.ForAll(Large, s =>
    {
        var x = Tensor.Full(new Shape(s.Count), 1f);
        var a = DropoutKernel.Forward(x, s.P, new Random(s.Seed)).Mask.ToArray();
        var b = DropoutKernel.Forward(x, s.P, new Random(s.Seed)).Mask.ToArray();
        var c = DropoutKernel.Forward(x, s.P, new Random(s.Seed + 1)).Mask.ToArray();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    });

    /// <summary>
    /// The documented generator, written out independently: the key is 8 bytes of <c>Random.NextBytes</c>
    /// (little-endian); element i is dropped when the top 31 bits of SplitMix64's output i + 1 from that key are below
    /// ceil(p * 2^31).
    /// </summary>
    internal static float[] ReferenceMask(int count, float p, Random rng)
    {
        var bytes = new byte[8];
        rng.NextBytes(bytes);
        ulong key = BitConverter.ToUInt64(bytes);
        long threshold = (long)Math.Ceiling(p * 2147483648.0);
        float keep = 1f / (1f - p);
        var mask = new float[count];
        ulong state = key;
        for (int i = 0; i < count; i++)
        {
            unchecked
            {
                state += 0x9E3779B97F4A7C15UL;
                ulong z = state;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                z ^= z >> 31;
                mask[i] = (long)(z >> 33) < threshold ? 0f : keep;
            }
        }
        return mask;
    }

    /// <summary>
    /// The vector paths (and the chunks of large masks) give exactly the scalar definition, at every length modulo the
    /// vector widths; a large case (past the parallel threshold, odd length) is included every time.
    /// </summary>
    [CnnProperty]
    public Property Mask_is_the_documented_counter_based_generator() => Prop.ForAll(
        (from count in Gen.Frequency((6, Gen.Choose(1, 300)), (1, Gen.Choose(100_000, 400_000)))
         from p in Gen.Choose(1, 99).Select(i => i / 100f)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (count, p, seed)).ToArbitrary(), s =>
    {
        var x = RandomTensor(new Random(s.seed), 2f, s.count);
        var r = DropoutKernel.Forward(x, s.p, new Random(s.seed + 7));
        var expected = ReferenceMask(s.count, s.p, new Random(s.seed + 7));
        Assert.Equal(expected, r.Mask.ToArray());
        for (int i = 0; i < s.count; i++) Assert.Equal(x[i] * expected[i], r.Output[i]);
    });

    [Fact]
    public void A_large_mask_is_the_documented_generator_too() =>
        Assert.Equal(ReferenceMask(1_000_003, 0.37f, new Random(5)), DropoutKernel.Forward(Tensor.Zeros(1_000_003), 0.37f, new Random(5)).Mask.ToArray());

    /// <summary>
    /// Neighbouring elements (in a lane, across lanes and across vectors) are independent: the number of adjacent pairs both
    /// dropped is within 6 standard deviations of (n-1)p^2 (variance of a sum of overlapping pair indicators:
    /// n(p^2(1-p^2) + 2(p^3 - p^4))), and so are pairs 8 and 16 apart (a vector's width).
    /// </summary>
    [CnnProperty]
    public Property Neighbouring_drops_are_independent() => Prop.ForAll(Large, s =>
    {
        var m = DropoutKernel.Forward(Tensor.Full(new Shape(s.Count), 1f), s.P, new Random(s.Seed)).Mask.ToArray();
        double p = s.P;
        foreach (int gap in new[] { 1, 8, 16 })
        {
            int pairs = s.Count - gap, both = 0;
            for (int i = 0; i < pairs; i++) if (m[i] == 0f && m[i + gap] == 0f) both++;
            double mean = pairs * p * p, sd = Math.Sqrt(pairs * (p * p * (1 - p * p) + 2 * (p * p * p - p * p * p * p)));
            Assert.True(Math.Abs(both - mean) <= 6 * sd + 1, $"gap {gap}: {both} of {pairs} pairs both dropped at p = {s.P}; expected {mean:F0} +- {6 * sd:F0}.");
        }
    });

    /// <summary>The mask of a tensor is the start of the mask of a longer one drawn with the same seed, whatever the shape.</summary>
    [Fact]
    public void A_shorter_mask_is_a_prefix_of_a_longer_one()
    {
        var a = DropoutKernel.Forward(Tensor.Zeros(3, 5, 7), 0.5f, new Random(9)).Mask.ToArray();
        var b = DropoutKernel.Forward(Tensor.Zeros(1000), 0.5f, new Random(9)).Mask.ToArray();
        Assert.Equal(b.Take(a.Length), a);
    }

    /// <summary>The pullback is exactly dy * mask.</summary>
    [Property(MaxTest = 100)]
    public Property Backward_is_dy_times_mask() => Prop.ForAll(Small, s =>
    {
        var rng = new Random(s.Seed);
        var x = RandomTensor(rng, 1f, s.Dims);
        var dy = RandomTensor(rng, 1f, s.Dims);
        var r = DropoutKernel.Forward(x, s.P, rng);
        var dx = DropoutKernel.Backward(dy, r.Mask);
        Assert.Equal(dy.Shape, dx.Shape);
        for (int i = 0; i < dy.Size; i++) Assert.Equal(dy[i] * r.Mask[i], dx[i]);
    });

    [Fact]
    public void Zero_probability_is_the_identity()
    {
        var x = RandomTensor(new Random(1), 1f, 2, 3, 4);
        var r = DropoutKernel.Forward(x, 0f, new Random(2));
        Exact(r.Output, x, "dropout p = 0");
    }

    [Theory]
    [InlineData(1f)]
    [InlineData(-0.1f)]
    [InlineData(1.5f)]
    [InlineData(float.NaN)]
    public void Rejects_a_probability_outside_zero_to_one(float p)
    {
        var e = Assert.Throws<CnnException>(() => DropoutKernel.Forward(Tensor.Zeros(2, 2), p, new Random(0)));
        Assert.Contains("[0, 1)", e.Message);
    }

    [Fact]
    public void Backward_rejects_a_gradient_of_another_shape() =>
        Assert.Throws<ShapeException>(() => DropoutKernel.Backward(Tensor.Zeros(2, 3), Tensor.Zeros(3, 2)));
}

/// <summary>Dropout masks do not depend on the batch-parallel worker count (large masks are filled in chunks).</summary>
[Collection(WorkerCountCollection.Name)]
public sealed class DropoutWorkerCountTests
{
    [Fact]
    public void The_mask_is_the_same_for_any_worker_count()
    {
        var x = RandomTensor(new Random(3), 1f, 64, 32, 16, 16 + 1);
        var one = WorkerCountCollection.With(1, () => DropoutKernel.Forward(x, 0.25f, new Random(4)));
        foreach (int workers in new[] { 2, 3, 5 })
        {
            var other = WorkerCountCollection.With(workers, () => DropoutKernel.Forward(x, 0.25f, new Random(4)));
            Assert.Equal(one.Mask.ToArray(), other.Mask.ToArray());
            Assert.Equal(one.Output.ToArray(), other.Output.ToArray());
        }
        Assert.Equal(DropoutProperties.ReferenceMask(x.Size, 0.25f, new Random(4)), one.Mask.ToArray());
    }
}
