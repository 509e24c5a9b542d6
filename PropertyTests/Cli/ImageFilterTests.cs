using Cnn.Core;
using Cnn.Core.Filtering;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Cli;

/// <summary>
/// Golden cases for true convolution and correlation: hand-computed, from np.convolve / np.correlate's definitions,
/// and the examples of scipy.ndimage's documentation (each checked by hand in the comments).
/// </summary>
public sealed class ImageFilterTests
{
    private static float[] C1(float[] x, float[] w, FilterMode m, Boundary b = Boundary.Zeros, float k = 0) =>
        ImageFilter.Convolve(Tensor.FromArray(x, x.Length), Tensor.FromArray(w, w.Length), m, b, k).ToArray();

    private static float[] R1(float[] x, float[] w, FilterMode m, Boundary b = Boundary.Zeros) =>
        ImageFilter.Correlate(Tensor.FromArray(x, x.Length), Tensor.FromArray(w, w.Length), m, b).ToArray();

    [Fact]
    public void OneDimensionalAsNumPy()
    {
        // full: f[n] = sum_m w[m] x[n - m] = [0, 1, 2+0.5, 3+1, 1.5]
        float[] x = [1, 2, 3], w = [0, 1, 0.5f];
        Assert.Equal([0f, 1, 2.5f, 4, 1.5f], C1(x, w, FilterMode.Full));
        Assert.Equal([1f, 2.5f, 4], C1(x, w, FilterMode.Same));   // np.convolve(x, w, 'same'), odd K
        Assert.Equal([2.5f], C1(x, w, FilterMode.Valid));
        // np.correlate(x, w, 'full'): c[k] = sum_j x[k + j - 2] w[j] = [0.5, 1+1, 2+1.5, 3, 0]
        Assert.Equal([0.5f, 2, 3.5f, 3, 0], R1(x, w, FilterMode.Full));
        Assert.Equal([2f, 3.5f, 3], R1(x, w, FilterMode.Same));
        Assert.Equal([3.5f], R1(x, w, FilterMode.Valid));
    }

    [Fact]
    public void EvenKernelsAreCentredAsNdimageAndDifferFromNumPysSameByOneSample()
    {
        // scipy.ndimage.convolve1d([2, 8, 0, 4, 1, 9, 9, 0], [1, 3]) (mode 'reflect') = [14, 24, 4, 13, 12, 36, 27, 0]:
        // y[i] = x[i + 1] + 3 x[i], with x[8] reflected to x[7] = 0.
        float[] x = [2, 8, 0, 4, 1, 9, 9, 0], w = [1, 3];
        Assert.Equal([14f, 24, 4, 13, 12, 36, 27, 0], C1(x, w, FilterMode.Same, Boundary.Reflect));
        // scipy.ndimage.correlate1d(x, [1, 3]) = [8, 26, 8, 12, 7, 28, 36, 9]: y[i] = x[i - 1] + 3 x[i], x[-1] reflected to x[0].
        Assert.Equal([8f, 26, 8, 12, 7, 28, 36, 9], R1(x, w, FilterMode.Same, Boundary.Reflect));
        // np.convolve(x, w, 'same') starts the full result at (K-1)/2 = 0: [2, 14, 24, 4, 13, 12, 36, 27]; ours at K/2 = 1.
        var full = C1(x, w, FilterMode.Full);
        Assert.Equal([2f, 14, 24, 4, 13, 12, 36, 27, 0], full);
        Assert.Equal(full[1..9], C1(x, w, FilterMode.Same));
    }

