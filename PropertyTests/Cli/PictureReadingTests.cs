using Cnn.Cli;
using Cnn.Cli.Pictures;
using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using ScottPlot;
using SkiaSharp;
using Xunit;

namespace Cnn.Tests.Cli;

/// <summary>
/// Issue 21, item 9: the pictures say what they show. Sizes, titles, tick labels and colour bars are read back from
/// the PNG bytes and from the plot model or the drawing's record of its texts.
/// </summary>
public sealed class PictureReadingTests
{
    private static SKBitmap Decode(SKBitmap drawn) => SKBitmap.Decode(Png.Encode(drawn)) ?? throw new InvalidOperationException("not a PNG SkiaSharp can read");

    /// <summary>Some pixel inside the text's glyph box differs from the figure's white background: the text was drawn.</summary>
    private static bool Inked(SKBitmap bmp, PictureText t, SKColor? background = null)
    {
        var box = SKRectI.Round(t.Bounds);
        for (int y = Math.Max(0, box.Top); y < Math.Min(bmp.Height, box.Bottom); y++)
            for (int x = Math.Max(0, box.Left); x < Math.Min(bmp.Width, box.Right); x++)
                if (bmp.GetPixel(x, y) != (background ?? SKColors.White)) return true;
        return false;
    }

    private static bool Inside(SKBitmap bmp, SKRect r) => r.Left >= 0 && r.Top >= 0 && r.Right <= bmp.Width && r.Bottom <= bmp.Height && r.Width > 0 && r.Height > 0;

