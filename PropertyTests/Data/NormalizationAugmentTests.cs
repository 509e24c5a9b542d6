using Cnn.Core;
using Cnn.Dsl.Data;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Data;

public sealed class NormalizationTests
{
    [Fact]
    public void FitComputesEachChannelsMeanAndPopulationDeviation()
    {
        // 2 images, 2 channels, 2 pixels: channel 0 holds 1 3 | 5 7 (mean 4, var 5), channel 1 holds 10 10 | 10 10.
        var x = Tensor.FromArray([1, 3, 10, 10, 5, 7, 10, 10], 2, 2, 1, 2);
        var n = Normalization.Fit(x);
        Assert.Equal([4f, 10f], n.Mean);
        Assert.Equal(MathF.Sqrt(5), n.Std[0], 6);
        Assert.Equal(0f, n.Std[1]);
        var y = n.Apply(x);
        Assert.Equal(x.Shape, y.Shape);
        Assert.Equal(-3 / MathF.Sqrt(5), y[0], 6);
        Assert.Equal(0f, y[2]); // a constant channel is centred, not divided by 0
    }

    [CnnProperty]
    public Property TheTrainingSetComesOutWithZeroMeanAndUnitDeviationAndOtherSetsUseItsFigures() =>
        Prop.ForAll((from n in Gen.Choose(2, 6) from c in Gen.Choose(1, 3) from hw in Gen.Choose(1, 4) from seed in Gen.Choose(0, 9999)
                     select (n, c, hw, seed)).ToArbitrary(), t =>
        {
            var rng = new Random(t.seed);
            Tensor Random(float scale, float shift) => Tensor.FromArray(
                Enumerable.Range(0, t.n * t.c * t.hw * t.hw).Select(_ => (float)rng.NextDouble() * scale + shift).ToArray(), t.n, t.c, t.hw, t.hw);
            var train = Random(5, 2);
            var norm = Normalization.Fit(train);
            var again = Normalization.Fit(norm.Apply(train));
            var other = Random(1, -7);
            var applied = norm.Apply(other);
            int inner = t.hw * t.hw;
            bool usesTrainingFigures = Enumerable.Range(0, other.Size).All(i =>
            {
                int ch = i / inner % t.c;
                return MathF.Abs(applied[i] - (other[i] - norm.Mean[ch]) / norm.Std[ch]) <= 1e-4f * (1 + MathF.Abs(applied[i]));
            });
            return again.Mean.All(m => MathF.Abs(m) < 1e-4f) && again.Std.All(s => MathF.Abs(s - 1) < 1e-3f) && usesTrainingFigures
                && Normalization.Parse(norm.Format()) == norm;
        });

    [Fact]
    public void ApplyRejectsAnotherChannelCount()
    {
        var n = new Normalization([0.5f], [0.25f]);
        Assert.Throws<CnnException>(() => n.Apply(Tensor.Zeros(1, 3, 2, 2)));
        Assert.Throws<Cnn.Core.FormatException>(() => Normalization.Parse("1,2"));
    }
}

public sealed class AugmentTests
{
    private static Gen<Tensor> Batches() =>
        from n in Gen.Choose(1, 4)
        from c in Gen.Choose(1, 3)
        from h in Gen.Choose(1, 9)
        from w in Gen.Choose(1, 9)
        from seed in Gen.Choose(0, 9999)
        select Tensor.FromArray(Enumerable.Range(0, n * c * h * w).Select(i => (float)new Random(seed + i).NextDouble()).ToArray(), n, c, h, w);

    private static Gen<AugmentOptions> Options() =>
        from flip in Gen.Elements(false, true)
        from shift in Gen.Choose(0, 3)
        from rot in Gen.Choose(0, 20)
        from pad in Gen.Choose(0, 4)
        select new AugmentOptions(flip, shift, rot, pad);

