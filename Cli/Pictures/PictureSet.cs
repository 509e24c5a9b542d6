using Cnn.Dsl;
using Cnn.Dsl.Data;

namespace Cnn.Cli.Pictures;

/// <summary>The pictures of a run folder, made the same way by <c>cnn train</c> and <c>cnn show</c>.</summary>
internal static class PictureSet
{
    /// <summary>
    /// Writes <c>filters-NAME.png</c> (the first convolution's filters), and, when validation data is given,
    /// <c>input.png</c> and <c>features-LAYER.png</c> (the maps of its first example at every convolution) and
    /// <c>confusion.png</c>; and the curves when <paramref name="rows"/> has any. Returns the paths written.
    /// </summary>
    public static IReadOnlyList<string> Write(string folder, Model model, string filtersName, LabeledData? validation,
        IReadOnlyList<string> classNames, IReadOnlyList<EpochRow>? rows)
    {
        var written = new List<string>();
        if (WriteFilters(folder, model.Network, model.Parameters, filtersName) is string f) written.Add(f);
        if (validation is { Count: > 0 })
        {
            var sample = validation.Images.Slice(0, 1);
            var input = Path.Combine(folder, "input.png");
            var (picture, min, max) = NetworkPictures.Input(sample);
            using (var d = Figure.Around(picture, ["input: validation example 0", $"class {ClassName(classNames, validation.Labels[0])}; the feature maps are of this input"], ColourScale.Grey(min, max, "value")))
                d.Save(input);
            written.Add(input);
            foreach (var maps in NetworkPictures.FeatureMaps(model.Network, model.Parameters, model.State, sample))
            {
                var p = Path.Combine(folder, $"features-{NetworkPictures.Safe(maps.Layer)}.png");
                maps.Save(p);
                written.Add(p);
            }
            var predicted = new List<int>(validation.Count);
            for (int start = 0; start < validation.Count; start += 256)
            {
                int count = Math.Min(256, validation.Count - start);
                predicted.AddRange(Trainer.ArgMax(Apply.Forward(model.Network, model.Parameters, validation.Images.Slice(start, count), Mode.Eval, model.State)));
            }
            var confusion = Path.Combine(folder, "confusion.png");
            ConfusionPicture.Save(confusion, ConfusionPicture.Matrix(validation.Labels, predicted, validation.Classes), classNames);
            written.Add(confusion);
        }
        if (rows is { Count: > 0 }) written.AddRange(Charts.Write(folder, rows));
        return written;
    }

    /// <summary>Writes <c>filters-NAME.png</c>; null when the network has no 2-d convolution.</summary>
    public static string? WriteFilters(string folder, Network network, Parameters parameters, string name)
    {
        if (NetworkPictures.Filters(network, parameters, name) is not { } filters) return null;
        var path = Path.Combine(folder, $"filters-{name}.png");
        filters.Save(path);
        return path;
    }

    /// <summary>Class <paramref name="label"/> with its name when the data names it ("7" or "3 (Dress)").</summary>
    public static string ClassName(IReadOnlyList<string> names, int label) =>
        label < names.Count && names[label] != label.ToString(System.Globalization.CultureInfo.InvariantCulture) ? $"{label} ({names[label]})" : label.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
