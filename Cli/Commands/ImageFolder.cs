using Cnn.Core;
using Cnn.Dsl.Data;
using SkiaSharp;

namespace Cnn.Cli;

/// <summary>
/// A folder of PNG or JPEG images with one sub-folder per class (<c>DIR/cat/1.jpg</c>, <c>DIR/dog/7.png</c>), as
/// torchvision's ImageFolder and Keras's image_dataset_from_directory read it. It lives in the command line, not in
/// the DSL, because decoding JPEG needs a native library (SkiaSharp).
/// </summary>
internal static class ImageFolder
{
    /// <summary>The file extensions read (case-insensitive); other files are ignored.</summary>
    public static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>
    /// Reads every image under <paramref name="directory"/>: the classes are the sub-folders in ordinal order of their
    /// names (label 0 is the first), the images of a class are taken in ordinal order of their file names. Each image is
    /// resized to <paramref name="height"/> x <paramref name="width"/> (bilinear, aspect ratio not kept), turned to grey
    /// (0.299 R + 0.587 G + 0.114 B) when <paramref name="channels"/> is 1 or kept as RGB when it is 3, and scaled to [0, 1].
    /// </summary>
    /// <exception cref="CnnException">The folder has no class sub-folder or no image, or the channel count is not 1 or 3.</exception>
    /// <exception cref="Core.FormatException">A file with an image extension cannot be decoded; the message names it.</exception>
    public static (LabeledData Data, IReadOnlyList<string> Classes) Load(string directory, int channels, int height, int width)
    {
        if (channels is not (1 or 3)) throw new CnnException($"An image folder gives 1 (grey) or 3 (RGB) channels; the network takes {channels}.");
        if (!Directory.Exists(directory)) throw new CnnException($"The image folder '{directory}' does not exist.");
        var classes = Directory.GetDirectories(directory).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();
        if (classes.Count == 0) throw new CnnException($"The image folder '{directory}' has no sub-folder; it needs one per class.");
        var files = new List<(string Path, int Label)>();
        for (int k = 0; k < classes.Count; k++)
            files.AddRange(Directory.GetFiles(Path.Combine(directory, classes[k]))
                .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
                .Order(StringComparer.Ordinal).Select(f => (f, k)));
        if (files.Count == 0) throw new CnnException($"The image folder '{directory}' has no {string.Join("/", Extensions)} file in its class sub-folders.");
        int plane = height * width;
        var pixels = new float[(long)files.Count * channels * plane];
        for (int i = 0; i < files.Count; i++)
            Decode(files[i].Path, channels, height, width, pixels.AsSpan(i * channels * plane, channels * plane));
        var data = new LabeledData(Tensor.Own(pixels, new Shape(files.Count, channels, height, width)), files.Select(f => f.Label).ToArray(), classes.Count);
        return (data, classes);
    }

    private static void Decode(string path, int channels, int height, int width, Span<float> into)
    {
        using var decoded = Pictures.ImageInput.Decode(path);
        using var rgba = decoded.Copy(SKColorType.Rgba8888) ?? throw new Core.FormatException($"'{path}' cannot be converted to RGB.");
        using var sized = rgba.Width == width && rgba.Height == height ? rgba.Copy()
            : rgba.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul), new SKSamplingOptions(SKFilterMode.Linear));
        int plane = height * width;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                var c = sized.GetPixel(x, y);
                int k = y * width + x;
                if (channels == 1)
                {
                    into[k] = (0.299f * c.Red + 0.587f * c.Green + 0.114f * c.Blue) / 255f;
                    continue;
                }
                into[k] = c.Red / 255f;
                into[plane + k] = c.Green / 255f;
                into[2 * plane + k] = c.Blue / 255f;
            }
    }
}
