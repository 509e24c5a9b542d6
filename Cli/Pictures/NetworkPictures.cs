using Cnn.Core;
using Cnn.Dsl;

namespace Cnn.Cli.Pictures;

/// <summary>Pictures of what a network holds: its first layer's filters and the feature maps of one input.</summary>
internal static class NetworkPictures
{
    /// <summary>The most maps drawn for one layer, so that a 512-channel layer stays a picture, not a poster.</summary>
    public const int MaxMapsPerLayer = 64;

    /// <summary>The first 2-d convolution in execution order, or null when the network has none.</summary>
    public static Node? FirstConv(Network network) => network.Leaves.FirstOrDefault(n => n.Layer is Conv2d);

    /// <summary>
    /// The first convolution's filters, one tile per filter: a filter over 3 input channels is drawn in colour, any
    /// other as grey (the mean over its input channels); each tile is stretched from its own minimum (black) to its
    /// maximum (white).
    /// </summary>
    /// <returns>The layout and the picture, or null when the network has no 2-d convolution.</returns>
    public static (TileGrid Grid, Raster Picture, string Layer)? Filters(Network network, Parameters parameters)
    {
        var conv = FirstConv(network);
        if (conv is null) return null;
        var w = parameters[Network.Join(conv.Path, "weight")];
        int f = w.Shape[0], c = w.Shape[1], kh = w.Shape[2], kw = w.Shape[3], plane = kh * kw;
        var tiles = new List<float[]>(f);
        for (int i = 0; i < f; i++)
        {
            var filter = w.Span.Slice(i * c * plane, c * plane);
            if (c == 3)
            {
                tiles.Add(TileGrid.Stretch(filter));
                continue;
            }
            var mean = new float[plane];
            for (int ch = 0; ch < c; ch++)
                for (int k = 0; k < plane; k++) mean[k] += filter[ch * plane + k] / c;
            tiles.Add(TileGrid.Stretch(mean));
        }
        var grid = TileGrid.For(f, kw, kh);
        return (grid, grid.Render(tiles), conv.Path);
    }

    /// <summary>
    /// The output of every 2-d convolution for one input <c>[1, ...input shape]</c>, one picture per layer and one
    /// tile per channel (at most <see cref="MaxMapsPerLayer"/>), each map stretched to its own range.
    /// </summary>
    public static IReadOnlyList<(string Layer, TileGrid Grid, Raster Picture)> FeatureMaps(Network network, Parameters parameters, Parameters state, Tensor input)
    {
        var convPaths = network.Leaves.Where(n => n.Layer is Conv2d).Select(n => n.Path).ToHashSet(StringComparer.Ordinal);
        var result = new List<(string, TileGrid, Raster)>();
        foreach (var (path, y) in Apply.Trace(network, parameters, input, Mode.Eval, state))
        {
            if (!convPaths.Contains(path) || y.Shape.Rank != 4) continue;
            int maps = Math.Min(y.Shape[1], MaxMapsPerLayer), h = y.Shape[2], w = y.Shape[3];
            var tiles = Enumerable.Range(0, maps).Select(m => TileGrid.Stretch(y.Span.Slice(m * h * w, h * w))).ToList();
            var grid = TileGrid.For(maps, w, h);
            result.Add((path, grid, grid.Render(tiles)));
        }
        return result;
    }

    /// <summary>The input itself as a picture (colour for 3 channels, else the first channel in grey), magnified.</summary>
    public static Raster Input(Tensor sample)
    {
        int c = sample.Shape[1], h = sample.Shape[2], w = sample.Shape[3];
        var tile = c == 3 ? TileGrid.Stretch(sample.Span) : TileGrid.Stretch(sample.Span[..(h * w)]);
        return TileGrid.For(1, w, h, 112).Render([tile]);
    }

    /// <summary>A file-name-safe form of a layer path.</summary>
    public static string Safe(string path) => path.Length == 0 ? "root" : path.Replace('/', '.');
}
