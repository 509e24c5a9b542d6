using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Interop.LibTorch;
using FsCheck;
using FsCheck.Fluent;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;
using TorchReduction = TorchSharp.torch.nn.Reduction;

namespace Cnn.Tests.Kernels;

/// <summary>
/// A random element-wise loss problem: dimensions of rank 1..3 (each 1..6, so [N], [N, 1] and [N, K] all occur), the
/// magnitude of the inputs, whether targets are hard 0/1 labels or soft values in [0, 1], the reduction, and a seed.
/// </summary>
public sealed record ElementLossCase(int[] Dims, float Scale, bool Hard, Reduction Reduction, int Seed)
{
    /// <summary>
    /// Rank 1..3, axes 1..6; magnitudes 1, 10 and 80 (for logits: 80 is as far as float32 exp stays finite, so
    /// LibTorch's own form is still exact there); hard or soft targets; mean or sum.
    /// </summary>
    public static Gen<ElementLossCase> Generator { get; } =
        from rank in Gen.Choose(1, 3)
        from dims in Gen.ArrayOf(Gen.Choose(1, 6), rank)
        from scale in Gen.Elements(1f, 10f, 80f)
        from hard in Gen.Elements(true, false)
        from reduction in Gen.Elements(Reduction.Mean, Reduction.Sum)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ElementLossCase(dims, scale, hard, reduction, seed);

    /// <summary>Elements.</summary>
    public int Size => new Shape(Dims).Size;

    /// <summary>What the sum of the terms is divided by.</summary>
    public double Divisor => Reduction == Reduction.Mean ? Size : 1;

    /// <summary>LibTorch's reduction.</summary>
    public TorchReduction TorchReduction => Reduction == Reduction.Mean ? TorchReduction.Mean : TorchReduction.Sum;

    /// <summary>Targets: 0/1 labels, or uniform in [0, 1] with some exact 0s and 1s.</summary>
    public Tensor Targets()
    {
        var rng = new Random(Seed + 1);
        var t = new float[Size];
        for (int i = 0; i < t.Length; i++)
            t[i] = Hard ? rng.Next(2) : rng.Next(6) switch { 0 => 0f, 1 => 1f, _ => (float)rng.NextDouble() };
        return Tensor.FromArray(t, Dims);
    }

    /// <summary>
    /// Logits uniform in [-Scale, Scale), one in four set to exactly +Scale or -Scale (at magnitude 80, the extremes
    /// where a naive log(1 + exp(z)) overflows in float32 a few units further on).
    /// </summary>
    public Tensor Logits()
    {
        var rng = new Random(Seed);
        var z = Uniform(rng, Size, Scale);
        for (int i = 0; i < z.Length; i++)
            if (rng.Next(4) == 0) z[i] = rng.Next(2) == 0 ? Scale : -Scale;
        return Tensor.FromArray(z, Dims);
    }

    /// <summary>
    /// Probabilities strictly inside (0, 1): uniform in [0.001, 0.999], one in eight very close to an end
    /// (1e-6 and 1 - 2^-20, where (1 - p) p is still far above PyTorch's 1e-12 floor).
    /// </summary>
    public Tensor InteriorProbabilities()
    {
        var rng = new Random(Seed);
        var p = new float[Size];
        for (int i = 0; i < p.Length; i++)
            p[i] = rng.Next(8) switch { 0 => 1e-6f, 1 => 1f - 1f / (1 << 20), _ => (float)(0.001 + 0.998 * rng.NextDouble()) };
        return Tensor.FromArray(p, Dims);
    }

    /// <summary>
    /// Probabilities at the edges: exactly 0 and 1 (each log clamped at -100), 1e-30 (log -69, kept) and 1e-44 (a float32
    /// subnormal whose log, -101, is clamped), mixed with ordinary values.
    /// </summary>
    public Tensor EdgeProbabilities()
    {
        var rng = new Random(Seed);
        var p = new float[Size];
        for (int i = 0; i < p.Length; i++)
            p[i] = rng.Next(6) switch { 0 => 0f, 1 => 1f, 2 => 1e-30f, 3 => 1e-44f, _ => (float)rng.NextDouble() };
        return Tensor.FromArray(p, Dims);
    }

