using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// Image augmentation as pure functions: each transform maps a tensor whose last two axes are height and width
/// (<c>[H, W]</c>, <c>[C, H, W]</c> or <c>[N, C, H, W]</c>) to a new tensor of the same shape, applying the same
/// geometric change to every plane. <see cref="Apply(Tensor, AugmentOptions, int)"/> draws each image's transform from the seed and the image's
/// index alone, so the same seed gives the same batch on every machine and run.
/// </summary>
public static class Augment
{
    /// <summary>Mirrors every plane left-right.</summary>
    public static Tensor FlipHorizontal(Tensor images) => Affine(images, flipHorizontal: true);

    /// <summary>Mirrors every plane top-bottom.</summary>
    public static Tensor FlipVertical(Tensor images) => Affine(images, flipVertical: true);

    /// <summary>
    /// Moves the content <paramref name="dx"/> pixels right and <paramref name="dy"/> pixels down (negative: left,
    /// up); what comes in from outside is 0.
    /// </summary>
    public static Tensor Shift(Tensor images, int dx, int dy) => Affine(images, dx: dx, dy: dy);

    /// <summary>
    /// Rotates every plane counter-clockwise (as seen with row 0 at the top) by <paramref name="degrees"/> about its
    /// centre <c>((W-1)/2, (H-1)/2)</c>, sampling bilinearly; points that fall outside the image read as 0. A
    /// rotation by 0 returns the input's values exactly.
    /// </summary>
    public static Tensor Rotate(Tensor images, float degrees) => Affine(images, degrees: degrees);

    /// <summary>
    /// One geometric transform of every plane, as Keras's <c>apply_affine_transform</c>: the content is flipped,
    /// zoomed, sheared and rotated about the centre <c>((W-1)/2, (H-1)/2)</c>, in that order, then moved; the result is
    /// sampled once, bilinearly, reading outside the image as <paramref name="fill"/> says. Whole-pixel moves and flips
    /// copy values exactly; with every argument at its default the input comes back.
    /// </summary>
    /// <param name="images">A tensor whose last two axes are height and width.</param>
    /// <param name="degrees">Counter-clockwise rotation (as seen with row 0 at the top).</param>
    /// <param name="zoomX">Horizontal zoom factor, above 0 (Keras's: above 1 shows more of the surroundings).</param>
    /// <param name="zoomY">Vertical zoom factor, above 0.</param>
    /// <param name="shearDegrees">Shear angle (Keras's <c>shear_range</c>), below 90 in magnitude.</param>
    /// <param name="dx">Move right by this many pixels (negative: left); fractions are interpolated.</param>
    /// <param name="dy">Move down by this many pixels (negative: up).</param>
    /// <param name="flipHorizontal">Mirror left-right first.</param>
    /// <param name="flipVertical">Mirror top-bottom first.</param>
    /// <param name="fill">What is read outside the image.</param>
    /// <param name="fillValue">The value read outside with <see cref="FillMode.Constant"/>.</param>
    /// <exception cref="CnnException">A figure is not finite or out of range (zoom in (0, 64], |shear| &lt; 90, |dx|, |dy| up to 65,536).</exception>
    public static Tensor Affine(Tensor images, double degrees = 0, double zoomX = 1, double zoomY = 1, double shearDegrees = 0, double dx = 0, double dy = 0,
        bool flipHorizontal = false, bool flipVertical = false, FillMode fill = FillMode.Constant, float fillValue = 0)
    {
        var (planes, h, w) = Planes(images);
        if (!double.IsFinite(degrees) || !(zoomX > 0 && zoomX <= 64) || !(zoomY > 0 && zoomY <= 64) || !(Math.Abs(shearDegrees) < 90)
            || !(Math.Abs(dx) <= AugmentOptions.MaxPixels) || !(Math.Abs(dy) <= AugmentOptions.MaxPixels) || !float.IsFinite(fillValue) || !Enum.IsDefined(fill))
            throw new CnnException($"Affine: expected a finite angle, zoom factors in (0, 64], |shear| < 90 degrees, |dx|, |dy| <= {AugmentOptions.MaxPixels}, a finite fill value " +
                $"and a defined fill mode; found degrees {degrees}, zoom {zoomX} x {zoomY}, shear {shearDegrees}, shift ({dx}, {dy}), fill {fill} {fillValue}.");
        var map = AffineMap.Of(degrees, zoomX, zoomY, shearDegrees, dx, dy, flipHorizontal, flipVertical);
        var d = new float[images.Size];
        if (map.IsIdentity) images.Span.CopyTo(d);
        else map.Sample(images.Span, d, planes, h, w, fill, fillValue);
        return Tensor.Own(d, images.Shape);
    }

