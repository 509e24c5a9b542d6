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
