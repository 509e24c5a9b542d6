using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The 2x2 stride-2 pooling kernel (<see cref="Pool2x2{TOp}"/>) against the general loops it stands in for, bit for bit:
/// max pooling's values (<see cref="MaxPool2dKernel.ForwardValues"/>) against <see cref="MaxPool2dKernel.Forward(Tensor, Window2d, bool)"/>'s
/// output, average pooling against its own general loop. Rows narrower than, as wide as and wider than a step's sixteen
/// windows, odd sizes (a last row or column no window covers), ceil mode (whose odd sizes leave the kernel), and data with
/// ties, signed zeros, infinities and NaNs of several payloads, where the order of the comparisons and the zeros of the
/// sums decide the bits (max pooling keeps the winning NaN's payload exactly; see <see cref="SameBits"/> for the average).
/// </summary>
public sealed class Pool2x2Properties
{
    private static readonly float[] Hard =
        [0f, -0f, 1f, -1f, 2f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, BitConverter.Int32BitsToSingle(0x7fc00123), -float.NaN];

    internal static readonly Gen<(int N, int C, int H, int W, bool Ceil, bool HardData, int Seed)> Cases =
        from n in Gen.Choose(1, 3)
        from c in Gen.Choose(1, 4)
        from h in Gen.Choose(2, 20)
        from w in Gen.OneOf(Gen.Choose(2, 12), Gen.Choose(30, 34), Gen.Choose(60, 70))
        from ceil in Gen.Elements(false, true)
        from hard in Gen.Elements(false, true)
        from seed in Gen.Choose(0, int.MaxValue)
        select (n, c, h, w, ceil, hard, seed);

    internal static Tensor Input((int N, int C, int H, int W, bool Ceil, bool HardData, int Seed) c)
    {
        var rng = new Random(c.Seed);
        var data = new float[c.N * c.C * c.H * c.W];
        for (int i = 0; i < data.Length; i++) data[i] = c.HardData ? Hard[rng.Next(Hard.Length)] : (float)(rng.NextDouble() * 2 - 1);
        return Tensor.FromArray(data, new Shape(c.N, c.C, c.H, c.W));
    }

    /// <summary>
    /// Equal bits; with <paramref name="anyNaN"/>, NaNs of any payload are equal: a sum of two NaNs keeps one operand's
    /// payload, and which one the JIT puts first in a commutative add of the general loop is its choice, not the kernel's.
    /// </summary>
    internal static void SameBits(Tensor expected, Tensor actual, bool anyNaN = false)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        int Bits(float v) => anyNaN && float.IsNaN(v) ? 0x7fc00000 : BitConverter.SingleToInt32Bits(v);
        Assert.Equal(expected.ToArray().Select(Bits), actual.ToArray().Select(Bits));
    }

    internal static readonly Window2d Pairs = new(2, 2, 2, 2, 0, 0);

    /// <summary>An upstream gradient for average pooling <paramref name="x"/> by <see cref="Pairs"/>, drawn like the input: its first elements.</summary>
    internal static Tensor UpstreamGradient(Tensor x, bool ceil)
    {
        var outShape = AvgPool2dKernel.Forward(x, Pairs, ceil, true, pairs: false).Shape;
        return Tensor.FromArray(x.ToArray()[..outShape.Size], outShape);
    }

    [CnnProperty(200)]
    public Property Max_pooling_values_have_the_bits_of_the_forward_pass() => Prop.ForAll(Cases.ToArbitrary(), c =>
    {
        var x = Input(c);
        SameBits(MaxPool2dKernel.Forward(x, Pairs, c.Ceil).Output, MaxPool2dKernel.ForwardValues(x, Pairs, c.Ceil));
    });

    [CnnProperty(200)]
    public Property Average_pooling_has_the_bits_of_the_general_loop() => Prop.ForAll(Cases.ToArbitrary(), c =>
    {
        var x = Input(c);
        SameBits(AvgPool2dKernel.Forward(x, Pairs, c.Ceil, true, pairs: false), AvgPool2dKernel.Forward(x, Pairs, c.Ceil, true), anyNaN: true);
    });

    /// <summary>
    /// The backward pass's 2x2 spread against the general loop, on upstream gradients drawn like the inputs (signed zeros,
    /// where the general loop's clear-then-add turns -0 into +0, infinities, NaNs).
    /// </summary>
    [CnnProperty(200)]
    public Property Average_pooling_backward_has_the_bits_of_the_general_loop() => Prop.ForAll(Cases.ToArbitrary(), c =>
    {
        var x = Input(c);
        var dy = UpstreamGradient(x, c.Ceil);
        SameBits(AvgPool2dKernel.Backward(dy, x.Shape, Pairs, c.Ceil, true, pairs: false), AvgPool2dKernel.Backward(dy, x.Shape, Pairs, c.Ceil, true), anyNaN: true);
    });

    [Fact]
    public void Other_windows_give_the_forward_pass_values()
    {
        var x = Input((2, 3, 9, 11, false, true, 5));
        foreach (var g in new[] { new Window2d(3, 3, 2, 2, 1, 1), new Window2d(2, 2, 1, 1, 0, 0), new Window2d(2, 2, 2, 2, 1, 1) })
            SameBits(MaxPool2dKernel.Forward(x, g, true).Output, MaxPool2dKernel.ForwardValues(x, g, true));
    }

    [Fact]
    public void A_bad_input_is_refused_as_by_the_forward_pass() =>
        Assert.Contains("MaxPool2d", Assert.Throws<ShapeException>(() => MaxPool2dKernel.ForwardValues(Tensor.Zeros(1, 2, 3), Pairs, false)).Message);
}
