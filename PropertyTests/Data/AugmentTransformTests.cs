using Cnn.Core;
using Cnn.Dsl.Data;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Cnn.Tests.Data;

/// <summary>The Keras-style transforms (zoom, shear, fractional shifts, vertical flips, fill modes, brightness, contrast).</summary>
public sealed class AugmentTransformTests
{
    /// <summary>Batches [N, C, H, W] of values in [0, 1].</summary>
    internal static Gen<Tensor> Batches() =>
        from n in Gen.Choose(1, 3)
        from c in Gen.Choose(1, 3)
        from h in Gen.Choose(1, 12)
        from w in Gen.Choose(1, 12)
        from seed in Gen.Choose(0, 99999)
        select Tensor.FromArray(Enumerable.Range(0, n * c * h * w).Select(i => (float)new Random(seed + 7919 * i).NextDouble()).ToArray(), n, c, h, w);

    /// <summary>Options that turn on every transform at a random strength (some at 0), with any fill.</summary>
    private static Gen<AugmentOptions> Options() =>
        from flips in Gen.Choose(0, 3)
        from shift in Gen.Choose(0, 3)
        from rotation in Gen.Choose(0, 45)
        from pad in Gen.Choose(0, 3)
        from fraction in Gen.Choose(0, 30)
        from zoom in Gen.Choose(0, 50)
        from shear in Gen.Choose(0, 40)
        from brightness in Gen.Choose(0, 80)
        from contrast in Gen.Choose(0, 80)
        from fill in Gen.Elements(FillMode.Constant, FillMode.Nearest, FillMode.Reflect, FillMode.Wrap)
        from fillValue in Gen.Elements(0f, 0.5f, -2f)
        select new AugmentOptions((flips & 1) != 0, shift, rotation, pad)
        {
            FlipVertical = (flips & 2) != 0, MaxShiftFraction = fraction / 100f, ZoomRange = zoom / 100f, MaxShearDegrees = shear,
            Brightness = brightness / 100f, Contrast = contrast / 100f, Fill = fill, FillValue = fillValue,
        };

    private static bool Bitwise(Tensor a, Tensor b) =>
        a.Shape == b.Shape && a.ToArray().Select(BitConverter.SingleToInt32Bits).SequenceEqual(b.ToArray().Select(BitConverter.SingleToInt32Bits));

    [CnnProperty]
    public Property EveryTransformKeepsTheShapeIsReproducibleAndStaysInRange() =>
        Prop.ForAll((from x in Batches() from o in Options() from seed in Gen.Choose(0, 9999) select (x, o, seed)).ToArbitrary(), t =>
        {
            var y = Augment.Apply(t.x, t.o, t.seed);
            var v = y.ToArray();
            float lo = t.x.ToArray().Min(), hi = t.x.ToArray().Max();
            // Bilinear sampling takes convex combinations of the input's values and, with the constant mode, the fill value;
            // brightness and contrast clamp to [0, 1], which holds the input.
            if (t.o.Fill == FillMode.Constant && (t.o.MaxShift > 0 || t.o.CropPadding > 0 || t.o.MaxRotationDegrees > 0 || t.o.MaxShiftFraction > 0
                || t.o.ZoomRange > 0 || t.o.MaxShearDegrees > 0))
                (lo, hi) = (Math.Min(lo, t.o.FillValue), Math.Max(hi, t.o.FillValue));
            bool inRange = t.o.Brightness > 0 || t.o.Contrast > 0
                ? v.All(a => a >= 0 && a <= 1)
                : v.All(a => a >= lo - 1e-6f * (1 + Math.Abs(lo)) && a <= hi + 1e-6f * (1 + Math.Abs(hi)));
            return (y.Shape == t.x.Shape).Label("shape")
                .And(Bitwise(y, Augment.Apply(t.x, t.o, t.seed)).Label("determinism"))
                .And(inRange.Label($"range [{lo}, {hi}]: found [{v.Min()}, {v.Max()}]"));
        });

    [CnnProperty]
    public Property AtZeroStrengthEveryTransformGivesTheInputBackBitwise() =>
        Prop.ForAll((from x in Batches() from fill in Gen.Elements(FillMode.Constant, FillMode.Nearest, FillMode.Reflect, FillMode.Wrap)
                     from seed in Gen.Choose(0, 9999) select (x, fill, seed)).ToArbitrary(), t =>
            Bitwise(Augment.Apply(t.x, new AugmentOptions { Fill = t.fill, FillValue = 3 }, t.seed), t.x)
            && Bitwise(Augment.Affine(t.x, fill: t.fill, fillValue: 3), t.x)
            && Bitwise(Augment.Brightness(t.x, 1), t.x) && Bitwise(Augment.Contrast(t.x, 1), t.x)
            && Bitwise(Augment.FlipVertical(Augment.FlipVertical(t.x)), t.x)
            && Bitwise(Augment.Affine(t.x, zoomX: 1, zoomY: 1, shearDegrees: 0, dx: 0, dy: 0, fill: t.fill), t.x));

