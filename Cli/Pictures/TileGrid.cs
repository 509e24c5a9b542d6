namespace Cnn.Cli.Pictures;

/// <summary>
/// Where the tiles of a grid picture go: as square a grid as the count allows (columns = ceil(sqrt(count))), each
/// tile magnified by a whole <see cref="Scale"/> (nearest neighbour, so each value stays one sharp square) and
/// separated from its neighbours and the border by <see cref="Gap"/> pixels of <see cref="Background"/>; above each
/// tile a strip of <see cref="Caption"/> pixels (0: none) holds its label.
/// </summary>
internal sealed record TileGrid(int Count, int TileWidth, int TileHeight, int Scale, int Gap = 2, int Caption = 0)
{
    /// <summary>A blue-grey that no grey tile can have (its R, G and B differ), so the gaps are told from the tiles.</summary>
    public static readonly (byte R, byte G, byte B) Background = (40, 60, 90);

    /// <summary>
    /// A layout whose tiles are magnified to about <paramref name="targetSide"/> pixels on their longer side (never
    /// shrunk), with a label strip of <paramref name="caption"/> pixels above each.
    /// </summary>
    public static TileGrid For(int count, int tileWidth, int tileHeight, int targetSide = 48, int caption = 0) =>
        new(count, tileWidth, tileHeight, Math.Max(1, targetSide / Math.Max(tileWidth, tileHeight)), Caption: caption);

    public int Columns => Math.Max(1, (int)Math.Ceiling(Math.Sqrt(Count)));

    public int Rows => Math.Max(1, (Count + Columns - 1) / Columns);

    public int Width => Gap + Columns * (TileWidth * Scale + Gap);

    public int Height => Gap + Rows * (Caption + TileHeight * Scale + Gap);

    /// <summary>The top-left pixel of tile <paramref name="i"/> (below its label strip).</summary>
    public (int X, int Y) Origin(int i) => (Gap + i % Columns * (TileWidth * Scale + Gap), Gap + Caption + i / Columns * (Caption + TileHeight * Scale + Gap));

    /// <summary>
    /// Draws the tiles: each is <c>[channels, TileHeight, TileWidth]</c> values in [0, 1], one channel (grey) or three (RGB).
    /// </summary>
    public Raster Render(IReadOnlyList<float[]> tiles)
    {
        if (tiles.Count != Count) throw new ArgumentException($"The grid holds {Count} tiles; {tiles.Count} were given.", nameof(tiles));
        var r = new Raster(Width, Height, Background);
        int plane = TileWidth * TileHeight;
        for (int i = 0; i < tiles.Count; i++)
        {
            var t = tiles[i];
            bool rgb = t.Length == 3 * plane;
            if (!rgb && t.Length != plane) throw new ArgumentException($"Tile {i} has {t.Length} values; expected {plane} or {3 * plane}.", nameof(tiles));
            var (ox, oy) = Origin(i);
            for (int y = 0; y < TileHeight; y++)
                for (int x = 0; x < TileWidth; x++)
                {
                    int k = y * TileWidth + x;
                    var c = rgb ? (Raster.Byte(t[k]), Raster.Byte(t[plane + k]), Raster.Byte(t[2 * plane + k])) : Raster.Grey(t[k]);
                    r.Fill(ox + x * Scale, oy + y * Scale, Scale, Scale, c);
                }
        }
        return r;
    }

    /// <summary>Maps values linearly so their minimum is 0 and their maximum 1; a constant array maps to 0.5.</summary>
    public static float[] Stretch(ReadOnlySpan<float> values)
    {
        var (min, max) = Range(values);
        return Stretch(values, min, max);
    }

    /// <summary>Maps values linearly so <paramref name="min"/> is 0 and <paramref name="max"/> 1 (one scale for many tiles); an empty range maps to 0.5.</summary>
    public static float[] Stretch(ReadOnlySpan<float> values, float min, float max)
    {
        var r = new float[values.Length];
        for (int i = 0; i < r.Length; i++)
            r[i] = max > min ? (values[i] - min) / (max - min) : 0.5f;
        return r;
    }

    /// <summary>The least and greatest finite value (+inf and -inf when there is none).</summary>
    public static (float Min, float Max) Range(ReadOnlySpan<float> values)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (var v in values)
        {
            if (!float.IsFinite(v)) continue;
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        return (min, max);
    }
}
