using System.Globalization;
using SkiaSharp;

namespace Cnn.Cli.Pictures;

/// <summary>
/// The tiles of one layer (its filters, or its feature maps for one input) on one value scale: black is
/// <see cref="Min"/> and white <see cref="Max"/> in every tile, so tiles compare with each other and the colour bar
/// says what a grey level means (a tile stretched to its own range would make a dead channel look alive).
/// </summary>
internal sealed record LayerGrid(string Layer, string Title, string Detail, TileGrid Grid, Raster Picture, float Min, float Max)
{
    /// <summary>The side, in pixels, that a tile is magnified to at least when it is smaller: a 5x5 filter becomes 95 x 95, a 24x24 map 96 x 96.</summary>
    public const int TileSide = 96;

    /// <summary>The strip above each tile that holds its channel index.</summary>
    public const int LabelStrip = 14;

    /// <summary>The layout of <paramref name="count"/> tiles of one layer, magnified to <see cref="TileSide"/> with label strips.</summary>
    public static TileGrid Layout(int count, int tileWidth, int tileHeight) => TileGrid.For(count, tileWidth, tileHeight, TileSide, LabelStrip);

    /// <summary>Stretches every tile by the common range of all of them and renders the grid.</summary>
    public static (Raster Picture, float Min, float Max) Render(TileGrid grid, IReadOnlyList<float[]> values)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (var v in values)
        {
            var (lo, hi) = TileGrid.Range(v);
            (min, max) = (Math.Min(min, lo), Math.Max(max, hi));
        }
        if (min > max) (min, max) = (0, 0);
        return (grid.Render(values.Select(v => TileGrid.Stretch(v, min, max)).ToList()), min, max);
    }

    /// <summary>The figure: title, detail line, the tiles with their channel indices, and the grey scale.</summary>
    public Drawing Draw()
    {
        var labels = Enumerable.Range(0, Grid.Count).Select(i =>
        {
            var (x, y) = Grid.Origin(i);
            return (i.ToString(CultureInfo.InvariantCulture), x + Grid.TileWidth * Grid.Scale / 2f, y - 3f);
        }).ToList();
        return Figure.Around(Picture, [Title, Detail], ColourScale.Grey(Min, Max, "value"), labels, SKColors.White);
    }

    /// <summary>Draws the figure and writes it atomically as PNG.</summary>
    public void Save(string path)
    {
        using var d = Draw();
        d.Save(path);
    }
}
