using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.Kernels;

/// <summary>Losses.SoftmaxCrossEntropy against TorchSharp's cross_entropy (mean reduction) and its autograd.</summary>
public sealed class LossesProperties
{
    /// <summary>Batch 1..9, classes 1..20 (one class: loss 0), logits up to 1, 10 or 100 in magnitude, random labels.</summary>
    private static readonly Arbitrary<(int N, int K, float Scale, int[] Labels, int Seed)> Cases =
        (from n in Gen.Choose(1, 9)
         from k in Gen.Choose(1, 20)
         from scale in Gen.Elements(1f, 10f, 100f)
         from labels in Gen.ArrayOf(Gen.Choose(0, k - 1), n)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (n, k, scale, labels, seed)).ToArbitrary();

    /// <summary>
    /// Value: |a-b| &lt;= 1e-5 + 1e-4 |b| (a log-sum-exp of at most 20 terms per row, averaged). Gradient entries are
    /// (softmax - onehot)/N: |a-b| &lt;= 1e-6 + 1e-4 max|b|.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property SoftmaxCrossEntropy_matches_torch_cross_entropy() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var z = RandomTensor(new Random(c.Seed), c.Scale, c.N, c.K);

        var loss = Losses.SoftmaxCrossEntropy(z, c.Labels);

        var tz = T(z, requiresGrad: true);
        var expected = cross_entropy(tz, torch.tensor(c.Labels.Select(l => (long)l).ToArray()), reduction: torch.nn.Reduction.Mean);
        expected.backward();
        float value = expected.item<float>();
        Close(new[] { loss.Value }, new[] { value }, 1e-5, 1e-4, "cross-entropy value");
        Close(loss.Gradient, Grad(tz), 1e-6, 1e-4, "cross-entropy gradient");
    }));

    /// <summary>
    /// Label smoothing (0.01 to 0.99) against <c>cross_entropy(label_smoothing=ε)</c>, with the bounds above: the smoothed
    /// targets go through the probability-target kernel, whose row sums of 1 make the gradient <c>(softmax - t) / N</c>.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property Label_smoothing_matches_torch_cross_entropy() => Prop.ForAll(Cases, Gen.Elements(0.01f, 0.1f, 0.5f, 0.99f).ToArbitrary(), (c, smoothing) => Scoped(() =>
    {
        var z = RandomTensor(new Random(c.Seed), c.Scale, c.N, c.K);

        var loss = Cnn.Dsl.LossFunction.SoftmaxCrossEntropyWithLabelSmoothing(smoothing).Compute(z, c.Labels);

        var tz = T(z, requiresGrad: true);
        var expected = cross_entropy(tz, torch.tensor(c.Labels.Select(l => (long)l).ToArray()), reduction: torch.nn.Reduction.Mean, label_smoothing: smoothing);
        expected.backward();
        Close(new[] { loss.Value }, new[] { expected.item<float>() }, 1e-5, 1e-4, $"smoothed cross-entropy value (smoothing {smoothing})");
        Close(loss.Gradient, Grad(tz), 1e-6, 1e-4, $"smoothed cross-entropy gradient (smoothing {smoothing})");
    }));

    /// <summary>Smoothing 0 is plain cross-entropy itself; 1 and beyond, negative and NaN are refused with the range.</summary>
    [Fact]
    public void Label_smoothing_zero_is_plain_cross_entropy_and_bad_values_are_refused()
    {
        Assert.Same(Cnn.Dsl.LossFunction.SoftmaxCrossEntropy, Cnn.Dsl.LossFunction.SoftmaxCrossEntropyWithLabelSmoothing(0f));
        foreach (var bad in new[] { 1f, 1.5f, -0.1f, float.NaN })
            Assert.Contains("from 0 up to but not including 1", Assert.Throws<CnnException>(() => Cnn.Dsl.LossFunction.SoftmaxCrossEntropyWithLabelSmoothing(bad)).Message);
    }

    [Fact]
    public void Label_out_of_range_names_row_and_range()
    {
        var z = Tensor.Zeros(2, 3);
        var e = Assert.ThrowsAny<CnnException>(() => Losses.SoftmaxCrossEntropy(z, new[] { 0, 3 }));
        Assert.Contains("row 1", e.Message);
        Assert.Contains("[0, 3)", e.Message);
    }
}
