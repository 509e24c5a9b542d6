using Cnn.Dsl.IO;
using SkiaSharp;

namespace Cnn.Cli.Pictures;

/// <summary>
/// PNG files of our pictures, encoded by SkiaSharp (already loaded for decoding images and drawing text), written
/// atomically. The same picture always gives the same bytes.
/// </summary>
internal static class Png
{
    /// <summary>A raster as PNG bytes (8-bit RGB, opaque).</summary>
    public static byte[] Encode(Raster raster)
    {
        using var bitmap = raster.ToBitmap();
        return Encode(bitmap);
    }

    /// <summary>A bitmap as PNG bytes.</summary>
    public static byte[] Encode(SKBitmap bitmap)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Writes the picture atomically.</summary>
    public static void Save(string path, Raster raster) => AtomicFile.WriteAllBytes(path, Encode(raster));

    /// <summary>Writes the bitmap atomically.</summary>
    public static void Save(string path, SKBitmap bitmap) => AtomicFile.WriteAllBytes(path, Encode(bitmap));
}