    [CnnProperty]
    public Property EpochTicksAreWholeEpochsOfTheRunAndAtMostTwelve() =>
        Prop.ForAll((from first in Gen.Choose(1, 60) from length in Gen.OneOf(Gen.Choose(0, 15), Gen.Choose(0, 5000)) select (first, last: first + length)).ToArbitrary(), t =>
        {
            var ticks = Charts.EpochTicks(t.first, t.last);
            int step = ticks.Count > 1 ? ticks[1] - ticks[0] : 1;
            bool evenlySpaced = ticks.Zip(ticks.Skip(1)).All(p => p.Second - p.First == step);
            // The step is the first of 1, 2, 5, 10, 20, 50 ... that labels at most twelve epochs.
            int[] steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
            int expectedStep = steps.First(s => (t.last - t.first) / s + 1 <= Charts.MaxEpochTicks);
            return ticks.Count >= 1 && ticks.Count <= Charts.MaxEpochTicks && evenlySpaced && step == expectedStep
                && ticks[0] >= t.first && ticks[^1] <= t.last && ticks[0] - t.first < step && t.last - ticks[^1] < step
                && ticks.All(e => e % step == 0 || step == 1);
        });

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(37)]
    public void TheCurvesHaveWholeEpochTicksAndTheLegendRightOfTheData(int epochs)
    {
        var rows = Enumerable.Range(1, epochs).Select(e => new EpochRow(e, 2.0 / e, 1 - 0.5 / e, 2.2 / e, 1 - 0.6 / e, 3)).ToList();
        foreach (var plot in new[] { Charts.Loss(rows), Charts.Accuracy(rows) })
        {
            using var bmp = SKBitmap.Decode(plot.GetImageBytes(Charts.Width, Charts.Height, ImageFormat.Png));
            Assert.Equal((Charts.Width, Charts.Height), (bmp.Width, bmp.Height));
            var ticks = plot.Axes.Bottom.TickGenerator.Ticks.Where(t => t.IsMajor).ToList();
            Assert.NotEmpty(ticks);
            Assert.All(ticks, t =>
            {
                Assert.Equal(Math.Round(t.Position), t.Position);
                Assert.Equal(((int)t.Position).ToString(System.Globalization.CultureInfo.InvariantCulture), t.Label);
                Assert.InRange(t.Position, 1, epochs);
            });
            Assert.Equal("epoch", plot.Axes.Bottom.Label.Text);
            Assert.False(string.IsNullOrEmpty(plot.Axes.Title.Label.Text));

            // The legend is not drawn inside the data area; its markers (the series' own colours) are right of it.
            Assert.False(plot.Legend.IsVisible);
            var data = plot.RenderManager.LastRender.DataRect;
            Assert.True(data.Right < Charts.Width - 60, $"the data area reaches x = {data.Right} of {Charts.Width}");
            foreach (var series in plot.GetPlottables<ScottPlot.Plottables.Scatter>())
            {
                var colour = new SKColor(series.Color.R, series.Color.G, series.Color.B);
                bool marker = false;
                for (int y = (int)data.Top; y < (int)data.Bottom && !marker; y++)
                    for (int x = (int)data.Right + 4; x < bmp.Width && !marker; x++) marker = bmp.GetPixel(x, y) == colour;
                Assert.True(marker, $"no legend marker of '{series.LegendText}' right of the data area");
            }
        }
    }

    [Fact]
    public void FiltersAndFeatureMapsAreMagnifiedAndNamedWithChannelIndicesAndAScale()
    {
        var net = Zoo.LeNet5();
        var p = Initializer.Init(net, 3);
        var x = Tensor.FromArray(Enumerable.Range(0, 28 * 28).Select(i => (float)Math.Sin(0.37 * i)).ToArray(), 1, 1, 28, 28);
        var grids = new List<LayerGrid> { NetworkPictures.Filters(net, p, "initial")! };
        grids.AddRange(NetworkPictures.FeatureMaps(net, p, Initializer.InitState(net), x));
        Assert.Equal(["conv1", "conv1", "conv2"], grids.Select(g => g.Layer));
        // A 5x5 filter at least 90 pixels wide, a 28x28 map at least 84, a 10x10 map at least 90.
        Assert.Equal([(5, 95), (28, 84), (10, 90)], grids.Select(g => (g.Grid.TileWidth, g.Grid.TileWidth * g.Grid.Scale)));
        foreach (var g in grids)
        {
            using var d = g.Draw();
            using var bmp = Decode(d.Bitmap);
            Assert.Equal((d.Bitmap.Width, d.Bitmap.Height), (bmp.Width, bmp.Height));
            var body = d.Images.Single();
            Assert.Equal((g.Grid.Width, g.Grid.Height), (body.Width, body.Height));
            Assert.StartsWith(g.Layer + ":", d.Texts[0].Text);
            Assert.All(d.Texts, t => Assert.True(Inside(bmp, t.Bounds), $"'{t.Text}' at {t.Bounds} is outside the {bmp.Width} x {bmp.Height} picture"));
            Assert.All(d.Texts.Where(t => t.Text.Length > 1), t => Assert.True(Inked(bmp, t), $"'{t.Text}' left no ink"));
            // Each tile's index sits in the strip above that tile, within the tile's width.
            for (int i = 0; i < g.Grid.Count; i++)
            {
                var (ox, oy) = g.Grid.Origin(i);
                var label = d.Texts.Single(t => t.Text == i.ToString(System.Globalization.CultureInfo.InvariantCulture) && t.Bounds.Bottom <= body.Top + oy && t.Bounds.Top >= body.Top + oy - LayerGrid.LabelStrip);
                Assert.InRange(label.Bounds.MidX, body.Left + ox, body.Left + ox + g.Grid.TileWidth * g.Grid.Scale);
                Assert.True(Inked(bmp, label, new SKColor(TileGrid.Background.R, TileGrid.Background.G, TileGrid.Background.B)), $"index {i} left no ink");
            }
            // The colour bar: white at its top, black at its bottom, labelled with the layer's greatest and least value.
            Assert.True(g.Min < g.Max);
            Assert.Contains(d.Texts, t => t.Text == Numbers.G(g.Max) && t.Bounds.Left > body.Right);
            Assert.Contains(d.Texts, t => t.Text == Numbers.G(g.Min) && t.Bounds.Left > body.Right);
            int barX = body.Right + Figure.Pad + Figure.BarWidth / 2;
            Assert.Equal(SKColors.White, bmp.GetPixel(barX, body.Top));
            Assert.Equal(SKColors.Black, bmp.GetPixel(barX, body.Top + Math.Max(body.Height, Figure.MinBarHeight) - 1));
        }
    }

    [Fact]
    public void GradCamNamesTheClassItsProbabilityAndTheLayerAndHasAColourBar()
    {
        var rng = new Random(5);
        var x = Tensor.FromArray(Enumerable.Range(0, 3 * 12 * 10).Select(_ => (float)rng.NextDouble()).ToArray(), 1, 3, 12, 10);
        var maps = Tensor.FromArray(Enumerable.Range(0, 12 * 10).Select(i => i / 119f).ToArray(), 1, 12, 10);
        var title = GradCamCommand.Title("3 (Dress)", true, "0.871", "block2/conv [16, 6, 5]", "validation example 4 of mnist (label 3)");
        using var d = GradCamCommand.Draw(x, maps, title);
        using var bmp = Decode(d.Bitmap);
        Assert.Equal("Grad-CAM: class 3 (Dress) (predicted), probability 0.871", d.Texts[0].Text);
        Assert.Contains("layer block2/conv [16, 6, 5]", d.Texts[1].Text);
        foreach (var caption in new[] { "input", "Grad-CAM map", "overlay", "0", "1 (max)", "map" })
            Assert.Contains(d.Texts, t => t.Text == caption);
        Assert.All(d.Texts, t => Assert.True(Inside(bmp, t.Bounds) && Inked(bmp, t), $"'{t.Text}' at {t.Bounds}"));
        // Three panels magnified to at least 224 pixels on the input's longer side (12 x 19 = 228 high, 10 x 19 = 190
        // wide) under their captions, the bar right of them: jet red at 1, jet blue at 0.
        var body = d.Images.Single();
        Assert.Equal((3 * 190 + 4 * GradCamCommand.Gap, GradCamCommand.CaptionStrip + 228 + GradCamCommand.Gap), (body.Width, body.Height));
        int barX = body.Right + Figure.Pad + Figure.BarWidth / 2;
        static SKColor Jet(float v) { var (r, g, b) = GradCamCommand.Jet(v); return new SKColor(Raster.Byte(r), Raster.Byte(g), Raster.Byte(b)); }
        Assert.Equal(Jet(1), bmp.GetPixel(barX, body.Top));
        Assert.Equal(Jet(0), bmp.GetPixel(barX, body.Bottom - 1));
    }

    [Fact]
    public void TheConfusionMatrixHasATitleWithTheAccuracyAndNoEmptyMargin()
    {
        string[] names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
        var rng = new Random(2);
        var truth = Enumerable.Range(0, 500).Select(i => i % 10).ToArray();
        var predicted = truth.Select(t => rng.NextDouble() < 0.8 ? t : rng.Next(10)).ToArray();
        int right = truth.Zip(predicted).Count(p => p.First == p.Second);
        using var d = ConfusionPicture.Draw(ConfusionPicture.Matrix(truth, predicted, 10), names);
        using var bmp = Decode(d.Bitmap);
        Assert.Equal("Confusion matrix: 500 validation examples", d.Texts[0].Text);
        Assert.StartsWith(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"accuracy {100.0 * right / 500:F2} % ({right} of 500)"), d.Texts[1].Text);
        Assert.All(d.Texts, t => Assert.True(Inside(bmp, t.Bounds), $"'{t.Text}' at {t.Bounds}"));
        Assert.Equal(2 * names.Length, d.Texts.Count(t => names.Contains(t.Text)));
        // Whatever is drawn reaches to within the padding (and a pixel of rounding) of every edge; at the top, the
        // title line's spacing above its capitals is allowed as well.
        int left = bmp.Width, top = bmp.Height, rightEdge = 0, bottom = 0;
        for (int y = 0; y < bmp.Height; y++)
            for (int x = 0; x < bmp.Width; x++)
                if (bmp.GetPixel(x, y) != SKColors.White) (left, top, rightEdge, bottom) = (Math.Min(left, x), Math.Min(top, y), Math.Max(rightEdge, x), Math.Max(bottom, y));
        Assert.True(left <= Figure.Pad + 1 && top <= Figure.Pad + 8 && bmp.Width - 1 - rightEdge <= Figure.Pad + 1 && bmp.Height - 1 - bottom <= Figure.Pad + 1,
            $"ink spans x {left}..{rightEdge}, y {top}..{bottom} of {bmp.Width} x {bmp.Height}");
    }

    [Fact]
    public void EdgeKernelsAreDrawnByTheirMagnitudeByDefault()
    {
        foreach (var k in new[] { "laplacian", "edge-h", "edge-v" }) Assert.Equal("abs", ConvolveCommand.AutoScale(ConvolveCommand.NamedKernel(k)));
        foreach (var k in new[] { "box", "sharpen" }) Assert.Equal("clip", ConvolveCommand.AutoScale(ConvolveCommand.NamedKernel(k)));
        Assert.Equal("minmax", ConvolveCommand.AutoScale(Tensor.FromArray([1, 2, 3, 4], 2, 2)));
        Assert.Contains("abs for kernels summing to 0", ConvolveCommand.Help);

        // A grey square on a darker ground: flat areas become black, both sides of the edges bright.
        var dir = Directory.CreateTempSubdirectory("cnn-edges");
        try
        {
            var image = new Raster(40, 30, (60, 60, 60));
            image.Fill(10, 8, 20, 14, (200, 200, 200));
            Png.Save(Path.Combine(dir.FullName, "in.png"), image);
            var (code, _, err) = CliRunner.Run("convolve", "--input", Path.Combine(dir.FullName, "in.png"), "--kernel", "edge-v", "--boundary", "nearest", "--out", Path.Combine(dir.FullName, "edges.png"));
            Assert.True(code == 0, err);
            using var edges = SKBitmap.Decode(Path.Combine(dir.FullName, "edges.png"));
            Assert.Equal(SKColors.Black, edges.GetPixel(3, 3));
            Assert.Equal(SKColors.Black, edges.GetPixel(20, 15));
            Assert.True(edges.GetPixel(9, 15).Red > 200 && edges.GetPixel(30, 15).Red > 200, "the left and the right edge of the square are both bright");
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