    [Property(MaxTest = 100)]
    public Property ApplyIsReproduciblePreservesTheShapeAndTreatsEachImageOnItsOwn() =>
        Prop.ForAll((from b in Batches() from o in Options() from seed in Gen.Choose(0, 1000) select (b, o, seed)).ToArbitrary(), t =>
        {
            var a1 = Augment.Apply(t.b, t.o, t.seed);
            var a2 = Augment.Apply(t.b, t.o, t.seed);
            // The last image gets the same result whatever the other images hold: no image's draw depends on another's.
            int n = t.b.Shape[0];
            int size = t.b.Size / n;
            var othersZeroed = Tensor.FromArray(t.b.ToArray().Select((v, i) => i < (n - 1) * size ? 0f : v).ToArray(), t.b.Shape);
            var lastOnly = Augment.Apply(othersZeroed, t.o, t.seed).Slice(n - 1, 1);
            return a1.Shape == t.b.Shape && a1.Span.SequenceEqual(a2.Span) && lastOnly.Span.SequenceEqual(a1.Slice(n - 1, 1).Span)
                && a1.Span.ToArray().All(float.IsFinite);
        });

    [Fact]
    public void DifferentSeedsGiveDifferentBatches()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 8 * 28 * 28).Select(i => (float)(i % 97)).ToArray(), 8, 1, 28, 28);
        Assert.False(Augment.Apply(x, AugmentOptions.Digits, 1).Span.SequenceEqual(Augment.Apply(x, AugmentOptions.Digits, 2).Span));
        Assert.False(Augment.Apply(x, AugmentOptions.Photos, 1).Span.SequenceEqual(x.Span));
    }

    [Property(MaxTest = 100)]
    public Property FlippingTwiceAndNeutralTransformsGiveTheInputBack() =>
        Prop.ForAll(Batches().ToArbitrary(), x =>
            Augment.FlipHorizontal(Augment.FlipHorizontal(x)).Span.SequenceEqual(x.Span)
            && Augment.Rotate(x, 0).Span.SequenceEqual(x.Span)
            && Augment.Shift(x, 0, 0).Span.SequenceEqual(x.Span)
            && Augment.PadCrop(x, 3, 3, 3).Span.SequenceEqual(x.Span));

    [Fact]
    public void GoldenCases()
    {
        // 1 x 2 x 3:  1 2 3 / 4 5 6
        var x = Tensor.FromArray([1, 2, 3, 4, 5, 6], 1, 2, 3);
        Assert.Equal([3f, 2, 1, 6, 5, 4], Augment.FlipHorizontal(x).ToArray());
        Assert.Equal([0f, 1, 2, 0, 4, 5], Augment.Shift(x, 1, 0).ToArray());
        Assert.Equal([4f, 5, 6, 0, 0, 0], Augment.Shift(x, 0, -1).ToArray());
        // Padding 1, window at (0, 0) of the padded plane: the content moves one right and one down.
        Assert.Equal([0f, 0, 0, 0, 1, 2], Augment.PadCrop(x, 1, 0, 0).ToArray());
        // A quarter turn counter-clockwise of 1 2 / 3 4 about its centre is 2 4 / 1 3.
        var sq = Tensor.FromArray([1, 2, 3, 4], 2, 2);
        var r = Augment.Rotate(sq, 90).ToArray();
        Assert.Equal([2f, 4, 1, 3], r.Select(v => MathF.Round(v, 4)).ToArray());
        // Half a pixel's worth of bilinear weight: rotating a 3x3 with a single 1 at the centre keeps the centre at 1.
        var c = Tensor.FromArray([0, 0, 0, 0, 1, 0, 0, 0, 0], 3, 3);
        Assert.Equal(1f, Augment.Rotate(c, 30)[4], 5);
    }

    [Fact]
    public void BadArgumentsAreOurErrors()
    {
        Assert.Throws<CnnException>(() => Augment.PadCrop(Tensor.Zeros(2, 2), 1, 3, 0));
        Assert.Throws<CnnException>(() => Augment.Apply(Tensor.Zeros(2, 2, 2), AugmentOptions.Digits, 0));
        Assert.Throws<CnnException>(() => Augment.Apply(Tensor.Zeros(1, 1, 2, 2), new AugmentOptions(MaxShift: -1), 0));
    }
}