    /// <summary>
    /// Multiplies every value by <paramref name="factor"/> and clamps to [0, 1], as torchvision's
    /// <c>adjust_brightness</c> on float images; a factor of 1 returns the input.
    /// </summary>
    /// <exception cref="CnnException">The factor is negative or not finite.</exception>
    public static Tensor Brightness(Tensor images, float factor)
    {
        ArgumentNullException.ThrowIfNull(images);
        CheckFactor(factor, "Brightness");
        var d = images.ToArray();
        if (factor != 1) Photometric.Brightness(d, factor);
        return Tensor.Own(d, images.Shape);
    }

    /// <summary>
    /// Blends each image (the last three axes <c>[C, H, W]</c>; a single plane for rank 2) with its mean grey by
    /// <paramref name="factor"/>, <c>factor * x + (1 - factor) * mean</c>, clamped to [0, 1], as torchvision's
    /// <c>adjust_contrast</c> on float images (the grey of 3 channels weighs them 0.2989, 0.587, 0.114); a factor of 1
    /// returns the input.
    /// </summary>
    /// <exception cref="CnnException">The factor is negative or not finite, or the tensor has rank below 2.</exception>
    public static Tensor Contrast(Tensor images, float factor)
    {
        var (_, h, w) = Planes(images);
        CheckFactor(factor, "Contrast");
        int channels = images.Shape.Rank >= 3 ? images.Shape[-3] : 1, size = channels * h * w;
        var d = images.ToArray();
        if (factor != 1 && size > 0)
            for (int start = 0; start < d.Length; start += size) Photometric.Contrast(d.AsSpan(start, size), channels, factor);
        return Tensor.Own(d, images.Shape);
    }

    private static void CheckFactor(float factor, string what)
    {
        if (!(factor >= 0 && float.IsFinite(factor))) throw new CnnException($"{what}: expected a finite factor >= 0; found {factor}.");
    }

    /// <summary>
    /// Pads every plane with <paramref name="padding"/> zeros on each side and crops the original size at
    /// (<paramref name="left"/>, <paramref name="top"/>) of the padded plane; each in <c>[0, 2 * padding]</c>.
    /// <c>left = top = padding</c> gives the input back.
    /// </summary>
    /// <exception cref="CnnException">The padding is negative or the window leaves the padded plane.</exception>
    public static Tensor PadCrop(Tensor images, int padding, int left, int top)
    {
        if (padding < 0 || left < 0 || top < 0 || left > 2 * padding || top > 2 * padding)
            throw new CnnException($"PadCrop: the window at ({left}, {top}) must lie within [0, {2 * padding}] of a plane padded by {padding} (padding >= 0).");
        return Shift(images, padding - left, padding - top);
    }

    /// <summary>
    /// Fills the rectangle of <paramref name="height"/> x <paramref name="width"/> pixels at (<paramref name="left"/>,
    /// <paramref name="top"/>) of every plane with <paramref name="value"/>; the rest is copied.
    /// </summary>
    /// <exception cref="CnnException">The rectangle is empty or leaves the plane.</exception>
    public static Tensor Erase(Tensor images, int top, int left, int height, int width, float value)
    {
        var (planes, h, w) = Planes(images);
        if (top < 0 || left < 0 || height < 1 || width < 1 || top > h - height || left > w - width)
            throw new CnnException($"Erase: the rectangle {height}x{width} at (left {left}, top {top}) must be non-empty and lie within the {h}x{w} plane.");
        var d = images.ToArray();
        for (int p = 0; p < planes; p++)
            for (int y = top; y < top + height; y++)
                d.AsSpan((p * h + y) * w + left, width).Fill(value);
        return Tensor.Own(d, images.Shape);
    }

    /// <summary>
    /// Augments a batch <c>[N, C, H, W]</c> as <paramref name="options"/> say: image <c>i</c> gets one affine map
    /// (<see cref="Affine"/>) composed of its random crop, shifts, rotation, zoom, shear and flips, sampled once; then
    /// random brightness and contrast; then random erasing (<see cref="AugmentOptions.Erasing"/>); each drawn from
    /// generators seeded by <paramref name="seed"/> and <c>i</c> only.
    /// </summary>
    /// <exception cref="CnnException">The batch is not of rank 4 or the options are out of range.</exception>
    public static Tensor Apply(Tensor batch, AugmentOptions options, int seed)
    {
        var x = Transform(batch, options, seed);
        return options.Erasing is { } erasing ? RandomErase(x, erasing, seed) : x;
    }

