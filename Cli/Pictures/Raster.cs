using SkiaSharp;

namespace Cnn.Cli.Pictures;

/// <summary>An 8-bit RGB picture in memory, row-major, written as PNG by <see cref="Png"/>.</summary>
internal sealed class Raster
{
    public Raster(int width, int height, (byte R, byte G, byte B) background)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"A picture needs at least 1 x 1 pixels; asked {width} x {height}.");
        Width = width;
        Height = height;
        Pixels = new byte[width * height * 3];
        for (int i = 0; i < Pixels.Length; i += 3) (Pixels[i], Pixels[i + 1], Pixels[i + 2]) = background;
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>R, G, B bytes per pixel, row after row.</summary>
    public byte[] Pixels { get; }

    public (byte R, byte G, byte B) this[int x, int y]
    {
        get
        {
            int i = (y * Width + x) * 3;
            return (Pixels[i], Pixels[i + 1], Pixels[i + 2]);
        }
        set
        {
            int i = (y * Width + x) * 3;
            (Pixels[i], Pixels[i + 1], Pixels[i + 2]) = value;
        }
    }

    /// <summary>Fills a rectangle (clipped to the picture).</summary>
    public void Fill(int x, int y, int w, int h, (byte R, byte G, byte B) colour)
    {
        for (int yy = Math.Max(0, y); yy < Math.Min(Height, y + h); yy++)
            for (int xx = Math.Max(0, x); xx < Math.Min(Width, x + w); xx++)
                this[xx, yy] = colour;
    }

    /// <summary>The picture as a SkiaSharp bitmap (opaque RGBA), to encode or to draw on.</summary>
    public SKBitmap ToBitmap()
    {
        var bitmap = new SKBitmap(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var rgba = new byte[Width * Height * 4];
        for (int i = 0, j = 0; i < Pixels.Length; i += 3, j += 4) (rgba[j], rgba[j + 1], rgba[j + 2], rgba[j + 3]) = (Pixels[i], Pixels[i + 1], Pixels[i + 2], 255);
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        return bitmap;
    }

    /// <summary>A value in [0, 1] as a grey level (clamped).</summary>
    public static (byte, byte, byte) Grey(float v)
    {
        byte b = Byte(v);
        return (b, b, b);
    }

    /// <summary>A value in [0, 1] as a byte, rounded and clamped; NaN is 0.</summary>
    public static byte Byte(float v) => float.IsNaN(v) ? (byte)0 : (byte)Math.Clamp(MathF.Round(v * 255f), 0, 255);
}
