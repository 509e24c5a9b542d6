using Cnn.Core;
using Cnn.Dsl.IO;
using SkiaSharp;

namespace Cnn.Cli.Pictures;

/// <summary>
/// Decodes the PNG and JPEG files the commands read (<c>convolve</c>, <c>gradcam</c>, <c>--data folder:</c>), with a
/// memory budget: the file is read through <see cref="InputFile"/> (a regular file within its size cap), and the
/// dimensions in its header are checked against <see cref="MaxPixels"/> before any pixel is decoded, since a
/// kilobyte-sized PNG can claim 60,000 x 60,000 pixels (a decompression bomb).
/// </summary>
internal static class ImageInput
{
    /// <summary>The environment variable that sets <see cref="MaxPixels"/>.</summary>
    public const string MaxPixelsVariable = "CNN_MAX_PIXELS";

    /// <summary>The default of <see cref="MaxPixels"/>: 16,777,216 (4096 x 4096), some 200 MB of decoded and converted pixels at most.</summary>
    public const long DefaultMaxPixels = 4096L * 4096;

    /// <summary>The most pixels (width x height) an image may have: <c>CNN_MAX_PIXELS</c> when set, else <see cref="DefaultMaxPixels"/>.</summary>
    public static long MaxPixels => InputFile.Limit(MaxPixelsVariable, DefaultMaxPixels);

    /// <summary>Decodes an image after checking its file and its header's dimensions.</summary>
    /// <exception cref="CnnException">The file is not a regular file within its cap, is not an image, or has more pixels than <see cref="MaxPixels"/>.</exception>
    public static SKBitmap Decode(string path)
    {
        var bytes = InputFile.ReadAllBytes(path, "image");
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data) ?? throw new Core.FormatException($"'{path}' is not a PNG or JPEG image that can be decoded.");
        long width = codec.Info.Width, height = codec.Info.Height, cap = MaxPixels;
        if (width <= 0 || height <= 0) throw new Core.FormatException($"'{path}': the image header gives {width} x {height} pixels.");
        if (width * height > cap)
            throw new CnnException($"The image '{path}' is {width} x {height} = {width * height:N0} pixels; the limit is {cap:N0} (set {MaxPixelsVariable} to raise it).");
        return SKBitmap.Decode(codec) ?? throw new Core.FormatException($"'{path}' is not a PNG or JPEG image that can be decoded.");
    }
}
