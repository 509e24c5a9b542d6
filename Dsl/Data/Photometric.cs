namespace Cnn.Dsl.Data;

/// <summary>
/// Brightness and contrast in place on float images in [0, 1], with torchvision's arithmetic (<c>_blend</c>:
/// <c>ratio * x + (1 - ratio) * other</c> in float32, clamped to [0, 1]), so the results can be checked against it.
/// </summary>
internal static class Photometric
{
    /// <summary>torchvision's <c>rgb_to_grayscale</c> weights.</summary>
    private const float Red = 0.2989f, Green = 0.587f, Blue = 0.114f;

    /// <summary>A factor drawn uniformly in [max(0, 1 - strength), 1 + strength], as <c>ColorJitter</c> draws it.</summary>
    public static float Factor(Random rng, float strength)
    {
        double lo = Math.Max(0, 1 - strength), hi = 1 + (double)strength;
        return (float)(lo + rng.NextDouble() * (hi - lo));
    }

    public static void Brightness(Span<float> values, float factor)
    {
        foreach (ref var v in values) v = Math.Clamp(factor * v, 0f, 1f);
    }

    /// <summary>Blends one image of <paramref name="channels"/> planes with its mean grey.</summary>
    public static void Contrast(Span<float> image, int channels, float factor)
    {
        int plane = image.Length / channels;
        double sum = 0;
        if (channels == 3)
            for (int i = 0; i < plane; i++) sum += Red * image[i] + Green * image[plane + i] + Blue * image[2 * plane + i];
        else
            foreach (var v in image) sum += v;
        float mean = (float)(sum / (channels == 3 ? plane : image.Length)), rest = (1 - factor) * mean;
        foreach (ref var v in image) v = Math.Clamp(factor * v + rest, 0f, 1f);
    }
}
