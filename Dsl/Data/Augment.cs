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
    public static Tensor FlipHorizontal(Tensor images)
    {
        var (planes, h, w) = Planes(images);
        var src = images.Span;
        var d = new float[images.Size];
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    d[(p * h + y) * w + x] = src[(p * h + y) * w + (w - 1 - x)];
        return Tensor.Own(d, images.Shape);
    }

    /// <summary>
    /// Moves the content <paramref name="dx"/> pixels right and <paramref name="dy"/> pixels down (negative: left,
    /// up); what comes in from outside is 0.
    /// </summary>
    public static Tensor Shift(Tensor images, int dx, int dy)
    {
        var (planes, h, w) = Planes(images);
        var src = images.Span;
        var d = new float[images.Size];
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < h; y++)
            {
                int sy = y - dy;
                if ((uint)sy >= (uint)h) continue;
                for (int x = 0; x < w; x++)
                {
                    int sx = x - dx;
                    if ((uint)sx < (uint)w) d[(p * h + y) * w + x] = src[(p * h + sy) * w + sx];
                }
            }
        return Tensor.Own(d, images.Shape);
    }

    /// <summary>
    /// Rotates every plane counter-clockwise (as seen with row 0 at the top) by <paramref name="degrees"/> about its
    /// centre <c>((W-1)/2, (H-1)/2)</c>, sampling bilinearly; points that fall outside the image read as 0. A
    /// rotation by 0 returns the input's values exactly.
    /// </summary>
    public static Tensor Rotate(Tensor images, float degrees)
    {
        var (planes, h, w) = Planes(images);
        var src = images.Memory;
        var d = new float[images.Size];
        double a = degrees * Math.PI / 180, cos = Math.Cos(a), sin = Math.Sin(a);
        double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                // The inverse map: where in the source the output pixel (x, y) comes from. y grows downwards, so
                // a counter-clockwise turn on screen is clockwise in (x, y) coordinates.
                double u = x - cx, v = y - cy;
                double sx = cos * u - sin * v + cx, sy = sin * u + cos * v + cy;
                int x0 = (int)Math.Floor(sx), y0 = (int)Math.Floor(sy);
                float fx = (float)(sx - x0), fy = (float)(sy - y0);
                for (int p = 0; p < planes; p++)
                {
                    int b = p * h * w;
                    float At(int yy, int xx) => (uint)yy < (uint)h && (uint)xx < (uint)w ? src.Span[b + yy * w + xx] : 0f;
                    float top = At(y0, x0) * (1 - fx) + (fx == 0 ? 0 : At(y0, x0 + 1) * fx);
                    float bottom = fy == 0 ? 0 : At(y0 + 1, x0) * (1 - fx) + (fx == 0 ? 0 : At(y0 + 1, x0 + 1) * fx);
                    d[b + y * w + x] = top * (1 - fy) + bottom * fy;
                }
            }
        return Tensor.Own(d, images.Shape);
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
    /// Augments a batch <c>[N, C, H, W]</c>: image <c>i</c> gets a random crop (when
    /// <see cref="AugmentOptions.CropPadding"/> &gt; 0), a random shift, a random rotation and a random flip, in that
    /// order, then random erasing (<see cref="AugmentOptions.Erasing"/>), each drawn from generators seeded by
    /// <paramref name="seed"/> and <c>i</c> only.
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
        if (options.MaxShift < 0 || options.CropPadding < 0 || !(options.MaxRotationDegrees >= 0))
            throw new CnnException($"Augment options must not be negative; found {options}.");
        options.Erasing?.Check();
        int n = batch.Shape[0];
        var sample = batch.Shape.DropBatch();
        var d = new float[batch.Size];
        for (int i = 0; i < n; i++)
        {
            var rng = new Random(Mix(seed, i));
            var x = batch.Slice(i, 1).Reshape(sample);
            if (options.CropPadding > 0)
                x = PadCrop(x, options.CropPadding, rng.Next(2 * options.CropPadding + 1), rng.Next(2 * options.CropPadding + 1));
            if (options.MaxShift > 0)
                x = Shift(x, rng.Next(-options.MaxShift, options.MaxShift + 1), rng.Next(-options.MaxShift, options.MaxShift + 1));
            if (options.MaxRotationDegrees > 0)
                x = Rotate(x, (float)((rng.NextDouble() * 2 - 1) * options.MaxRotationDegrees));
            if (options.FlipHorizontal && rng.Next(2) == 1)
                x = FlipHorizontal(x);
            x.Span.CopyTo(d.AsSpan(i * sample.Size, sample.Size));
        }
        return Tensor.Own(d, batch.Shape);
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
