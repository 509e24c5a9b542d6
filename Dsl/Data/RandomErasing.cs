using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// Random erasing (Zhong et al., 2017; torchvision's <c>RandomErasing</c>): with probability
/// <paramref name="Probability"/> a rectangle of each image, of area a fraction in [<paramref name="MinArea"/>,
/// <paramref name="MaxArea"/>] of the image and of aspect ratio (height / width) in [<paramref name="MinAspect"/>,
/// 1 / <paramref name="MinAspect"/>] (drawn uniformly on a log scale), is filled with <paramref name="Value"/> in every
/// channel, or with values drawn from the standard normal distribution when <paramref name="RandomValues"/> is set.
/// </summary>
/// <remarks>
/// The batch pipeline erases after normalising, as torchvision's <c>RandomErasing</c> comes after <c>Normalize</c>:
/// the value 0 is then the training set's mean, and the random values have its spread. As torchvision, a draw whose
/// rectangle does not fit inside the image is tried again, up to 10 times; then the image is left as it is.
/// </remarks>
/// <param name="Probability">The chance that an image is erased, in [0, 1] (0.5 in the paper and in torchvision).</param>
/// <param name="MinArea">The smallest area of the rectangle as a fraction of the image's, in (0, <paramref name="MaxArea"/>].</param>
/// <param name="MaxArea">The largest area as a fraction of the image's, at most 1.</param>
/// <param name="MinAspect">The smallest ratio of height to width, in (0, 1]; the largest is its inverse.</param>
/// <param name="Value">The value written into the rectangle.</param>
/// <param name="RandomValues">Fill with standard normal values instead of <paramref name="Value"/>.</param>
public sealed record RandomErasing(float Probability = 0.5f, float MinArea = 0.02f, float MaxArea = 0.33f, float MinAspect = 0.3f, float Value = 0,
    bool RandomValues = false)
{
    /// <summary>The paper's and torchvision's values: probability 0.5, area 2 % to 33 %, aspect 0.3 to 3.3, filled with 0.</summary>
    public static RandomErasing Default { get; } = new();

    /// <summary>Checks that the figures are in range.</summary>
    /// <exception cref="CnnException">A figure is out of its range or not finite.</exception>
    internal void Check()
    {
        if (!(Probability >= 0 && Probability <= 1) || !(MinArea > 0 && MinArea <= MaxArea && MaxArea <= 1) || !(MinAspect > 0 && MinAspect <= 1)
            || !float.IsFinite(Value))
            throw new CnnException($"Random erasing needs 0 <= Probability <= 1, 0 < MinArea <= MaxArea <= 1, 0 < MinAspect <= 1 and a finite Value; found {this}.");
    }

    /// <summary>
    /// Draws the rectangle for one <paramref name="h"/> x <paramref name="w"/> image, as torchvision's
    /// <c>RandomErasing.get_params</c> does; null when the image is not erased.
    /// </summary>
    internal (int Top, int Left, int Height, int Width)? Draw(Random rng, int h, int w)
    {
        if (rng.NextDouble() >= Probability) return null;
        double area = (double)h * w, logMin = Math.Log(MinAspect), logMax = -logMin;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (MinArea + rng.NextDouble() * (MaxArea - MinArea));
            double aspect = Math.Exp(logMin + rng.NextDouble() * (logMax - logMin));
            int eh = (int)Math.Round(Math.Sqrt(target * aspect)), ew = (int)Math.Round(Math.Sqrt(target / aspect));
            if (eh < 1 || ew < 1 || eh >= h || ew >= w) continue;
            return (rng.Next(h - eh + 1), rng.Next(w - ew + 1), eh, ew);
        }
        return null;
    }
}
