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
    /// other as grey (the mean over its input channels); all on the scale of the smallest and largest value drawn.
    /// <paramref name="stage"/> (such as "initial") goes into the title.
    /// </summary>
    /// <returns>The grid, or null when the network has no 2-d convolution.</returns>
    public static LayerGrid? Filters(Network network, Parameters parameters, string? stage = null)
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
                tiles.Add(filter.ToArray());
                continue;
            }
            var mean = new float[plane];
            for (int ch = 0; ch < c; ch++)
                for (int k = 0; k < plane; k++) mean[k] += filter[ch * plane + k] / c;
            tiles.Add(mean);
        }
        var grid = LayerGrid.Layout(f, kw, kh);
        var (picture, min, max) = LayerGrid.Render(grid, tiles);
        string title = $"{conv.Path}: {f} filters {w.Shape}{(stage is null ? "" : $", {stage}")}";
        string detail = c == 3 ? "one tile per filter, in colour (red, green, blue = input channels 0, 1, 2)"
            : c == 1 ? "one tile per filter, its weights in grey" : $"one tile per filter: the mean of its {c} input channels, in grey";
        return new LayerGrid(conv.Path, title, detail, grid, picture, min, max);
    }

    /// <summary>
    /// The output of every 2-d convolution for one input <c>[1, ...input shape]</c>, one grid per layer and one tile
    /// per channel (at most <see cref="MaxMapsPerLayer"/>), all maps of a layer on one scale.
    /// </summary>
    public static IReadOnlyList<LayerGrid> FeatureMaps(Network network, Parameters parameters, Parameters state, Tensor input)
    {
        var convPaths = network.Leaves.Where(n => n.Layer is Conv2d).Select(n => n.Path).ToHashSet(StringComparer.Ordinal);
        var result = new List<LayerGrid>();
        foreach (var (path, y) in Apply.Trace(network, parameters, input, Mode.Eval, state))
        {
            if (!convPaths.Contains(path) || y.Shape.Rank != 4) continue;
            int channels = y.Shape[1], maps = Math.Min(channels, MaxMapsPerLayer), h = y.Shape[2], w = y.Shape[3];
            var tiles = Enumerable.Range(0, maps).Select(m => y.Span.Slice(m * h * w, h * w).ToArray()).ToList();
            var grid = LayerGrid.Layout(maps, w, h);
            var (picture, min, max) = LayerGrid.Render(grid, tiles);
            string shown = maps == channels ? $"{channels} channels" : $"channels 0 to {maps - 1} of {channels}";
            result.Add(new LayerGrid(path, $"{path}: feature maps {y.Shape.DropBatch()} of the input", $"one tile per output channel ({shown}), before the activation", grid, picture, min, max));
        }
        return result;
    }

    /// <summary>The input itself (colour for 3 channels, else the first channel in grey), magnified, with its range.</summary>
    public static (Raster Picture, float Min, float Max) Input(Tensor sample)
    {
        int c = sample.Shape[1], h = sample.Shape[2], w = sample.Shape[3];
        var values = c == 3 ? sample.Span[..(3 * h * w)].ToArray() : sample.Span[..(h * w)].ToArray();
        var (min, max) = TileGrid.Range(values);
        return (TileGrid.For(1, w, h, 224).Render([TileGrid.Stretch(values, min, max)]), min, max);
    }

    /// <summary>A file-name-safe form of a layer path.</summary>
    public static string Safe(string path) => path.Length == 0 ? "root" : path.Replace('/', '.');
}
