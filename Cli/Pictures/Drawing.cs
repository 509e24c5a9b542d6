using SkiaSharp;

namespace Cnn.Cli.Pictures;

/// <summary>A piece of text on a picture and the pixels its glyphs cover, kept so that a test can check what a picture says and where.</summary>
internal sealed record PictureText(string Text, SKRect Bounds);

/// <summary>
/// A white canvas (SkiaSharp) that the labelled pictures are drawn on. It records every text and every raster it
/// places, so that the words of a picture can be read back without optical character recognition.
/// </summary>
internal sealed class Drawing : IDisposable
{
    /// <summary>DejaVu Sans (Debian's fonts-dejavu-core) where it is installed, else SkiaSharp's default face.</summary>
    private static readonly SKTypeface Face = SKTypeface.FromFamilyName("DejaVu Sans") ?? SKTypeface.Default;

    private static readonly SKTypeface BoldFace = SKTypeface.FromFamilyName("DejaVu Sans", SKFontStyle.Bold) ?? Face;

    private readonly SKCanvas _canvas;
    private readonly List<PictureText> _texts = [];
    private readonly List<SKRectI> _images = [];

    public Drawing(int width, int height)
    {
        Bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        _canvas = new SKCanvas(Bitmap);
        _canvas.Clear(SKColors.White);
    }

    /// <summary>The pixels drawn so far.</summary>
    public SKBitmap Bitmap { get; }

    /// <summary>The canvas, for shapes the helpers below do not draw.</summary>
    public SKCanvas Canvas => _canvas;

    /// <summary>Every text drawn, in order.</summary>
    public IReadOnlyList<PictureText> Texts => _texts;

    /// <summary>Where each raster was placed, in order.</summary>
    public IReadOnlyList<SKRectI> Images => _images;

    /// <summary>A font of the picture's face at <paramref name="size"/> pixels.</summary>
    public static SKFont Font(float size, bool bold = false) => new(bold ? BoldFace : Face, size) { Edging = SKFontEdging.Antialias, Subpixel = true };

    /// <summary>The advance width of <paramref name="text"/> in pixels.</summary>
    public static float Width(string text, float size, bool bold = false)
    {
        using var font = Font(size, bold);
        return font.MeasureText(text);
    }

    /// <summary>
    /// Draws <paramref name="text"/> with its baseline at <paramref name="y"/>, aligned at <paramref name="x"/>;
    /// <paramref name="vertical"/> turns it a quarter left about that point (reading upwards).
    /// </summary>
    public void Text(string text, float x, float y, float size, SKTextAlign align = SKTextAlign.Left, SKColor? colour = null, bool bold = false, bool vertical = false)
    {
        using var font = Font(size, bold);
        using var ink = new SKPaint { Color = colour ?? SKColors.Black, IsAntialias = true };
        float width = font.MeasureText(text, out var glyphs);
        float shift = align switch { SKTextAlign.Center => -width / 2, SKTextAlign.Right => -width, _ => 0 };
        _canvas.Save();
        _canvas.Translate(x, y);
        if (vertical) _canvas.RotateDegrees(-90);
        _canvas.DrawText(text, shift, 0, SKTextAlign.Left, font, ink);
        _canvas.Restore();
        var box = new SKRect(glyphs.Left + shift, glyphs.Top, glyphs.Right + shift, glyphs.Bottom);
        // A quarter turn left maps (u, v) to (v, -u).
        var placed = vertical ? new SKRect(box.Top, -box.Right, box.Bottom, -box.Left) : box;
        placed.Offset(x, y);
        _texts.Add(new PictureText(text, placed));
    }

    /// <summary>Draws a raster pixel for pixel with its top-left corner at (<paramref name="x"/>, <paramref name="y"/>).</summary>
    public void Image(Raster raster, int x, int y)
    {
        using var bitmap = raster.ToBitmap();
        _canvas.DrawBitmap(bitmap, x, y);
        _images.Add(SKRectI.Create(x, y, raster.Width, raster.Height));
    }

    /// <summary>Writes the picture atomically as PNG.</summary>
    public void Save(string path)
    {
        _canvas.Flush();
        Png.Save(path, Bitmap);
    }

    public void Dispose()
    {
        _canvas.Dispose();
        Bitmap.Dispose();
    }
}