    [Fact]
    public void TwoDimensionalAsScipyNdimageDocuments()
    {
        // scipy.ndimage.convolve's documented example; y[0, 0] = 3 + 5 + 2 + 1 (taps inside) = 11, plus 2 cval taps outside.
        var a = Tensor.FromArray([1, 2, 0, 0, 5, 3, 0, 4, 0, 0, 0, 7, 9, 3, 0, 0], 4, 4);
        var k = Tensor.FromArray([1, 1, 1, 1, 1, 0, 1, 0, 0], 3, 3);
        Assert.Equal([11f, 10, 7, 4, 10, 3, 11, 11, 15, 12, 14, 7, 12, 3, 7, 0], ImageFilter.Convolve(a, k, FilterMode.Same, Boundary.Zeros).ToArray());
        Assert.Equal([13f, 11, 8, 7, 11, 3, 11, 14, 16, 12, 14, 10, 15, 6, 10, 5], ImageFilter.Convolve(a, k, FilterMode.Same, Boundary.Constant, 1).ToArray());
        // A vertical 3-tap sum with 'reflect': y[0, 0] = x[1, 0] + x[0, 0] + x[-1 -> 0, 0] = 1 + 2 + 2.
        var b = Tensor.FromArray([2, 0, 0, 1, 0, 0, 0, 0, 0], 3, 3);
        var v3 = Tensor.FromArray([0, 1, 0, 0, 1, 0, 0, 1, 0], 3, 3);
        Assert.Equal([5f, 0, 0, 3, 0, 0, 1, 0, 0], ImageFilter.Convolve(b, v3, FilterMode.Same, Boundary.Reflect).ToArray());
        // A vertical 5-tap sum with 'nearest': y[0, 0] = x[2] + x[1] + x[0] + x[0] + x[0] = 0 + 1 + 2 + 2 + 2.
        var c = Tensor.FromArray([2, 0, 1, 1, 0, 0, 0, 0, 0], 3, 3);
        var v5 = Tensor.FromArray([0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0], 5, 3);
        Assert.Equal([7f, 0, 3, 5, 0, 2, 3, 0, 1], ImageFilter.Convolve(c, v5, FilterMode.Same, Boundary.Nearest).ToArray());
    }

    [Fact]
    public void WrapIsPeriodicAndTheKernelIsFlippedOnlyByConvolve()
    {
        // Convolution with [1, 0, 0] (same, o = 1) reads x[i + 1]; correlation reads x[i - 1].
        Assert.Equal([2f, 3, 4, 1], C1([1, 2, 3, 4], [1, 0, 0], FilterMode.Same, Boundary.Wrap));
        Assert.Equal([4f, 1, 2, 3], R1([1, 2, 3, 4], [1, 0, 0], FilterMode.Same, Boundary.Wrap));
        // Full with a non-zero boundary extends the input the same way: with [0, 0, 1], y[n] = x[n - 2] over 3 4 | 1 2 3 4.
        Assert.Equal([3f, 4, 1, 2, 3, 4], C1([1, 2, 3, 4], [0, 0, 1], FilterMode.Full, Boundary.Wrap));
        // 'nearest' full: [1 1 | 1 2 | 2 2] summed three at a time.
        Assert.Equal([3f, 4, 5, 6], C1([1, 2], [1, 1, 1], FilterMode.Full, Boundary.Nearest));
    }

    [Fact]
    public void LaplacianOfAConstantImageIsZeroInsideAndWithReflectEverywhere()
    {
        var img = Tensor.Full(new Shape(5, 6), 3f);
        var lap = Tensor.FromArray([-1, -1, -1, -1, 8, -1, -1, -1, -1], 3, 3);
        Assert.All(ImageFilter.Convolve(img, lap, FilterMode.Same, Boundary.Reflect).ToArray(), v => Assert.Equal(0f, v));
        Assert.All(ImageFilter.Convolve(img, lap, FilterMode.Valid).ToArray(), v => Assert.Equal(0f, v));
        var zeros = ImageFilter.Convolve(img, lap, FilterMode.Same, Boundary.Zeros);
        Assert.Equal(15f, zeros[0]); // a corner: 8 * 3 - 3 neighbours * 3
        Assert.Equal(new Shape(3, 4), ImageFilter.Convolve(img, lap, FilterMode.Valid).Shape);
        Assert.Equal(new Shape(7, 8), ImageFilter.Convolve(img, lap, FilterMode.Full).Shape);
    }

