using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The rational tanh (<see cref="RationalTanh"/>): its distance from tanh in float64, its special values, and the same bits
/// from the AVX-512, AVX2 and scalar paths, wherever an element falls in the span.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class RationalTanhProperties
{
    /// <summary>The documented bound: 2.9e-7 of tanh, relative (measured 2.87e-7 at most).</summary>
    private const double Bound = 2.9e-7;

    /// <summary>Floats of every scale: ordinary ones, ones near the clamp and the small-argument cut, tiny and subnormal ones, and specials.</summary>
    private static readonly Gen<float> Values = Gen.OneOf(
        Gen.Choose(-2_000_000, 2_000_000).Select(i => i / 100_000f),
        Gen.Choose(-1_000_000, 1_000_000).Select(i => i / 1_000_000f),
        Gen.Choose(-100_000, 100_000).Select(i => 7.99881172180175781f + i / 1_000_000f),
        Gen.Choose(-100_000, 100_000).Select(i => 0.0004f + i / 1e9f),
        Gen.Choose(int.MinValue, int.MaxValue).Select(BitConverter.Int32BitsToSingle),
        Gen.Elements(0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.Epsilon, -float.Epsilon,
            float.MaxValue, float.MinValue, 1e-38f, -1e-38f, 0.0004f, -0.0004f, 7.99881172180175781f, -7.99881172180175781f));

    [CnnProperty(300)]
    public Property Is_within_its_bound_of_tanh() => Prop.ForAll(Values.ArrayOf().ToArbitrary(), xs =>
    {
        var y = new float[xs.Length];
        RationalTanh.Apply(xs, y);
        for (int i = 0; i < xs.Length; i++)
        {
            float x = xs[i];
            if (float.IsNaN(x)) Assert.True(float.IsNaN(y[i]), $"tanh(NaN) = {y[i]}");
            else
            {
                double t = Math.Tanh(x);
                Assert.True(Math.Abs(y[i] - t) <= Bound * Math.Abs(t), $"tanh({x:R}) = {y[i]:R}, float64 {t:R}: {Math.Abs(y[i] - t) / Math.Abs(t):E2} relative");
                Assert.True(Math.Abs(y[i]) <= 1f, $"tanh({x:R}) = {y[i]:R} is outside [-1, 1]");
                Assert.Equal(float.IsNegative(x), float.IsNegative(y[i]));
            }
        }
    });

    [Fact]
    public void Keeps_zero_signs_and_saturates_at_one()
    {
        var y = new float[4];
        RationalTanh.Apply(new[] { 0f, -0f, float.PositiveInfinity, float.NegativeInfinity }, y);
        Assert.Equal(new[] { 0f, -0f, 1f, -1f }, y);
        Assert.True(float.IsNegative(y[1]));
    }

    [CnnProperty(200)]
    public Property Every_width_gives_the_scalar_bits() => Prop.ForAll(Values.ArrayOf().ToArbitrary(), Gen.Choose(0, 15).ToArbitrary(), (xs, skip) =>
    {
        // An offset into the span moves each element to another lane, or into the scalar tail.
        var x = xs.AsSpan(Math.Min(skip, xs.Length));
        var expected = new float[x.Length];
        for (int i = 0; i < x.Length; i++) expected[i] = RationalTanh.Of(x[i]);
        var wide = new float[x.Length];
        RationalTanh.Apply(x, wide);
        Assert.Equal(Bits(expected), Bits(wide));
        if (!Vector256Paths.Supported) return;
        var narrow = new float[x.Length];
        var copy = x.ToArray();
        Vector256Paths.With(() => { RationalTanh.Apply(copy, narrow); return 0; });
        Assert.Equal(Bits(expected), Bits(narrow));
    });

    [Fact]
    public void Runs_in_place()
    {
        var x = Enumerable.Range(-40, 81).Select(i => i / 4f).ToArray();
        var expected = new float[x.Length];
        RationalTanh.Apply(x, expected);
        RationalTanh.Apply(x, x);
        Assert.Equal(Bits(expected), Bits(x));
    }

    /// <summary>The bits of each element, every NaN as one (its payload is not promised).</summary>
    private static int[] Bits(float[] v) => v.Select(f => float.IsNaN(f) ? int.MinValue : BitConverter.SingleToInt32Bits(f)).ToArray();
}
