using Cnn.Cli.Pictures;
using Cnn.Core;
using Cnn.Dsl.Data;
using SkiaSharp;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.Data;

/// <summary>
/// A picture per transform in the test's output folder (<c>augment-pictures/</c> beside the test assembly): the
/// original image, then eleven draws of the transform, so a person can see what each option does.
/// </summary>
public sealed class AugmentPictureTests(ITestOutputHelper output)
{
    /// <summary>An upright, lopsided 28x28 shape on a left-to-right gradient: every flip, turn and fill shows.</summary>
    private static Tensor Sample()
    {
        var v = new float[28 * 28];
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
            {
                bool stem = x is >= 7 and < 11 && y is >= 4 and < 24, top = y is >= 4 and < 8 && x is >= 7 and < 22, bar = y is >= 12 and < 15 && x is >= 7 and < 17;
                v[y * 28 + x] = stem || top || bar ? 1f : 0.1f + 0.3f * x / 27;
            }
        return Tensor.FromArray(v, 1, 1, 28, 28);
    }

    public static TheoryData<string, AugmentOptions> Transforms() => new()
    {
        { "flip-horizontal", new AugmentOptions(FlipHorizontal: true) },
        { "flip-vertical", new AugmentOptions { FlipVertical = true } },
        { "shift", new AugmentOptions(MaxShift: 4) },
        { "shift-fraction", new AugmentOptions { MaxShiftFraction = 0.15f } },
        { "rotation", new AugmentOptions(MaxRotationDegrees: 30) },
        { "crop", new AugmentOptions(CropPadding: 4) },
        { "zoom", new AugmentOptions { ZoomRange = 0.4f } },
        { "shear", new AugmentOptions { MaxShearDegrees = 30 } },
        { "fill-constant", new AugmentOptions(MaxRotationDegrees: 30) { ZoomRange = 0.5f, FillValue = 0.6f } },
        { "fill-nearest", new AugmentOptions(MaxRotationDegrees: 30) { ZoomRange = 0.5f, Fill = FillMode.Nearest } },
        { "fill-reflect", new AugmentOptions(MaxRotationDegrees: 30) { ZoomRange = 0.5f, Fill = FillMode.Reflect } },
        { "fill-wrap", new AugmentOptions(MaxRotationDegrees: 30) { ZoomRange = 0.5f, Fill = FillMode.Wrap } },
        { "brightness", new AugmentOptions { Brightness = 0.6f } },
        { "contrast", new AugmentOptions { Contrast = 0.8f } },
        { "erasing", new AugmentOptions { Erasing = RandomErasing.Default with { Probability = 1 } } },
        { "erasing-random", new AugmentOptions { Erasing = new RandomErasing(1, RandomValues: true) } },
        {
            "everything", new AugmentOptions(FlipHorizontal: true, MaxShift: 1, MaxRotationDegrees: 15, CropPadding: 1)
            {
                FlipVertical = true, MaxShiftFraction = 0.05f, ZoomRange = 0.2f, MaxShearDegrees = 15, Brightness = 0.3f, Contrast = 0.3f,
                Fill = FillMode.Reflect, Erasing = RandomErasing.Default,
            }
        },
    };

    [Theory]
    [MemberData(nameof(Transforms))]
    public void EachTransformDrawsAPictureOfElevenDraws(string name, AugmentOptions options)
    {
        var one = Sample();
        var batch = Tensor.FromArray(Enumerable.Repeat(one.ToArray(), 11).SelectMany(a => a).ToArray(), 11, 1, 28, 28);
        var drawn = Augment.Apply(batch, options, 2026);
        var tiles = new List<float[]> { one.ToArray() };
        for (int i = 0; i < 11; i++) tiles.Add(drawn.Slice(i, 1).ToArray());
        // Most draws change the image (a flip leaves about half as they are); none may leave every draw unchanged.
        Assert.Contains(tiles.Skip(1), t => !t.SequenceEqual(tiles[0]));
        var grid = TileGrid.For(tiles.Count, 28, 28, targetSide: 84);
        var folder = Path.Combine(AppContext.BaseDirectory, "augment-pictures");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, name + ".png");
        Png.Save(path, grid.Render(tiles));
        using var decoded = SKBitmap.Decode(path);
        Assert.Equal((grid.Width, grid.Height), (decoded.Width, decoded.Height));
        output.WriteLine(path);
    }
}