    /// <summary>The rotation as it was written before the one sampler: its results must keep their bits.</summary>
    private static float[] RotateAsBefore(Tensor images, float degrees)
    {
        int h = images.Shape[-2], w = images.Shape[-1], planes = images.Size / (h * w);
        var src = images.ToArray();
        var d = new float[images.Size];
        double a = degrees * Math.PI / 180, cos = Math.Cos(a), sin = Math.Sin(a);
        double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double u = x - cx, v = y - cy;
                double sx = cos * u - sin * v + cx, sy = sin * u + cos * v + cy;
                int x0 = (int)Math.Floor(sx), y0 = (int)Math.Floor(sy);
                float fx = (float)(sx - x0), fy = (float)(sy - y0);
                for (int p = 0; p < planes; p++)
                {
                    int b = p * h * w;
                    float At(int yy, int xx) => (uint)yy < (uint)h && (uint)xx < (uint)w ? src[b + yy * w + xx] : 0f;
                    float top = At(y0, x0) * (1 - fx) + (fx == 0 ? 0 : At(y0, x0 + 1) * fx);
                    float bottom = fy == 0 ? 0 : At(y0 + 1, x0) * (1 - fx) + (fx == 0 ? 0 : At(y0 + 1, x0 + 1) * fx);
                    d[b + y * w + x] = top * (1 - fy) + bottom * fy;
                }
            }
        return d;
    }

    [CnnProperty]
    public Property RotationKeepsItsResultsAndWholePixelMovesAndFlipsAreExactCopies() =>
        Prop.ForAll((from x in Batches() from deg in Gen.Choose(-1800, 1800) from seed in Gen.Choose(0, 9999)
                     from shift in Gen.Choose(0, 3) from pad in Gen.Choose(0, 3) select (x, deg, seed, shift, pad)).ToArbitrary(), t =>
        {
            var rotated = Augment.Rotate(t.x, t.deg / 10f).ToArray();
            bool sameRotation = rotated.Select(BitConverter.SingleToInt32Bits).SequenceEqual(RotateAsBefore(t.x, t.deg / 10f).Select(BitConverter.SingleToInt32Bits));
            // With flips and one kind of whole-pixel move, each image is one of the exact candidates Flip?(Shift(x, dx, dy)).
            var o = t.seed % 2 == 0 ? new AugmentOptions(FlipHorizontal: true, MaxShift: t.shift) { FlipVertical = true }
                : new AugmentOptions(FlipHorizontal: true, CropPadding: t.pad) { FlipVertical = true };
            int reach = Math.Max(t.shift, t.pad), n = t.x.Shape[0];
            var y = Augment.Apply(t.x, o, t.seed);
            bool allCandidates = Enumerable.Range(0, n).All(i =>
            {
                var image = t.x.Slice(i, 1);
                var got = y.Slice(i, 1);
                return (from dx in Enumerable.Range(-reach, 2 * reach + 1)
                        from dy in Enumerable.Range(-reach, 2 * reach + 1)
                        from fh in new[] { false, true }
                        from fv in new[] { false, true }
                        let s = Augment.Shift(image, dx, dy)
                        select fv ? Augment.FlipVertical(fh ? Augment.FlipHorizontal(s) : s) : fh ? Augment.FlipHorizontal(s) : s)
                    .Any(c => Bitwise(c, got));
            });
            return sameRotation.Label("rotation's bits").And(allCandidates.Label("whole-pixel candidates"));
        });

    [Fact]
    public void FillModesReadOutsideTheImageAsKerasDescribesThem()
    {
        // The row a b c d = 1 2 3 4, moved two pixels right: what comes in from the left is the fill.
        var row = Tensor.FromArray([1, 2, 3, 4], 1, 4);
        Assert.Equal([9f, 9, 1, 2], Augment.Affine(row, dx: 2, fillValue: 9).ToArray());
        Assert.Equal([1f, 1, 1, 2], Augment.Affine(row, dx: 2, fill: FillMode.Nearest).ToArray());
        Assert.Equal([2f, 1, 1, 2], Augment.Affine(row, dx: 2, fill: FillMode.Reflect).ToArray());
        Assert.Equal([3f, 4, 1, 2], Augment.Affine(row, dx: 2, fill: FillMode.Wrap).ToArray());
        Assert.Equal([4f, 3, 2, 1, 1, 2, 3, 4], Enumerable.Range(-3, 8).Select(d => Augment.Affine(row, dx: d, fill: FillMode.Reflect)[0]).ToArray());
        // Half a pixel right, bilinear: each value is the mean of two neighbours (the fill 0 from outside).
        Assert.Equal([0.5f, 1.5f, 2.5f, 3.5f], Augment.Affine(row, dx: 0.5).ToArray());
        // Vertical flip of 1 2 3 / 4 5 6.
        Assert.Equal([4f, 5, 6, 1, 2, 3], Augment.FlipVertical(Tensor.FromArray([1, 2, 3, 4, 5, 6], 2, 3)).ToArray());
        // Zoom 2 on a 1 x 5 row reads twice as far from the centre: 1 3 5 at columns 1 2 3 come from 0 2 4.
        Assert.Equal([0f, 1, 3, 5, 0], Augment.Affine(Tensor.FromArray([1, 2, 3, 4, 5], 1, 5), zoomX: 2).ToArray());
        // A shear of 30 degrees moves row y by sin(30) * (y - centre) pixels to the right, and rows are read cos(30) apart.
        var col = Tensor.FromArray([0, 0, 0, 0, 1, 0, 0, 0, 0], 3, 3);
        Assert.Equal(1f, Augment.Affine(col, shearDegrees: 30)[4], 6);
    }

    [Fact]
    public void BrightnessScalesAndContrastBlendsWithTheMeanGreyAsTorchvision()
    {
        var x = Tensor.FromArray([0.1f, 0.5f, 0.9f, 0.3f], 1, 1, 2, 2);
        Assert.Equal([0.2f, 1f, 1f, 0.6f], Augment.Brightness(x, 2).ToArray());
        // Mean 0.45: 0.5 * x + 0.5 * 0.45.
        Assert.Equal([0.275f, 0.475f, 0.675f, 0.375f], Augment.Contrast(x, 0.5f).ToArray().Select(v => MathF.Round(v, 6)).ToArray());
        Assert.All(Augment.Contrast(x, 0).ToArray(), v => Assert.Equal(0.45f, v, 6));
        // Three channels: the grey weighs them 0.2989, 0.587, 0.114.
        var rgb = Tensor.FromArray([1, 0, 0], 3, 1, 1);
        Assert.Equal([0.2989f, 0.2989f, 0.2989f], Augment.Contrast(rgb, 0).ToArray().Select(v => MathF.Round(v, 6)).ToArray());
        Assert.Throws<CnnException>(() => Augment.Brightness(x, -1));
        Assert.Throws<CnnException>(() => Augment.Contrast(x, float.NaN));
    }

    [CnnProperty]
    public Property ContrastBelowOneKeepsEachImagesMeanGreyAndBrightnessIsAClampedProduct() =>
        Prop.ForAll((from x in Batches() from f in Gen.Choose(0, 100) from b in Gen.Choose(0, 300) select (x, f: f / 100f, b: b / 100f)).ToArbitrary(), t =>
        {
            var y = Augment.Contrast(t.x, t.f);
            int n = t.x.Shape[0], size = t.x.Size / n, c = t.x.Shape[1], plane = size / c;
            double Grey(Tensor z, int i) => c == 3
                ? Enumerable.Range(0, plane).Sum(k => 0.2989 * z[i * size + k] + 0.587 * z[i * size + plane + k] + 0.114 * z[i * size + 2 * plane + k]) / plane
                : Enumerable.Range(0, size).Sum(k => (double)z[i * size + k]) / size;
            // torchvision's grey weights sum to 0.9999, so with 3 channels the blend keeps the grey to within 1e-4 of itself.
            bool meanKept = Enumerable.Range(0, n).All(i => Math.Abs(Grey(y, i) - Grey(t.x, i)) < 1e-5 + (c == 3 ? 1e-4 * Grey(t.x, i) : 0));
            var bright = Augment.Brightness(t.x, t.b).ToArray();
            bool product = bright.Select((v, k) => v == Math.Clamp(t.b * t.x[k], 0f, 1f)).All(ok => ok);
            return meanKept.Label("mean grey").And(product.Label("clamped product"));
        });

    [Fact]
    public void OptionsOutOfRangeAreOurErrors()
    {
        var x = Tensor.Zeros(1, 1, 4, 4);
        foreach (var bad in new[]
                 {
                     new AugmentOptions { ZoomRange = 1 }, new AugmentOptions { MaxShearDegrees = 90 }, new AugmentOptions { MaxShiftFraction = 1.5f },
                     new AugmentOptions { Brightness = -0.1f }, new AugmentOptions { Contrast = float.NaN }, new AugmentOptions { FillValue = float.PositiveInfinity },
                     new AugmentOptions { Fill = (FillMode)7 }, new AugmentOptions(MaxShift: 100_000),
                 })
            Assert.Throws<CnnException>(() => Augment.Apply(x, bad, 0));
        Assert.Throws<CnnException>(() => Augment.Affine(x, zoomX: 0));
        Assert.Throws<CnnException>(() => Augment.Affine(x, shearDegrees: -90));
        Assert.Throws<CnnException>(() => Augment.Affine(x, dx: double.NaN));
    }
}
