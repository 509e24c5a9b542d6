using Cnn.Core;
using Cnn.Dsl.Data;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Cnn.Tests.Data;

public sealed class RandomErasingTests
{
    /// <summary>A batch whose values lie in [1, 2], so that no pixel equals an erasing value of 0 or below by chance.</summary>
    internal static Tensor Batch(int n, int c, int h, int w, int seed)
    {
        var rng = new Random(seed);
        return Tensor.FromArray(Enumerable.Range(0, n * c * h * w).Select(_ => 1 + (float)rng.NextDouble()).ToArray(), n, c, h, w);
    }

    private static Gen<RandomErasing> Erasings() =>
        from p in Gen.Elements(0f, 0.3f, 0.5f, 1f)
        from lo in Gen.Choose(1, 30)
        from span in Gen.Choose(0, 60)
        from r in Gen.Elements(0.3f, 0.5f, 1f)
        from value in Gen.Elements(0f, -1.5f)
        from randomValues in Gen.Elements(false, true)
        select new RandomErasing(p, lo / 100f, Math.Min(1, (lo + span) / 100f), r, value, randomValues);

    /// <summary>The rows and columns of image <paramref name="i"/> where <paramref name="y"/> differs from <paramref name="x"/> in channel <paramref name="ch"/>.</summary>
    private static List<(int Y, int X)> Changed(Tensor x, Tensor y, int i, int ch)
    {
        int c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        var changed = new List<(int, int)>();
        for (int r = 0; r < h; r++)
            for (int col = 0; col < w; col++)
            {
                int at = ((i * c + ch) * h + r) * w + col;
                if (BitConverter.SingleToInt32Bits(x[at]) != BitConverter.SingleToInt32Bits(y[at])) changed.Add((r, col));
            }
        return changed;
    }

    [CnnProperty]
    public Property EachImageIsLeftAsItIsOrErasedInOneRectangleOfTheAskedAreaAndAspectInEveryChannel() =>
        Prop.ForAll((from n in Gen.Choose(1, 4) from c in Gen.Choose(1, 3) from h in Gen.Choose(2, 24) from w in Gen.Choose(2, 24)
                     from seed in Gen.Choose(0, 99999) from e in Erasings() select (n, c, h, w, seed, e)).ToArbitrary(), t =>
        {
            var x = Batch(t.n, t.c, t.h, t.w, t.seed);
            var options = new AugmentOptions { Erasing = t.e };
            var y = Augment.Apply(x, options, t.seed);
            if (y.Shape != x.Shape || !y.Span.SequenceEqual(Augment.Apply(x, options, t.seed).Span)) return false.Label("shape or determinism");
            for (int i = 0; i < t.n; i++)
            {
                var changed = Changed(x, y, i, 0);
                if (changed.Count == 0)
                {
                    if (Enumerable.Range(1, t.c - 1).Any(ch => Changed(x, y, i, ch).Count > 0)) return false.Label("another channel erased alone");
                    continue;
                }
                if (t.e.Probability == 0) return false.Label("erased with p = 0");
                int top = changed.Min(p => p.Y), bottom = changed.Max(p => p.Y), left = changed.Min(p => p.X), right = changed.Max(p => p.X);
                int eh = bottom - top + 1, ew = right - left + 1;
                // Rounding the side lengths moves the area and the aspect a little off the drawn figures: half a pixel per side.
                double area = (double)t.h * t.w;
                bool rectangle = changed.Count == eh * ew; // a random value equals the input's with probability 0
                bool inArea = (eh - 0.5) * (ew - 0.5) <= t.e.MaxArea * area + 1e-9 && (eh + 0.5) * (ew + 0.5) >= t.e.MinArea * area - 1e-9;
                bool inAspect = (eh - 0.5) / (ew + 0.5) <= 1 / t.e.MinAspect + 1e-9 && (eh + 0.5) / (ew - 0.5) >= t.e.MinAspect - 1e-9;
                bool smaller = eh < t.h && ew < t.w;
                for (int ch = 0; ch < t.c; ch++)
                    for (int r = 0; r < t.h; r++)
                        for (int col = 0; col < t.w; col++)
                        {
                            float v = y[((i * t.c + ch) * t.h + r) * t.w + col];
                            bool inside = r >= top && r <= bottom && col >= left && col <= right;
                            if (inside && !t.e.RandomValues && v != t.e.Value) return false.Label($"({r}, {col}) of channel {ch} is {v}, not the value");
                            if (inside && t.e.RandomValues && !float.IsFinite(v)) return false.Label("a random value is not finite");
                            if (!inside && v != x[((i * t.c + ch) * t.h + r) * t.w + col]) return false.Label($"({r}, {col}) outside the rectangle changed");
                        }
                if (!(rectangle && inArea && inAspect && smaller)) return false.Label($"rectangle {eh}x{ew} at ({top}, {left}) of {t.h}x{t.w}: {rectangle} {inArea} {inAspect} {smaller}");
            }
            return true.ToProperty();
        });