    /// <summary>Every transform of <paramref name="options"/> but random erasing, which the pipeline applies after normalising.</summary>
    internal static Tensor Transform(Tensor batch, AugmentOptions options, int seed)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(options);
        if (batch.Shape.Rank != 4) throw new CnnException($"Augment.Apply expects a batch [N, C, H, W]; found {batch.Shape}.");
        options.Check();
        int n = batch.Shape[0], c = batch.Shape[1], h = batch.Shape[2], w = batch.Shape[3], size = c * h * w;
        var src = batch.Span;
        var d = new float[batch.Size];
        for (int i = 0; i < n; i++)
        {
            var (map, brightness, contrast) = Draw(new Random(Mix(seed, i)), options, h, w);
            var image = d.AsSpan(i * size, size);
            if (map.IsIdentity) src.Slice(i * size, size).CopyTo(image);
            else map.Sample(src.Slice(i * size, size), image, c, h, w, options.Fill, options.FillValue);
            if (brightness != 1) Photometric.Brightness(image, brightness);
            if (contrast != 1) Photometric.Contrast(image, c, contrast);
        }
        return Tensor.Own(d, batch.Shape);
    }

    /// <summary>
    /// One image's transform. The draws come in the order the transforms were added to the library (crop, shift,
    /// rotation, horizontal flip, then the rest), each only when its option is on, so the options that existed before
    /// draw what they always drew.
    /// </summary>
    private static (AffineMap Map, float Brightness, float Contrast) Draw(Random rng, AugmentOptions o, int h, int w)
    {
        double Symmetric(double max) => (rng.NextDouble() * 2 - 1) * max;
        double dx = 0, dy = 0;
        if (o.CropPadding > 0)
        {
            int left = rng.Next(2 * o.CropPadding + 1), top = rng.Next(2 * o.CropPadding + 1);
            (dx, dy) = (o.CropPadding - left, o.CropPadding - top);
        }
        if (o.MaxShift > 0)
        {
            dx += rng.Next(-o.MaxShift, o.MaxShift + 1);
            dy += rng.Next(-o.MaxShift, o.MaxShift + 1);
        }
        float degrees = o.MaxRotationDegrees > 0 ? (float)Symmetric(o.MaxRotationDegrees) : 0;
        bool flipH = o.FlipHorizontal && rng.Next(2) == 1, flipV = o.FlipVertical && rng.Next(2) == 1;
        double zoomX = 1, zoomY = 1;
        if (o.ZoomRange > 0) (zoomX, zoomY) = (1 + Symmetric(o.ZoomRange), 1 + Symmetric(o.ZoomRange));
        double shear = o.MaxShearDegrees > 0 ? Symmetric(o.MaxShearDegrees) : 0;
        if (o.MaxShiftFraction > 0)
        {
            dx += Symmetric(o.MaxShiftFraction * w);
            dy += Symmetric(o.MaxShiftFraction * h);
        }
        float brightness = o.Brightness > 0 ? Photometric.Factor(rng, o.Brightness) : 1, contrast = o.Contrast > 0 ? Photometric.Factor(rng, o.Contrast) : 1;
        return (AffineMap.Of(degrees, zoomX, zoomY, shear, dx, dy, flipH, flipV), brightness, contrast);
    }

    /// <summary>
    /// Random erasing of each image of a batch <c>[N, C, H, W]</c>, drawn from a generator of its own seeded by
    /// <paramref name="seed"/> and the image's index (so it draws the same whether or not other transforms ran before).
    /// </summary>
    internal static Tensor RandomErase(Tensor batch, RandomErasing erasing, int seed)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Shape.Rank != 4) throw new CnnException($"Random erasing expects a batch [N, C, H, W]; found {batch.Shape}.");
        erasing.Check();
        int n = batch.Shape[0], c = batch.Shape[1], h = batch.Shape[2], w = batch.Shape[3];
        var d = batch.ToArray();
        for (int i = 0; i < n; i++)
        {
            var rng = new Random(Mix(unchecked(seed ^ ErasingStream), i));
            if (erasing.Draw(rng, h, w) is not var (top, left, eh, ew)) continue;
            for (int p = 0; p < c; p++)
                for (int y = top; y < top + eh; y++)
                {
                    var row = d.AsSpan(((i * c + p) * h + y) * w + left, ew);
                    if (!erasing.RandomValues) row.Fill(erasing.Value);
                    else for (int x = 0; x < ew; x++) row[x] = StandardNormal(rng);
                }
        }
        return Tensor.Own(d, batch.Shape);
    }

    /// <summary>Sets random erasing's generators apart from the other transforms' under the same seed.</summary>
    private const int ErasingStream = 0x3A5E_7C11;

    /// <summary>A standard normal draw (Box-Muller), so that the values depend on the generator alone.</summary>
    private static float StandardNormal(Random rng) =>
        (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));

    /// <summary>The data set with its images augmented by <see cref="Apply(Tensor, AugmentOptions, int)"/>; labels unchanged.</summary>
    public static LabeledData Apply(LabeledData data, AugmentOptions options, int seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        return new LabeledData(Apply(data.Images, options, seed), data.Labels, data.Classes);
    }

    /// <summary>A seed for image <paramref name="index"/> under <paramref name="seed"/> (SplitMix64's finaliser: stable everywhere).</summary>
    private static int Mix(int seed, int index)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)index) + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (int)(z ^ (z >> 31));
    }

    private static (int Planes, int H, int W) Planes(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Shape.Rank < 2) throw new CnnException($"Augmentation needs a tensor whose last two axes are height and width; found {images.Shape}.");
        int h = images.Shape[-2], w = images.Shape[-1];
        return (h * w == 0 ? 0 : images.Size / (h * w), h, w);
    }
}
