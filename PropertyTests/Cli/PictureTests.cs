using Cnn.Cli;
using Cnn.Cli.Pictures;
using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using SkiaSharp;
using Xunit;

namespace Cnn.Tests.Cli;

public sealed class PictureTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-pictures");

    public void Dispose() => _dir.Delete(true);

    private static SKBitmap Decode(byte[] png) => SKBitmap.Decode(png) ?? throw new InvalidOperationException("not a PNG SkiaSharp can read");

    [CnnProperty]
    public Property OurPngEncoderWritesWhatADecoderReadsBack() =>
        Prop.ForAll((from w in Gen.Choose(1, 40) from h in Gen.Choose(1, 40) from seed in Gen.Choose(0, 9999) select (w, h, seed)).ToArbitrary(), t =>
        {
            var rng = new Random(t.seed);
            var r = new Raster(t.w, t.h, (0, 0, 0));
            rng.NextBytes(r.Pixels);
            using var bmp = Decode(Png.Encode(r));
            return bmp.Width == t.w && bmp.Height == t.h && Enumerable.Range(0, t.w * t.h).All(i =>
            {
                var c = bmp.GetPixel(i % t.w, i / t.w);
                return (c.Red, c.Green, c.Blue) == r[i % t.w, i / t.w];
            });
        });

    /// <summary>
    /// Any number of tiles of any size: the picture is the layout's size, every tile lies inside it without touching
    /// another, every tile pixel is drawn from its tile and every other pixel is the background.
    /// </summary>
    [CnnProperty]
    public Property AGridHasOneTilePerItemAndBackgroundBetween() =>
        Prop.ForAll((from n in Gen.Choose(1, 40) from tw in Gen.Choose(1, 7) from th in Gen.Choose(1, 7) select (n, tw, th)).ToArbitrary(), t =>
        {
            var grid = TileGrid.For(t.n, t.tw, t.th, 12);
            // Tile i is uniformly the grey level i / n, so each pixel tells which tile (if any) drew it.
            var tiles = Enumerable.Range(0, t.n).Select(i => Enumerable.Repeat((float)i / t.n, t.tw * t.th).ToArray()).ToList();
            var r = grid.Render(tiles);
            var owner = new int[r.Width, r.Height];
            for (int i = 0; i < t.n; i++)
            {
                var (ox, oy) = grid.Origin(i);
                for (int y = oy; y < oy + t.th * grid.Scale; y++)
                    for (int x = ox; x < ox + t.tw * grid.Scale; x++)
                    {
                        if (x >= r.Width || y >= r.Height || owner[x, y] != 0) return false;
                        owner[x, y] = i + 1;
                    }
            }
            for (int y = 0; y < r.Height; y++)
                for (int x = 0; x < r.Width; x++)
                {
                    var expected = owner[x, y] == 0 ? TileGrid.Background : Raster.Grey((float)(owner[x, y] - 1) / t.n);
                    if (r[x, y] != expected) return false;
                }
            return r.Width == grid.Width && r.Height == grid.Height && grid.Columns * grid.Rows >= t.n && grid.Columns * (grid.Rows - 1) < t.n;
        });

    [Fact]
    public void TheFilterGridOfSimpleConvNetHasThirtyTilesOnOneScaleFromBlackToWhite()
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 7);
        var filters = NetworkPictures.Filters(net, p)!;
        var (grid, picture) = (filters.Grid, filters.Picture);
        Assert.Equal("conv1", filters.Layer);
        Assert.Equal((30, 6, 5), (grid.Count, grid.Columns, grid.Rows));
        Assert.Equal((grid.Width, grid.Height), (picture.Width, picture.Height));
        var w = p["conv1/weight"].Span.ToArray();
        Assert.Equal((w.Min(), w.Max()), (filters.Min, filters.Max));
        // One scale for all tiles: the weight of every filter is the grey level of its place between the layer's
        // least weight (black) and its greatest (white).
        for (int f = 0; f < 30; f++)
        {
            var (ox, oy) = grid.Origin(f);
            for (int k = 0; k < 25; k++)
            {
                var expected = Raster.Grey((w[f * 25 + k] - w.Min()) / (w.Max() - w.Min()));
                Assert.Equal(expected, picture[ox + k % 5 * grid.Scale, oy + k / 5 * grid.Scale]);
                Assert.Equal(expected, picture[ox + k % 5 * grid.Scale + grid.Scale - 1, oy + k / 5 * grid.Scale + grid.Scale - 1]);
            }
        }
        int argMin = Array.IndexOf(w, w.Min()), argMax = Array.IndexOf(w, w.Max());
        Assert.Equal(((byte)0, (byte)0, (byte)0), picture[grid.Origin(argMin / 25).X + argMin % 25 % 5 * grid.Scale, grid.Origin(argMin / 25).Y + argMin % 25 / 5 * grid.Scale]);
        Assert.Equal(((byte)255, (byte)255, (byte)255), picture[grid.Origin(argMax / 25).X + argMax % 25 % 5 * grid.Scale, grid.Origin(argMax / 25).Y + argMax % 25 / 5 * grid.Scale]);
        // Another seed draws other filters.
        Assert.NotEqual(Png.Encode(picture), Png.Encode(NetworkPictures.Filters(net, Initializer.Init(net, 8))!.Picture));
    }

    [Fact]
    public void ColourFiltersAndFeatureMapsOfEveryConvolution()
    {
        var net = Zoo.KerasCifar();
        var p = Initializer.Init(net, 1);
        var filters = NetworkPictures.Filters(net, p)!;
        Assert.Equal(32, filters.Grid.Count);
        Assert.False(AllGrey(filters.Picture, filters.Grid), "3-channel filters are drawn in colour");

        var x = Tensor.FromArray(Enumerable.Range(0, 3 * 32 * 32).Select(i => (float)Math.Sin(i)).ToArray(), 1, 3, 32, 32);
        var maps = NetworkPictures.FeatureMaps(net, p, Initializer.InitState(net), x);
        Assert.Equal(net.Leaves.Where(n => n.Layer is Conv2d).Select(n => n.Path), maps.Select(m => m.Layer));
        Assert.Equal([32, 32, 64, 64], maps.Select(m => m.Grid.Count));
        Assert.Equal((32, 32), (maps[0].Grid.TileWidth, maps[0].Grid.TileHeight));
        // 'same' 3x3 (32), 'valid' 3x3 (30), pool (15), 'same' (15), 'valid' (13).
        Assert.Equal([32, 30, 15, 13], maps.Select(m => m.Grid.TileWidth));
        Assert.Null(NetworkPictures.Filters(Zoo.Conv1dSignal(), Initializer.Init(Zoo.Conv1dSignal(), 1)));
    }

    private static bool AllGrey(Raster r, TileGrid grid)
    {
        for (int i = 0; i < grid.Count; i++)
        {
            var (ox, oy) = grid.Origin(i);
            for (int y = 0; y < grid.TileHeight * grid.Scale; y++)
                for (int x = 0; x < grid.TileWidth * grid.Scale; x++)
                {
                    var c = r[ox + x, oy + y];
                    if (c.R != c.G || c.G != c.B) return false;
                }
        }
        return true;
    }

    [Fact]
    public void TheConfusionMatrixCountsPairsAndShadesTheDiagonal()
    {
        int[] truth = [0, 0, 1, 1, 1, 2], predicted = [0, 1, 1, 1, 2, 2];
        var m = ConfusionPicture.Matrix(truth, predicted, 3);
        Assert.Equal(new[,] { { 1, 1, 0 }, { 0, 2, 1 }, { 0, 0, 1 } }, m);
        var path = Path.Combine(_dir.FullName, "confusion.png");
        string[] names = ["zero", "one", "two"];
        ConfusionPicture.Save(path, m, names);
        using var bmp = SKBitmap.Decode(path);
        var at = ConfusionPicture.Place(3, names, ConfusionPicture.Title(m));
        Assert.Equal((at.Width, at.Height), (bmp.Width, bmp.Height));
        // Cell (2, 2) is its whole row (share 1, darkest); cell (2, 0) is empty (white). Sample away from the digits.
        SKColor Cell(int r, int c) => bmp.GetPixel(at.Left + c * ConfusionPicture.Cell + 4, at.Top + r * ConfusionPicture.Cell + 4);
        Assert.Equal(ConfusionPicture.Shade(1), Cell(2, 2));
        Assert.Equal(ConfusionPicture.Shade(0), Cell(2, 0));
        Assert.Equal(ConfusionPicture.Shade(0.5f), Cell(0, 0));
    }

    [Fact]
    public void CurvesAreWrittenAtTheirSizeAndMetricsRoundTrip()
    {
        var rows = new[] { new EpochRow(1, 1.5, 0.5, 1.2, 0.6, 3.5), new EpochRow(2, 0.7, 0.8, 0.9, 0.75, 3.1) };
        var csv = Path.Combine(_dir.FullName, "metrics.csv");
        EpochRow.WriteCsv(csv, rows);
        Assert.Equal(rows, EpochRow.ReadCsv(csv));
        var written = Charts.Write(_dir.FullName, rows);
        Assert.Equal(2, written.Count);
        foreach (var f in written)
        {
            using var bmp = SKBitmap.Decode(f);
            Assert.Equal((Charts.Width, Charts.Height), (bmp.Width, bmp.Height));
            // Not a blank canvas: the two curves put at least two distinct non-grey colours on it.
            var colours = new HashSet<SKColor>();
            for (int y = 0; y < bmp.Height; y += 2) for (int x = 0; x < bmp.Width; x += 2) colours.Add(bmp.GetPixel(x, y));
            Assert.True(colours.Count(c => Math.Abs(c.Red - c.Blue) > 60) >= 2);
        }
    }
}
