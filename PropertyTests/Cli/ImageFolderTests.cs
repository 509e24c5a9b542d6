using Cnn.Cli;
using Cnn.Cli.Pictures;
using Cnn.Core;
using SkiaSharp;
using Xunit;

namespace Cnn.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class ImageFolderTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-folder");

    public void Dispose() => _dir.Delete(true);

    private string Class(string root, string name) => Directory.CreateDirectory(Path.Combine(_dir.FullName, root, name)).FullName;

    private static void Solid(string path, int w, int h, (byte R, byte G, byte B) c)
    {
        if (path.EndsWith(".png", StringComparison.Ordinal))
        {
            Png.Save(path, new Raster(w, h, c));
            return;
        }
        using var bmp = new SKBitmap(w, h);
        bmp.Erase(new SKColor(c.R, c.G, c.B));
        using var img = SKImage.FromBitmap(bmp);
        using var jpg = img.Encode(SKEncodedImageFormat.Jpeg, 100);
        File.WriteAllBytes(path, jpg.ToArray());
    }

    [Fact]
    public void ClassesAreSubFoldersInOrderAndImagesAreResizedToTheNetworksInput()
    {
        var red = Class("a", "red");
        var grey = Class("a", "grey");
        Solid(Path.Combine(red, "1.png"), 40, 30, (255, 0, 0));
        Solid(Path.Combine(red, "2.jpg"), 8, 8, (255, 0, 0));
        Solid(Path.Combine(grey, "x.PNG".ToLowerInvariant()), 28, 28, (100, 100, 100));
        File.WriteAllText(Path.Combine(grey, "notes.txt"), "ignored");
        var (data, classes) = ImageFolder.Load(Path.Combine(_dir.FullName, "a"), 3, 32, 32);
        Assert.Equal(["grey", "red"], classes);
        Assert.Equal(new Shape(3, 3, 32, 32), data.Images.Shape);
        Assert.Equal([0, 1, 1], data.Labels);
        Assert.Equal(100 / 255f, data.Images[0], 3);
        // Image 1 (red, resized from 40 x 30): red plane 1, green and blue 0 everywhere.
        int plane = 32 * 32;
        Assert.All(data.Images.Span.Slice(3 * plane, plane).ToArray(), v => Assert.Equal(1f, v, 3));
        Assert.All(data.Images.Span.Slice(4 * plane, 2 * plane).ToArray(), v => Assert.Equal(0f, v, 3));
        var (greyData, _) = ImageFolder.Load(Path.Combine(_dir.FullName, "a"), 1, 28, 28);
        Assert.Equal(0.299f, greyData.Images[28 * 28], 2); // pure red in grey
    }

    [Fact]
    public void BrokenImagesAndEmptyFoldersAreNamed()
    {
        var c = Class("b", "only");
        Assert.Contains("no .png", Assert.Throws<CnnException>(() => ImageFolder.Load(Path.Combine(_dir.FullName, "b"), 1, 8, 8)).Message);
        File.WriteAllText(Path.Combine(c, "broken.jpg"), "not a jpeg");
        var e = Assert.Throws<Cnn.Core.FormatException>(() => ImageFolder.Load(Path.Combine(_dir.FullName, "b"), 1, 8, 8));
        Assert.Contains("broken.jpg", e.Message);
        Assert.Contains("no sub-folder", Assert.Throws<CnnException>(() => ImageFolder.Load(c, 1, 8, 8)).Message);
    }

    [Fact]
    public void TrainReadsAFolderWithTrainAndValSubFolders()
    {
        foreach (var split in new[] { "train", "val" })
            for (int k = 0; k < 10; k++)
            {
                var dir = Class(Path.Combine("digits", split), $"class{k}");
                for (int i = 0; i < (split == "train" ? 3 : 1); i++) Solid(Path.Combine(dir, $"{i}.png"), 28, 28, ((byte)(25 * k), (byte)(25 * k), (byte)(25 * k)));
            }
        var run = Path.Combine(_dir.FullName, "run");
        var (code, _, err) = CliRunner.Run("train", "--data", $"folder:{Path.Combine(_dir.FullName, "digits")}", "--epochs", "1", "--batch-size", "10", "--quiet", "--out", run);
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(run, "confusion.png")));
    }
}