    /// <inheritdoc />
    public override string ToString() => $"ElementLossCase([{string.Join(", ", Dims)}], scale {Scale}, hard {Hard}, {Reduction}, seed {Seed})";
}

/// <summary>A random classification loss problem: N rows of K logits, the kind of targets, the reduction and a seed.</summary>
/// <param name="N">Batch 1..9.</param>
/// <param name="K">Classes 1..20 (one class: the loss is 0).</param>
/// <param name="Scale">Logit magnitude 1, 10 or 100 (exp overflows float32 from 88 unless the maximum is subtracted).</param>
/// <param name="Targets">0: random normalised rows; 1: one-hot; 2: label smoothing 0.1; 3: rows that do not sum to 1.</param>
/// <param name="Reduction">Mean or sum.</param>
/// <param name="Seed">The data's seed.</param>
public sealed record ClassLossCase(int N, int K, float Scale, int Targets, Reduction Reduction, int Seed)
{
    /// <summary>Every combination, uniformly.</summary>
    public static Gen<ClassLossCase> Generator { get; } =
        from n in Gen.Choose(1, 9)
        from k in Gen.Choose(1, 20)
        from scale in Gen.Elements(1f, 10f, 100f)
        from targets in Gen.Choose(0, 3)
        from reduction in Gen.Elements(Reduction.Mean, Reduction.Sum)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ClassLossCase(n, k, scale, targets, reduction, seed);

    /// <summary>What the sum of the per-row terms is divided by.</summary>
    public double Divisor => Reduction == Reduction.Mean ? N : 1;

    /// <summary>LibTorch's reduction.</summary>
    public TorchReduction TorchReduction => Reduction == Reduction.Mean ? TorchReduction.Mean : TorchReduction.Sum;

    /// <summary>Logits uniform in [-Scale, Scale).</summary>
    public Tensor Logits() => RandomTensor(new Random(Seed), Scale, N, K);

    /// <summary>Integer labels in [0, K).</summary>
    public int[] Labels()
    {
        var rng = new Random(Seed + 2);
        return Enumerable.Range(0, N).Select(_ => rng.Next(K)).ToArray();
    }

    /// <summary>Target probabilities of the kind <see cref="Targets"/> names.</summary>
    public Tensor TargetProbabilities()
    {
        var rng = new Random(Seed + 1);
        var labels = Labels();
        var t = new float[N * K];
        for (int i = 0; i < N; i++)
        {
            var row = t.AsSpan(i * K, K);
            switch (Targets)
            {
                case 0:
                    for (int j = 0; j < K; j++) row[j] = (float)rng.NextDouble();
                    float sum = 0;
                    foreach (var v in row) sum += v;
                    for (int j = 0; j < K; j++) row[j] /= sum;
                    break;
                case 1:
                    row[labels[i]] = 1f;
                    break;
                case 2:
                    row.Fill(0.1f / K);
                    row[labels[i]] += 0.9f;
                    break;
                default:
                    for (int j = 0; j < K; j++) row[j] = (float)rng.NextDouble();
                    break;
            }
        }
        return Tensor.FromArray(t, N, K);
    }
}

/// <summary>
/// Binary cross-entropy (on probabilities and on logits), softmax cross-entropy with probability targets and with labels
/// summed, squared error and negative log-likelihood with both reductions, against TorchSharp's losses and autograd;
/// and the losses' validation of their targets.
/// </summary>
public sealed class LossesMoreProperties
{
    private static readonly Arbitrary<ElementLossCase> ElementCases = ElementLossCase.Generator.ToArbitrary();
    private static readonly Arbitrary<ClassLossCase> ClassCases = ClassLossCase.Generator.ToArbitrary();

    /// <summary>Asserts |a - b| &lt;= atol + rtol |b| for one value (a scalar loss).</summary>
    internal static void Value(float actual, float expected, double atol, double rtol, string what)
    {
        double diff = Math.Abs((double)actual - expected);
        if (!(diff <= atol + rtol * Math.Abs((double)expected)))
            throw new Xunit.Sdk.XunitException($"{what}: {actual:R}, reference {expected:R}; |diff| {diff:E3} > {atol:E0} + {rtol:E0} * |ref|.");
    }