    [Fact]
    public void ShapesThatCannotBeFilteredAreShapeErrors()
    {
        Assert.Throws<ShapeException>(() => ImageFilter.Convolve(Tensor.Zeros(3), Tensor.Zeros(2, 2)));
        Assert.Throws<ShapeException>(() => ImageFilter.Convolve(Tensor.Zeros(2, 2), Tensor.Zeros(3, 3), FilterMode.Valid));
        Assert.Throws<ShapeException>(() => ImageFilter.Convolve(Tensor.Zeros(1, 1, 1), Tensor.Zeros(1, 1, 1)));
        Assert.Throws<ShapeException>(() => ImageFilter.Convolve(Tensor.Zeros(0, 2), Tensor.Zeros(1, 1)));
    }

    private static Gen<(Tensor X, Tensor W)> Pairs() =>
        from h in Gen.Choose(1, 7) from w in Gen.Choose(1, 7)
        from kh in Gen.Choose(1, 4) from kw in Gen.Choose(1, 4)
        from seed in Gen.Choose(0, 9999)
        let rng = new Random(seed)
        select (Tensor.FromArray(Enumerable.Range(0, h * w).Select(_ => (float)rng.Next(-9, 10)).ToArray(), h, w),
                Tensor.FromArray(Enumerable.Range(0, kh * kw).Select(_ => (float)rng.Next(-3, 4)).ToArray(), kh, kw));

    private static Tensor Flip(Tensor k)
    {
        var a = k.ToArray();
        Array.Reverse(a);
        return Tensor.FromArray(a, k.Shape);
    }

    /// <summary>
    /// Convolution is correlation with the kernel turned 180 degrees (exactly, in full and valid mode, and in same
    /// mode for odd sizes, where both centre at K/2), and full convolution with zeros commutes (np.convolve(a, v) =
    /// np.convolve(v, a)). Integer data keeps the sums exact.
    /// </summary>
    [Property(MaxTest = 200)]
    public Property ConvolutionIsCorrelationWithTheFlippedKernelAndCommutes() =>
        Prop.ForAll((from p in Pairs() from b in Gen.Elements(Enum.GetValues<Boundary>()) select (p.X, p.W, b)).ToArbitrary(), t =>
        {
            bool Same(Tensor a, Tensor b) => a.Shape == b.Shape && a.Span.SequenceEqual(b.Span);
            bool odd = t.W.Shape[0] % 2 == 1 && t.W.Shape[1] % 2 == 1;
            bool fits = t.W.Shape[0] <= t.X.Shape[0] && t.W.Shape[1] <= t.X.Shape[1];
            return Same(ImageFilter.Convolve(t.X, t.W, FilterMode.Full, t.b, 2), ImageFilter.Correlate(t.X, Flip(t.W), FilterMode.Full, t.b, 2))
                && (!odd || Same(ImageFilter.Convolve(t.X, t.W, FilterMode.Same, t.b, 2), ImageFilter.Correlate(t.X, Flip(t.W), FilterMode.Same, t.b, 2)))
                && (!fits || Same(ImageFilter.Convolve(t.X, t.W, FilterMode.Valid, t.b), ImageFilter.Correlate(t.X, Flip(t.W), FilterMode.Valid, t.b)))
                && Same(ImageFilter.Convolve(t.X, t.W, FilterMode.Full), ImageFilter.Convolve(t.W, t.X, FilterMode.Full));
        });

    /// <summary>A kernel that is 1 at its ndimage centre (K/2) and 0 elsewhere leaves any input unchanged, for every boundary.</summary>
    [Property(MaxTest = 100)]
    public Property ACentredDeltaIsTheIdentityInSameMode() =>
        Prop.ForAll((from p in Pairs() from b in Gen.Elements(Enum.GetValues<Boundary>()) select (p.X, p.W, b)).ToArbitrary(), t =>
        {
            int kh = t.W.Shape[0], kw = t.W.Shape[1];
            var d = new float[kh * kw];
            // Convolution flips the kernel, so its centre tap K/2 reads x[i + K/2 - m] = x[i] at m = K/2.
            d[kh / 2 * kw + kw / 2] = 1;
            return ImageFilter.Convolve(t.X, Tensor.FromArray(d, kh, kw), FilterMode.Same, t.b, 5).Span.SequenceEqual(t.X.Span);
        });
}
