using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;

namespace Cnn.Tests.Kernels;

/// <summary>One random convolution problem: NCHW input, F filters, a window, and the seed of its data.</summary>
public sealed record ConvCase(int N, int C, int F, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, bool Bias, int Seed)
{
    /// <summary>The window.</summary>
    public Window2d Window => new(KH, KW, SH, SW, PH, PW);

    /// <summary>Output height (floored).</summary>
    public int OH => Window.OutH(H);

    /// <summary>Output width (floored).</summary>
    public int OW => Window.OutW(W);

    /// <summary>Whether this is the 1x1, stride-1, unpadded case that skips im2col.</summary>
    public bool Pointwise => KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0;

    /// <summary>Whether the window leaves input rows or columns unused (floored output size).</summary>
    public bool DoesNotTile => (H + 2 * PH - KH) % SH != 0 || (W + 2 * PW - KW) % SW != 0;

    /// <summary>
    /// Batches 1..5, channels and filters 1..5, kernels 1..4 on each axis independently (so mostly non-square),
    /// strides 1..3, padding 0..2 (possibly wider than the kernel, so some windows see only padding), input sizes from
    /// the smallest that fits up to 11 (so strided windows often do not tile); one case in four is a 1x1 convolution
    /// with stride 1 and no padding, which takes the no-im2col path.
    /// </summary>
    public static Gen<ConvCase> Generator { get; } = Gen.Frequency(
        (3, General()),
        (1, from n in Gen.Choose(1, 5)
            from c in Gen.Choose(1, 5)
            from f in Gen.Choose(1, 5)
            from h in Gen.Choose(1, 9)
            from w in Gen.Choose(1, 9)
            from bias in Gen.Elements(true, false)
            from seed in Gen.Choose(0, 1_000_000_000)
            select new ConvCase(n, c, f, h, w, 1, 1, 1, 1, 0, 0, bias, seed)));

    /// <summary>The arbitrary of <see cref="Generator"/> (no shrinking: the case prints in full on failure).</summary>
    public static Arbitrary<ConvCase> Arbitrary { get; } = Generator.ToArbitrary();

    private static Gen<ConvCase> General() =>
        from n in Gen.Choose(1, 5)
        from c in Gen.Choose(1, 5)
        from f in Gen.Choose(1, 5)
        from kh in Gen.Choose(1, 4)
        from kw in Gen.Choose(1, 4)
        from sh in Gen.Choose(1, 3)
        from sw in Gen.Choose(1, 3)
        from ph in Gen.Choose(0, 2)
        from pw in Gen.Choose(0, 2)
        from h in Gen.Choose(Math.Max(1, kh - 2 * ph), 11)
        from w in Gen.Choose(Math.Max(1, kw - 2 * pw), 11)
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ConvCase(n, c, f, h, w, kh, kw, sh, sw, ph, pw, bias, seed);
}