    /// <summary>Asserts |a - b| &lt;= atol + rtol |b| element by element (each element against its own magnitude).</summary>
    internal static void EachClose(Tensor actual, Tensor expected, double atol, double rtol, string what)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        for (int i = 0; i < actual.Size; i++)
        {
            double diff = Math.Abs((double)actual[i] - expected[i]);
            if (!(diff <= atol + rtol * Math.Abs((double)expected[i])))
                throw new Xunit.Sdk.XunitException($"{what}: element {i} is {actual[i]:R}, reference {expected[i]:R}; |diff| {diff:E3} > {atol:E0} + {rtol:E0} * |ref|.");
        }
    }

    [Fact]
    public void Generators_cover_the_hard_cases()
    {
        var e = ElementLossCase.Generator.Sample(2000, 50);
        Assert.Contains(e, c => c.Scale == 80f && c.Reduction == Reduction.Sum);
        Assert.Contains(e, c => c.Size == 1);
        Assert.Contains(e, c => c.Dims.Length == 2 && c.Dims[1] == 1);
        var k = ClassLossCase.Generator.Sample(2000, 50);
        Assert.Contains(k, c => c.K == 1);
        Assert.Contains(k, c => c.N == 1 && c.Reduction == Reduction.Sum);
        foreach (var t in new[] { 0, 1, 2, 3 }) Assert.Contains(k, c => c.Targets == t && c.Scale == 100f);
    }

    /// <summary>
    /// Probabilities inside (0, 1). Value: the terms are all &gt;= 0, so LibTorch's float32 sum of at most 216 terms is
    /// within 216 ulps relative of our double sum: |a-b| &lt;= 1e-6 + 1e-5 |b|. Gradient: (p - t) / (p (1 - p)) / n, a
    /// few float32 roundings in LibTorch against one in ours: each element within 1e-6 of its own magnitude.
    /// </summary>
    [CnnProperty]
    public Property BinaryCrossEntropy_matches_torch() => Prop.ForAll(ElementCases, c => Scoped(() =>
    {
        var p = c.InteriorProbabilities();
        var t = c.Targets();

        var loss = Losses.BinaryCrossEntropy(p, t, c.Reduction);

        var tp = T(p, requiresGrad: true);
        var expected = binary_cross_entropy(tp, T(t), reduction: c.TorchReduction);
        expected.backward();
        Value(loss.Value, expected.item<float>(), 1e-6, 1e-5, "binary cross-entropy value");
        EachClose(loss.Gradient, Grad(tp), 1e-30, 1e-6, "binary cross-entropy gradient");
    }));

    /// <summary>
    /// Probabilities exactly 0 and 1 and (sub)normal ones near 0, where each log is clamped at -100 and PyTorch's gradient
    /// divides by max(p (1 - p), 1e-12): the same tolerances as inside (0, 1); gradients reach 1e12.
    /// </summary>
    [CnnProperty]
    public Property BinaryCrossEntropy_clamps_as_torch_at_the_edges() => Prop.ForAll(ElementCases, c => Scoped(() =>
    {
        var p = c.EdgeProbabilities();
        var t = c.Targets();

        var loss = Losses.BinaryCrossEntropy(p, t, c.Reduction);

        var tp = T(p, requiresGrad: true);
        var expected = binary_cross_entropy(tp, T(t), reduction: c.TorchReduction);
        expected.backward();
        Value(loss.Value, expected.item<float>(), 1e-6, 1e-5, "binary cross-entropy value at the edges");
        EachClose(loss.Gradient, Grad(tp), 1e-30, 1e-6, "binary cross-entropy gradient at the edges");
    }));

    /// <summary>
    /// Logits up to ±80 (a quarter exactly at ±scale). Value: every term max(z,0) - z t + log(1 + exp(-|z|)) is &gt;= 0,
    /// LibTorch evaluates it in float32 (one rounding of z t against a term up to 80) and sums in float32:
    /// |a-b| &lt;= 1e-6 + 1e-5 |b|. Gradient: (sigmoid(z) - t) / n, each sigmoid within a few ulps of 1 in LibTorch:
    /// |a-b| &lt;= 1e-6 / n absolute (the gradient is at most 1 / n; sigmoid(z) - t may cancel, so no relative bound).
    /// </summary>
    [CnnProperty]
    public Property BinaryCrossEntropyWithLogits_matches_torch_up_to_extreme_logits() => Prop.ForAll(ElementCases, c => Scoped(() =>
    {
        var z = c.Logits();
        var t = c.Targets();

        var loss = Losses.BinaryCrossEntropyWithLogits(z, t, c.Reduction);

        var tz = T(z, requiresGrad: true);
        var expected = binary_cross_entropy_with_logits(tz, T(t), reduction: c.TorchReduction);
        expected.backward();
        Value(loss.Value, expected.item<float>(), 1e-6, 1e-5, "binary cross-entropy with logits value");
        Close(loss.Gradient, Grad(tz), 1e-6 / c.Divisor, 0, "binary cross-entropy with logits gradient");
    }));

    /// <summary>
    /// Probability targets (normalised, one-hot, smoothed, and rows not summing to 1), logits up to 100. Value: the
    /// per-row terms are &gt;= 0 and LibTorch's log_softmax is within a few ulps of values down to -200:
    /// |a-b| &lt;= 1e-5 + 1e-4 |b|, as the label form. Gradient (softmax * sum(t) - t) / N: |a-b| &lt;= 1e-6 + 1e-4 max|b|.
    /// </summary>
    [CnnProperty]
    public Property SoftmaxCrossEntropy_with_probability_targets_matches_torch() => Prop.ForAll(ClassCases, c => Scoped(() =>
    {
        var z = c.Logits();
        var t = c.TargetProbabilities();

        var loss = Losses.SoftmaxCrossEntropy(z, t, c.Reduction);

        var tz = T(z, requiresGrad: true);
        var expected = cross_entropy(tz, T(t), reduction: c.TorchReduction);
        expected.backward();
        Value(loss.Value, expected.item<float>(), 1e-5, 1e-4, "cross-entropy (probabilities) value");
        Close(loss.Gradient, Grad(tz), 1e-6, 1e-4, "cross-entropy (probabilities) gradient");
    }));

    /// <summary>Integer labels with the sum as well as the mean: the tolerances of <see cref="LossesProperties"/>.</summary>
    [CnnProperty]
    public Property SoftmaxCrossEntropy_with_labels_matches_torch_for_both_reductions() => Prop.ForAll(ClassCases, c => Scoped(() =>
    {
        var z = c.Logits();
        var labels = c.Labels();

        var loss = Losses.SoftmaxCrossEntropy(z, labels, c.Reduction);

        var tz = T(z, requiresGrad: true);
        var expected = cross_entropy(tz, torch.tensor(labels.Select(l => (long)l).ToArray()), reduction: c.TorchReduction);
        expected.backward();
        Value(loss.Value, expected.item<float>(), 1e-5, 1e-4, "cross-entropy (labels) value");
        Close(loss.Gradient, Grad(tz), 1e-6, 1e-4, "cross-entropy (labels) gradient");
    }));

    /// <summary>
    /// Log-probabilities from LibTorch's log_softmax. Value: a sum of at most 9 picked entries, all &lt;= 0:
    /// |a-b| &lt;= 1e-6 + 1e-6 |b|. Gradient: -1/N or -1 at the labels, 0 elsewhere: |a-b| &lt;= 1e-7 |b| element-wise.
    /// </summary>
    [CnnProperty]
    public Property NegativeLogLikelihood_matches_torch_for_both_reductions() => Prop.ForAll(ClassCases, c => Scoped(() =>
    {
        var logp = TorchTensors.FromTorch(log_softmax(T(c.Logits()), 1));
        var labels = c.Labels();

        var loss = Losses.NegativeLogLikelihood(logp, labels, c.Reduction);

        var tl = T(logp, requiresGrad: true);
        var expected = nll_loss(tl, torch.tensor(labels.Select(l => (long)l).ToArray()), reduction: c.TorchReduction);
        expected.backward();
        Value(loss.Value, expected.item<float>(), 1e-6, 1e-6, "nll value");
        EachClose(loss.Gradient, Grad(tl), 0, 1e-7, "nll gradient");
    }));

    /// <summary>
    /// Outputs and targets up to 80 in magnitude. Value: a sum of at most 216 squares (&gt;= 0) in float32 in LibTorch:
    /// |a-b| &lt;= 1e-6 + 1e-5 |b|. Gradient: 2 (y - t) / n from the same float32 difference, scaled once:
    /// |a-b| &lt;= 1e-6 |b| element-wise.
    /// </summary>
    [CnnProperty]
    public Property MeanSquaredError_matches_torch_for_both_reductions() => Prop.ForAll(ElementCases, c => Scoped(() =>
    {
        var y = c.Logits();
        var t = RandomTensor(new Random(c.Seed + 3), c.Scale, c.Dims);

        var loss = Losses.MeanSquaredError(y, t, c.Reduction);

        var ty = T(y, requiresGrad: true);
        var expected = mse_loss(ty, T(t), c.TorchReduction);
        expected.backward();
        Value(loss.Value, expected.item<float>(), 1e-6, 1e-5, "mse value");
        EachClose(loss.Gradient, Grad(ty), 1e-30, 1e-6, "mse gradient");
    }));

    [Fact]
    public void Binary_cross_entropy_clamps_each_log_at_minus_100()
    {
        var p = Tensor.FromArray(new[] { 0f, 1f }, 2);
        var t = Tensor.FromArray(new[] { 1f, 0f }, 2);
        var mean = Losses.BinaryCrossEntropy(p, t);
        Assert.Equal(100f, mean.Value);
        Assert.Equal(200f, Losses.BinaryCrossEntropy(p, t, Reduction.Sum).Value);
        // (p - t) / max(p (1 - p), 1e-12) / 2: -1e12 / 2 and +1e12 / 2.
        Assert.Equal(-0.5e12f, mean.Gradient[0], 1e-6f * 0.5e12f);
        Assert.Equal(0.5e12f, mean.Gradient[1], 1e-6f * 0.5e12f);
        // A right answer costs nothing, even at the edge.
        Assert.Equal(0f, Losses.BinaryCrossEntropy(p, Tensor.FromArray(new[] { 0f, 1f }, 2)).Value);
    }

    [Fact]
    public void Binary_cross_entropy_with_logits_stays_finite_far_beyond_float_exp()
    {
        var z = Tensor.FromArray(new[] { 1000f, -1000f, 1000f, -1000f }, 4, 1);
        var t = Tensor.FromArray(new[] { 1f, 0f, 0f, 1f }, 4, 1);
        var r = Losses.BinaryCrossEntropyWithLogits(z, t, Reduction.Sum);
        Assert.Equal(2000f, r.Value);
        Assert.Equal(new[] { 0f, 0f, 1f, -1f }, r.Gradient.ToArray());
        // At z = 0: log 2 per element, gradient 1/2 - t.
        var zero = Losses.BinaryCrossEntropyWithLogits(Tensor.Zeros(1, 1), Tensor.FromArray(new[] { 1f }, 1, 1));
        Assert.Equal((float)Math.Log(2), zero.Value, 1e-7f);
        Assert.Equal(-0.5f, zero.Gradient[0]);
    }

    [Fact]
    public void Probability_targets_reduce_to_labels_when_one_hot()
    {
        var z = Tensor.FromArray(new[] { 1f, 2f, 3f, -1f, 0f, 5f }, 2, 3);
        var onehot = Tensor.FromArray(new[] { 0f, 0f, 1f, 1f, 0f, 0f }, 2, 3);
        var soft = Losses.SoftmaxCrossEntropy(z, onehot, Reduction.Sum);
        var hard = Losses.SoftmaxCrossEntropy(z, new[] { 2, 0 }, Reduction.Sum);
        Assert.Equal(hard.Value, soft.Value, 1e-6f);
        Close(soft.Gradient, hard.Gradient, 1e-7, 0, "one-hot against labels");
    }

    [Fact]
    public void Binary_cross_entropy_rejects_probabilities_and_targets_outside_the_unit_interval()
    {
        var ok = Tensor.FromArray(new[] { 0.5f, 0.5f, 0.5f }, 3);
        var e = Assert.Throws<CnnException>(() => Losses.BinaryCrossEntropy(Tensor.FromArray(new[] { 0.5f, 0.2f, 1.5f }, 3), ok));
        Assert.Contains("[0, 1]", e.Message);
        Assert.Contains("1.5", e.Message);
        Assert.Contains("flat index 2", e.Message);
        Assert.Contains("probabilities", e.Message);
        Assert.Throws<CnnException>(() => Losses.BinaryCrossEntropy(Tensor.FromArray(new[] { float.NaN, 0.2f, 0.5f }, 3), ok));
        e = Assert.Throws<CnnException>(() => Losses.BinaryCrossEntropy(ok, Tensor.FromArray(new[] { 0f, -0.1f, 1f }, 3)));
        Assert.Contains("targets", e.Message);
        Assert.Contains("-0.1", e.Message);
        e = Assert.Throws<CnnException>(() => Losses.BinaryCrossEntropyWithLogits(Tensor.FromArray(new[] { 5f, -3f, 0f }, 3), Tensor.FromArray(new[] { 0f, 2f, 1f }, 3)));
        Assert.Contains("flat index 1", e.Message);
        Assert.Contains("with logits", e.Message);
    }

    [Fact]
    public void Losses_reject_mismatched_shapes_naming_both()
    {
        var a = Tensor.Zeros(2, 3);
        var b = Tensor.Zeros(3, 2);
        foreach (var f in new Func<LossResult>[]
                 {
                     () => Losses.BinaryCrossEntropy(a, b), () => Losses.BinaryCrossEntropyWithLogits(a, b),
                     () => Losses.SoftmaxCrossEntropy(a, b), () => Losses.MeanSquaredError(a, b),
                 })
        {
            var e = Assert.Throws<ShapeException>(f);
            Assert.Contains("[2, 3]", e.Message);
            Assert.Contains("[3, 2]", e.Message);
        }
        Assert.Throws<ShapeException>(() => Losses.SoftmaxCrossEntropy(Tensor.Zeros(6), Tensor.Zeros(6)));
    }

    [Fact]
    public void Probability_targets_must_lie_in_the_unit_interval()
    {
        var z = Tensor.Zeros(2, 2);
        var e = Assert.Throws<CnnException>(() => Losses.SoftmaxCrossEntropy(z, Tensor.FromArray(new[] { 0.5f, 0.5f, 1.25f, -0.25f }, 2, 2)));
        Assert.Contains("flat index 2", e.Message);
        Assert.Contains("1.25", e.Message);
    }

    [Fact]
    public void Label_losses_name_the_count_and_the_range()
    {
        var z = Tensor.Zeros(2, 3);
        var e = Assert.ThrowsAny<CnnException>(() => Losses.NegativeLogLikelihood(z, new[] { 0 }, Reduction.Sum));
        Assert.Contains("expected 2 labels", e.Message);
        Assert.Contains("found 1", e.Message);
        e = Assert.ThrowsAny<CnnException>(() => Losses.NegativeLogLikelihood(z, new[] { 0, -1 }));
        Assert.Contains("row 1", e.Message);
        Assert.Contains("[0, 3)", e.Message);
        e = Assert.ThrowsAny<CnnException>(() => Losses.SoftmaxCrossEntropy(z, new[] { 5, 0 }, Reduction.Sum));
        Assert.Contains("row 0", e.Message);
    }

    [Fact]
    public void An_unknown_reduction_is_rejected()
    {
        var e = Assert.Throws<CnnException>(() => Losses.MeanSquaredError(Tensor.Zeros(2), Tensor.Zeros(2), (Reduction)7));
        Assert.Contains("Mean or Sum", e.Message);
        Assert.Contains("7", e.Message);
    }
}
