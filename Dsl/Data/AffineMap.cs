using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// The inverse map of a geometric transform: where in the source each output pixel reads, relative to the centre
/// <c>((W-1)/2, (H-1)/2)</c>: <c>source = [A B; C D] · output + (Tx, Ty)</c>. Every geometric augmentation is one of
/// these, composed once per image and sampled once (<see cref="Sample"/>), as Keras's <c>apply_affine_transform</c>.
/// </summary>
internal readonly record struct AffineMap(double A, double B, double C, double D, double Tx, double Ty)
{
    public static AffineMap Identity { get; } = new(1, 0, 0, 1, 0, 0);

    public bool IsIdentity => this == Identity;

    /// <summary>
    /// The map of content flipped, zoomed, sheared and rotated about the centre, in that order, then moved
    /// (<paramref name="dx"/> right, <paramref name="dy"/> down). A factor at its neutral value is not multiplied in,
    /// so a rotation alone reads exactly where <see cref="Augment.Rotate"/> always has.
    /// </summary>
    public static AffineMap Of(double degrees = 0, double zoomX = 1, double zoomY = 1, double shearDegrees = 0, double dx = 0, double dy = 0,
        bool flipHorizontal = false, bool flipVertical = false)
    {
        var m = new AffineMap(flipHorizontal ? -1 : 1, 0, 0, flipVertical ? -1 : 1, -dx, -dy);
        if (zoomX != 1 || zoomY != 1) m = m.After(zoomX, 0, 0, zoomY);
        if (shearDegrees != 0)
        {
            // Keras's shear matrix: x reads sin(s) * y to the left and y is scaled by cos(s).
            double s = shearDegrees * Math.PI / 180;
            m = m.After(1, -Math.Sin(s), 0, Math.Cos(s));
        }
        if (degrees != 0)
        {
            // y grows downwards, so a counter-clockwise turn on screen reads clockwise in (x, y) coordinates.
            double a = degrees * Math.PI / 180, cos = Math.Cos(a), sin = Math.Sin(a);
            m = m.After(cos, -sin, sin, cos);
        }
        return m;
    }

    /// <summary>The linear part <c>[a b; c d]</c> applied to where this map reads (the translation is kept as it is).</summary>
    private AffineMap After(double a, double b, double c, double d) =>
        new(a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, Tx, Ty);

    /// <summary>
    /// Samples every <paramref name="h"/> x <paramref name="w"/> plane of <paramref name="source"/> through the map
    /// into <paramref name="destination"/>, bilinearly, reading outside the plane as <paramref name="fill"/> says. The
    /// map's figures are finite and bounded (<see cref="Augment.Affine"/> checks them), so every coordinate fits an int.
    /// </summary>
    public void Sample(ReadOnlySpan<float> source, Span<float> destination, int planes, int h, int w, FillMode fill, float fillValue)
    {
        double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
        int plane = h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double u = x - cx, v = y - cy;
                double sx = A * u + B * v + Tx + cx, sy = C * u + D * v + Ty + cy;
                int x0 = (int)Math.Floor(sx), y0 = (int)Math.Floor(sy);
                float fx = (float)(sx - x0), fy = (float)(sy - y0);
                int ix0 = Index(x0, w, fill), iy0 = Index(y0, h, fill);
                int ix1 = fx == 0 ? -1 : Index(x0 + 1, w, fill), iy1 = fy == 0 ? -1 : Index(y0 + 1, h, fill);
                // Each neighbour's offset in a plane, or -1 where the constant is read.
                int o00 = Offset(iy0, ix0, w), o01 = Offset(iy0, ix1, w), o10 = Offset(iy1, ix0, w), o11 = Offset(iy1, ix1, w);
                for (int p = 0; p < planes; p++)
                {
                    var s = source.Slice(p * plane, plane);
                    float r;
                    if (fx == 0 && fy == 0) r = At(s, o00, fillValue);
                    else
                    {
                        // The same products in the same order as the rotation always took, so its results keep their bits.
                        float top = At(s, o00, fillValue) * (1 - fx) + (fx == 0 ? 0 : At(s, o01, fillValue) * fx);
                        float bottom = fy == 0 ? 0 : At(s, o10, fillValue) * (1 - fx) + (fx == 0 ? 0 : At(s, o11, fillValue) * fx);
                        r = top * (1 - fy) + bottom * fy;
                    }
                    destination[p * plane + y * w + x] = r;
                }
            }
    }

    private static int Offset(int iy, int ix, int w) => iy < 0 || ix < 0 ? -1 : iy * w + ix;

    private static float At(ReadOnlySpan<float> plane, int offset, float fillValue) => offset < 0 ? fillValue : plane[offset];

    /// <summary>Where index <paramref name="i"/> of an axis of <paramref name="n"/> reads under the fill mode; -1 for the constant.</summary>
    private static int Index(int i, int n, FillMode fill)
    {
        if ((uint)i < (uint)n) return i;
        switch (fill)
        {
            case FillMode.Nearest:
                return i < 0 ? 0 : n - 1;
            case FillMode.Reflect:
                int m = Mod(i, 2 * n);
                return m < n ? m : 2 * n - 1 - m;
            case FillMode.Wrap:
                return Mod(i, n);
            default:
                return -1;
        }
    }

    private static int Mod(int i, int n) => (i % n + n) % n;
}