    [Fact]
    public void AboutTheAskedShareOfImagesIsErasedAndRandomValuesAreStandardNormal()
    {
        var x = Batch(400, 1, 28, 28, 3);
        var half = Augment.Apply(x, new AugmentOptions { Erasing = RandomErasing.Default }, 11);
        int erased = Enumerable.Range(0, 400).Count(i => Changed(x, half, i, 0).Count > 0);
        // 400 draws of p = 0.5: the count lies within 5 standard deviations (50) of 200 unless the draws are wrong.
        Assert.InRange(erased, 150, 250);
        var noisy = Augment.Apply(x, new AugmentOptions { Erasing = new RandomErasing(1, 0.3f, 0.3f, 1, RandomValues: true) }, 5);
        var values = Enumerable.Range(0, 400).SelectMany(i => Changed(x, noisy, i, 0).Select(p => noisy[(i * 28 + p.Y) * 28 + p.X])).ToArray();
        double mean = values.Average(v => (double)v), sd = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
        Assert.True(values.Length > 400 * 200, $"only {values.Length} values erased");
        Assert.InRange(mean, -0.02, 0.02);
        Assert.InRange(sd, 0.98, 1.02);
        Assert.False(Augment.Apply(x, new AugmentOptions { Erasing = RandomErasing.Default }, 12).Span.SequenceEqual(half.Span));
    }

    [Fact]
    public void ThePipelineErasesAfterNormalisingSoTheFillIsTheValueItselfAndTheRestIsNormalised()
    {
        var data = BatchPipelineTests.Images(count: 40);
        var norm = new Normalization([0.5f], [0.25f]);
        var plain = new PipelineOptions(new AugmentOptions(FlipHorizontal: true), norm);
        var erasing = plain with { Augment = plain.Augment! with { Erasing = new RandomErasing(1, 0.1f, 0.2f, 0.5f, Value: 0) } };
        using var a = new BatchPipeline(data, 40, 9, plain);
        using var b = new BatchPipeline(data, 40, 9, erasing);
        var x = a.Next().Images;
        var y = b.Next().Images;
        int erasedImages = 0;
        for (int i = 0; i < 40; i++)
        {
            var changed = Changed(x, y, i, 0);
            erasedImages += changed.Count > 0 ? 1 : 0;
            // After normalising, a value of 0 is the mean (0.5 before); erasing before normalising would have given -2.
            Assert.All(changed, p => Assert.Equal(0f, y[(i * 8 + p.Y) * 8 + p.X]));
        }
        Assert.Equal(40, erasedImages);
        Assert.Throws<CnnException>(() => new BatchPipeline(data, 10, 1, plain with { Augment = new AugmentOptions { Erasing = new RandomErasing(MinArea: 0.5f, MaxArea: 0.4f) } }));
    }

    [Fact]
    public void EraseFillsTheRectangleOfEveryPlaneAndRejectsOneOutside()
    {
        // 2 planes of 1 2 3 / 4 5 6.
        var x = Tensor.FromArray([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6], 2, 2, 3);
        Assert.Equal([1f, 9, 9, 4, 5, 6, 1, 9, 9, 4, 5, 6], Augment.Erase(x, 0, 1, 1, 2, 9).ToArray());
        Assert.Throws<CnnException>(() => Augment.Erase(x, 1, 2, 2, 1, 0));
        Assert.Throws<CnnException>(() => Augment.Erase(x, 0, 0, 0, 1, 0));
        foreach (var bad in new[] { new RandomErasing(Probability: 1.5f), new RandomErasing(MinArea: 0), new RandomErasing(MaxArea: 2), new RandomErasing(MinAspect: 3),
                     new RandomErasing(Value: float.NaN) })
            Assert.Throws<CnnException>(() => Augment.Apply(Tensor.Zeros(1, 1, 4, 4), new AugmentOptions { Erasing = bad }, 0));
    }
}
