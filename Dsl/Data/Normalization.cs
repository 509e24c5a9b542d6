using System.Globalization;
using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// Per-channel standardisation, as Keras's featurewise normalisation: the mean and the (population) standard
/// deviation of each channel are computed once, on the training set, and every set (training, validation, a
/// single input) is mapped by <c>(x - mean[c]) / std[c]</c> with those same figures.
/// </summary>
/// <remarks>A channel whose standard deviation is 0 (constant) is only centred: it is divided by 1, not by 0.</remarks>
public sealed record Normalization
{
    /// <summary>Creates a normalisation from its figures, one per channel.</summary>
    /// <exception cref="CnnException">The lists differ in length, are empty, or a figure is not finite or a deviation is negative.</exception>
    public Normalization(IReadOnlyList<float> mean, IReadOnlyList<float> std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Count == 0 || mean.Count != std.Count)
            throw new CnnException($"A normalisation needs one mean and one standard deviation per channel; found {mean.Count} and {std.Count}.");
        for (int c = 0; c < mean.Count; c++)
            if (!float.IsFinite(mean[c]) || !float.IsFinite(std[c]) || std[c] < 0)
                throw new CnnException($"Channel {c}: mean {mean[c]} and standard deviation {std[c]} must be finite, the deviation >= 0.");
        Mean = mean.ToArray();
        Std = std.ToArray();
    }

    /// <summary>The mean of each channel.</summary>
    public IReadOnlyList<float> Mean { get; }

    /// <summary>The population standard deviation of each channel.</summary>
    public IReadOnlyList<float> Std { get; }

    /// <summary>The number of channels.</summary>
    public int Channels => Mean.Count;

    /// <summary>
    /// The per-channel mean and standard deviation of <paramref name="images"/> (<c>[N, C, ...]</c>, channel the
    /// second axis), accumulated in double precision.
    /// </summary>
    /// <exception cref="CnnException">The tensor has rank below 2 or no elements.</exception>
    public static Normalization Fit(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var (n, c, inner) = Layout(images, "fit a normalisation to");
        if (n * inner == 0) throw new CnnException($"Cannot fit a normalisation to an empty set of images ({images.Shape}).");
        var mean = new float[c];
        var std = new float[c];
        var x = images.Span;
        for (int ch = 0; ch < c; ch++)
        {
            double sum = 0;
            for (int i = 0; i < n; i++) foreach (var v in x.Slice((i * c + ch) * inner, inner)) sum += v;
            double m = sum / ((double)n * inner), sq = 0;
            for (int i = 0; i < n; i++) foreach (var v in x.Slice((i * c + ch) * inner, inner)) sq += (v - m) * (v - m);
            mean[ch] = (float)m;
            std[ch] = (float)Math.Sqrt(sq / ((double)n * inner));
        }
        return new Normalization(mean, std);
    }

    /// <summary>The images standardised channel by channel; same shape.</summary>
    /// <exception cref="CnnException">The images' channel count differs from this normalisation's.</exception>
    public Tensor Apply(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var (n, c, inner) = Layout(images, "normalise");
        if (c != Channels) throw new CnnException($"The normalisation has {Channels} channel(s); the images {images.Shape} have {c}.");
        var d = images.ToArray();
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
            {
                float m = Mean[ch], s = Std[ch] > 0 ? Std[ch] : 1f;
                foreach (ref var v in d.AsSpan((i * c + ch) * inner, inner)) v = (v - m) / s;
            }
        return Tensor.Own(d, images.Shape);
    }

    /// <summary>The data set with its images standardised; labels unchanged.</summary>
    public LabeledData Apply(LabeledData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return new LabeledData(Apply(data.Images), data.Labels, data.Classes);
    }

    /// <summary>The figures as text, <c>mean1,mean2;std1,std2</c> (invariant culture, round-trip precision), for checkpoint metadata.</summary>
    public string Format() =>
        string.Join(",", Mean.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + ";" +
        string.Join(",", Std.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));

    /// <summary>Parses the text of <see cref="Format"/>.</summary>
    /// <exception cref="Core.FormatException">The text is not two lists of numbers separated by ';'.</exception>
    public static Normalization Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(';');
        float[] Numbers(string s) => s.Split(',').Select(v => float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var f)
            ? f : throw new Core.FormatException($"Normalisation '{text}': '{v}' is not a number.")).ToArray();
        if (parts.Length != 2) throw new Core.FormatException($"Normalisation '{text}': expected 'means;deviations'.");
        try { return new Normalization(Numbers(parts[0]), Numbers(parts[1])); }
        catch (CnnException e) when (e is not Core.FormatException) { throw new Core.FormatException($"Normalisation '{text}': {e.Message}", e); }
    }

    /// <inheritdoc />
    public bool Equals(Normalization? other) => other is not null && Mean.SequenceEqual(other.Mean) && Std.SequenceEqual(other.Std);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Channels, Mean[0], Std[0]);

    private static (int N, int C, int Inner) Layout(Tensor images, string what)
    {
        if (images.Shape.Rank < 2) throw new CnnException($"Cannot {what} a tensor of shape {images.Shape}: expected [N, C, ...].");
        int n = images.Shape[0], c = images.Shape[1];
        int inner = n * c == 0 ? 0 : images.Size / (n * c);
        return (n, c, inner);
    }
}
