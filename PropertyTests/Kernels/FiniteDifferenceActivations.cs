using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>The finite-difference check of activations, normalisations, dropout, channel joins and losses.</summary>
public sealed partial class FiniteDifferenceProperties
{
    // ---------------------------------------------------------------- activations

    /// <summary>
    /// An activation problem: a shape of rank 1..4 (axes 1..6), an axis, a magnitude 1 or 4, a parameter (slope, alpha)
    /// and a seed. Values keep |x| &gt;= 0.05, away from the kinks at 0.
    /// </summary>
    public sealed record FdActivationCase(int[] Dims, int Axis, float Scale, float Parameter, int Seed)
    {
        /// <summary>All combinations, uniformly.</summary>
        public static Gen<FdActivationCase> Generator { get; } =
            from rank in Gen.Choose(1, 4)
            from dims in Gen.ArrayOf(Gen.Choose(1, 6), rank)
            from axis in Gen.Choose(-rank, rank - 1)
            from scale in Gen.Elements(1f, 4f)
            from parameter in Gen.Elements(0f, 0.01f, 0.2f, 1f, 1.5f)
            from seed in Gen.Choose(0, 1_000_000_000)
            select new FdActivationCase(dims, axis, scale, parameter, seed);

        /// <summary>Uniform magnitudes in [0.05, Scale) with random signs.</summary>
        public Tensor Input()
        {
            var rng = new Random(Seed);
            var x = new float[new Shape(Dims).Size];
            for (int i = 0; i < x.Length; i++) x[i] = (float)((0.05 + rng.NextDouble() * (Scale - 0.05)) * (rng.Next(2) == 0 ? -1 : 1));
            return Tensor.FromArray(x, Dims);
        }

        /// <inheritdoc />
        public override string ToString() => $"FdActivationCase([{string.Join(", ", Dims)}], axis {Axis}, scale {Scale}, parameter {Parameter}, seed {Seed})";
    }

    private static readonly Arbitrary<FdActivationCase> ActivationCases = FdActivationCase.Generator.ToArbitrary();

    /// <summary>
    /// ReLU and leaky ReLU, at |x| &gt;= 0.05 with a step of 1e-2: linear on each side of 0, so the central difference is
    /// exact; ReLU only copies (floor 1e-7), leaky ReLU rounds one product (floor 1e-6).
    /// </summary>
    [CnnProperty]
    public Property Relu_and_leaky_relu() => Prop.ForAll(ActivationCases, c =>
    {
        var x = c.Input();
        Check($"relu {c}", c.Seed, new[] { x }, new[] { 1e-2 }, a => Activations.Relu(a[0]),
            r => new[] { Activations.ReluBackward(x, r) }, 1e-6, 1e-7);
        Check($"leaky_relu {c}", c.Seed, new[] { x }, new[] { 1e-2 }, a => Activations.LeakyRelu(a[0], c.Parameter),
            r => new[] { Activations.LeakyReluBackward(x, r, c.Parameter) }, 1e-6, 1e-6);
    });

    /// <summary>
    /// ELU, sigmoid and tanh (|x| up to 4) with a step of 1e-2. Element-wise, so the truncation is bounded element by
    /// element: eps^2/6 times the ratio of the third derivative to the first, which is 1 for ELU's exponential, at most 1
    /// for the sigmoid and 4 for tanh: below 7e-5 relative, Rtol 1e-3. Vectorised exp and tanh approximations of a few ulps,
    /// then a product: floor 1e-5.
    /// </summary>
    [CnnProperty]
    public Property Elu_sigmoid_tanh() => Prop.ForAll(ActivationCases, c =>
    {
        var x = c.Input();
        Check($"elu {c}", c.Seed, new[] { x }, new[] { 1e-2 }, a => Activations.Elu(a[0], c.Parameter),
            r => new[] { Activations.EluBackward(x, r, c.Parameter) }, 1e-3, 1e-5);
        Check($"sigmoid {c}", c.Seed, new[] { x }, new[] { 1e-2 }, a => Activations.Sigmoid(a[0]),
            r => new[] { Activations.SigmoidBackward(Activations.Sigmoid(x), r) }, 1e-3, 1e-5);
        Check($"tanh {c}", c.Seed, new[] { x }, new[] { 1e-2 }, a => Activations.Tanh(a[0]),
            r => new[] { Activations.TanhBackward(Activations.Tanh(x), r) }, 1e-3, 1e-5);
    });

    /// <summary>
    /// Softmax and log-softmax along any axis, and the 2-d softmax over rows (|x| up to 4): smooth, with derivatives of
    /// order 1 (softmax's are polynomials in probabilities), step 1e-2: truncation about 1e-4/6 relative, Rtol 1e-3. Each
    /// output goes through an exp, a sum of at most 6 terms and a division or log: floor 1e-5, and Absolute 1 for
    /// log-softmax (its log of a sum that is at least 1 is off by ulps of 1, whatever the output).
    /// </summary>
    [CnnProperty]
    public Property Softmax_and_log_softmax() => Prop.ForAll(ActivationCases, c =>
    {
        var x = c.Input();
        Check($"softmax {c}", c.Seed, new[] { x }, new[] { 1e-2 }, a => Activations.Softmax(a[0], c.Axis),
            r => new[] { Activations.SoftmaxBackward(Activations.Softmax(x, c.Axis), r, c.Axis) }, 1e-3, 1e-5);
        Check($"log_softmax {c}", c.Seed, new[] { x }, new[] { 1e-2 }, a => Activations.LogSoftmax(a[0], c.Axis),
            r => new[] { Activations.LogSoftmaxBackward(Activations.LogSoftmax(x, c.Axis), r, c.Axis) }, 1e-3, 1e-5, absolute: 1);
        var rows = x.Reshape(c.Dims[0], x.Size / c.Dims[0]);
        Check($"softmax rows {c}", c.Seed, new[] { rows }, new[] { 1e-2 }, a => Activations.Softmax(a[0]),
            r => new[] { Activations.SoftmaxBackward(Activations.Softmax(rows), r, 1) }, 1e-3, 1e-5);
    });

    // ---------------------------------------------------------------- normalisation, dropout, structure

    private static readonly Arbitrary<(int[] Dims, float Offset, float Epsilon, int Seed)> BatchNormCases =
        (from rank in Gen.Choose(2, 5)
         from n in Gen.Choose(1, 5)
         from c in Gen.Choose(1, 5)
         from spatial in Gen.ArrayOf(Gen.Choose(1, 5), rank - 2)
         where n * spatial.Aggregate(1, (a, b) => a * b) >= 2
         from offset in Gen.Elements(0f, 3f)
         from eps in Gen.Elements(1e-5f, 1e-3f)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (new[] { n, c }.Concat(spatial).ToArray(), offset, eps, seed)).ToArbitrary();

    /// <summary>
    /// Each channel's values: an evenly spread ramp over [-1, 1] (jittered by 0.1 and shuffled) plus the offset, so every
    /// channel's standard deviation is at least 0.5: the normalisation's nonlinearity has scale sigma, and a step of 1e-3
    /// keeps the truncation below (1e-3 / 0.5)^2 ~ 4e-6 relative.
    /// </summary>
    private static Tensor BatchNormInput(int[] dims, float offset, int seed)
    {
        var rng = new Random(seed);
        int n = dims[0], c = dims[1], s = new Shape(dims).Size / (n * c), count = n * s;
        var x = new float[n * c * s];
        for (int ch = 0; ch < c; ch++)
        {
            var ramp = Enumerable.Range(0, count).Select(i => (float)(-1 + 2.0 * i / (count - 1) + 0.1 * (rng.NextDouble() - 0.5)) + offset).ToArray();
            rng.Shuffle(ramp);
            for (int i = 0; i < n; i++)
                for (int e = 0; e < s; e++) x[(i * c + ch) * s + e] = ramp[i * s + e];
        }
        return Tensor.FromArray(x, dims);
    }

    /// <summary>
    /// Batch normalisation in training mode through the batch statistics: x, gamma and beta moved together by 1e-3
    /// (see <see cref="BatchNormInput"/>); outputs of order 2 from a subtraction of the mean of inputs up to 4, a product
    /// and a sum: floor 1e-5.
    /// </summary>
    [CnnProperty]
    public Property Batch_norm_train() => Prop.ForAll(BatchNormCases, c =>
    {
        int ch = c.Dims[1];
        var x = BatchNormInput(c.Dims, c.Offset, c.Seed);
        var gamma = Tensor.FromArray(Uniform(new Random(c.Seed + 1), ch, 0.5f).Select(v => v + 1f).ToArray(), ch);
        var beta = Uniformly(c.Seed + 2, 1f, ch);
        var forward = BatchNormKernel.Train(x, gamma, beta, c.Epsilon);
        Check($"batch_norm train [{string.Join(", ", c.Dims)}] {c}", c.Seed, new[] { x, gamma, beta }, new[] { 1e-3, 1e-3, 1e-3 },
            a => BatchNormKernel.Train(a[0], a[1], a[2], c.Epsilon).Output,
            r =>
            {
                var d = BatchNormKernel.TrainBackward(x, gamma, forward, r);
                return new[] { d.Input, d.Gamma, d.Beta };
            }, 1e-4, 1e-5);
    });

    /// <summary>
    /// Batch normalisation in evaluation mode (running statistics fixed): affine in x, gamma and beta jointly bilinear,
    /// so exact at any step; step 0.1, floor 1e-6.
    /// </summary>
    [CnnProperty]
    public Property Batch_norm_eval() => Prop.ForAll(BatchNormCases, c =>
    {
        int ch = c.Dims[1];
        var rng = new Random(c.Seed + 3);
        var x = Uniformly(c.Seed, 1f, c.Dims);
        var gamma = Tensor.FromArray(Uniform(rng, ch, 0.5f).Select(v => v + 1f).ToArray(), ch);
        var beta = RandomTensor(rng, 1f, ch);
        var mean = RandomTensor(rng, 1f, ch);
        var variance = Tensor.FromArray(Uniform(rng, ch, 0.75f).Select(v => v + 1.25f).ToArray(), ch);
        Check($"batch_norm eval [{string.Join(", ", c.Dims)}] {c}", c.Seed, new[] { x, gamma, beta }, new[] { 0.1, 0.1, 0.1 },
            a => BatchNormKernel.Eval(a[0], a[1], a[2], mean, variance, c.Epsilon),
            r =>
            {
                var d = BatchNormKernel.EvalBackward(x, gamma, mean, variance, c.Epsilon, r);
                return new[] { d.Input, d.Gamma, d.Beta };
            }, 1e-4, 1e-6);
    });

    /// <summary>
    /// Local response normalisation (sizes 1..7, alpha up to 1, beta 0.5..2, data up to 3): smooth, with curvature of
    /// order 1 relative to the data's scale; step 1e-3 of the scale; a power and a sum of at most 7 squares per output:
    /// floor 1e-5.
    /// </summary>
    [CnnProperty]
    public Property Local_response_norm() => Prop.ForAll(LrnCase.Generator.ToArbitrary(), c =>
    {
        var x = c.Input();
        Check($"lrn {c}", c.Seed, new[] { x }, new[] { 1e-3 * c.Scale },
            a => LrnKernel.Forward(a[0], c.Size, c.Alpha, c.Beta, c.K),
            r => new[] { LrnKernel.Backward(x, r, c.Size, c.Alpha, c.Beta, c.K) }, 1e-4, 1e-5);
    });

    /// <summary>Dropout with a fixed mask (the same seed each call): linear, step 0.1, one product per output: floor 1e-7.</summary>
    [CnnProperty]
    public Property Dropout() => Prop.ForAll(ActivationCases, c =>
    {
        var x = c.Input();
        float p = Math.Min(c.Parameter, 0.9f);
        var mask = DropoutKernel.Forward(x, p, new Random(c.Seed)).Mask;
        Check($"dropout p {p} {c}", c.Seed, new[] { x }, new[] { 0.1 },
            a => DropoutKernel.Forward(a[0], p, new Random(c.Seed)).Output,
            r => new[] { DropoutKernel.Backward(r, mask) }, 1e-6, 1e-6);
    });

    private static readonly Arbitrary<(int[] Dims, int[] Channels, int Seed)> PartCases =
        (from rank in Gen.Choose(2, 5)
         from n in Gen.Choose(1, 3)
         from spatial in Gen.ArrayOf(Gen.Choose(1, 4), rank - 2)
         from channels in Gen.ArrayOf(Gen.Choose(1, 4), 3).Select(a => a[..(1 + a[0] % 3)])
         from seed in Gen.Choose(0, 1_000_000_000)
         select (new[] { n, 0 }.Concat(spatial).ToArray(), channels, seed)).ToArbitrary();

    /// <summary>
    /// Add (a residual join) and channel concatenation (an inception join) with its split pullback: linear, step 0.1;
    /// one rounding per output for add, none for concatenation: floor 1e-7.
    /// </summary>
    [CnnProperty]
    public Property Add_and_concat_channels() => Prop.ForAll(PartCases, c =>
    {
        var parts = c.Channels.Select((ch, i) =>
        {
            var d = (int[])c.Dims.Clone();
            d[1] = ch;
            return Uniformly(c.Seed + i, 1f, d);
        }).ToArray();
        Check($"concat {c.Seed}", c.Seed, parts, parts.Select(_ => 0.1).ToArray(),
            a => TensorOps.ConcatChannels(a),
            r => TensorOps.SplitChannels(r, c.Channels).ToArray(), 1e-6, 1e-7);
        var b = Uniformly(c.Seed + 9, 1f, parts[0].Shape.ToArray());
        Check($"add {c.Seed}", c.Seed, new[] { parts[0], b }, new[] { 0.1, 0.1 },
            a => TensorOps.Add(a[0], a[1]), r => new[] { r, r }, 1e-6, 1e-6);
    });

    // ---------------------------------------------------------------- losses

    private static readonly Arbitrary<ClassLossCase> ClassCases = ClassLossCase.Generator.ToArbitrary();
    private static readonly Arbitrary<ElementLossCase> ElementCases = ElementLossCase.Generator.ToArbitrary();

    /// <summary>
    /// Softmax cross-entropy with labels and with probability targets, and negative log-likelihood, both reductions:
    /// logits up to 100 moved by 1e-2 (the softmax's derivatives are of order 1 per unit of logit: truncation about 1e-4/6
    /// relative, Rtol 1e-3); the likelihood is linear in its input, moved by 0.1. The probability form and the likelihood
    /// sum in double and round the value once: floor 1e-6.
    /// The label form sums each row's exponentials in float32 (a sum of at most 20 terms that is at least 1): floor 1e-5
    /// with Absolute N / divisor, the rows' ulps of 1.
    /// </summary>
    [CnnProperty]
    public Property Classification_losses() => Prop.ForAll(ClassCases, c =>
    {
        var z = c.Logits();
        var labels = c.Labels();
        var t = c.TargetProbabilities();
        Check($"cross-entropy labels {c}", c.Seed, new[] { z }, new[] { 1e-2 },
            a => Scalar(Losses.SoftmaxCrossEntropy(a[0], labels, c.Reduction)),
            r => new[] { Scaled(Losses.SoftmaxCrossEntropy(z, labels, c.Reduction).Gradient, r) }, 1e-3, 1e-5, absolute: c.N / c.Divisor);
        Check($"cross-entropy probabilities {c}", c.Seed, new[] { z }, new[] { 1e-2 },
            a => Scalar(Losses.SoftmaxCrossEntropy(a[0], t, c.Reduction)),
            r => new[] { Scaled(Losses.SoftmaxCrossEntropy(z, t, c.Reduction).Gradient, r) }, 1e-3, 1e-6);
        var logp = Activations.LogSoftmax(z, 1);
        Check($"nll {c}", c.Seed, new[] { logp }, new[] { 0.1 },
            a => Scalar(Losses.NegativeLogLikelihood(a[0], labels, c.Reduction)),
            r => new[] { Scaled(Losses.NegativeLogLikelihood(logp, labels, c.Reduction).Gradient, r) }, 1e-4, 1e-6);
    });

    /// <summary>
    /// Squared error (quadratic, so the central difference is exact; step 1e-2 of the scale) and binary cross-entropy, both
    /// reductions. On probabilities in [0.05, 0.95] the ratio of the third derivative to the first is 2/p^2, up to 800:
    /// step 1e-4, truncation below 1e-8/6 * 800 ~ 1.3e-5 relative, Rtol 1e-4. On logits up to ±80 that ratio is at most 1
    /// for 0/1 targets, whatever the logit: step 1e-2, truncation below 1e-4/6 relative, Rtol 1e-3 (with soft targets,
    /// where sigmoid(z) meets t, at most 2e-8 absolute, inside the floor). Binary cross-entropy sums in double and rounds
    /// the value once (floor 1e-6); squared error squares float32 differences y - t (floor 1e-5).
    /// </summary>
    [CnnProperty]
    public Property Element_losses() => Prop.ForAll(ElementCases, c =>
    {
        var y = c.Logits();
        var target = RandomTensor(new Random(c.Seed + 3), c.Scale, c.Dims);
        Check($"mse {c}", c.Seed, new[] { y }, new[] { 1e-2 * c.Scale },
            a => Scalar(Losses.MeanSquaredError(a[0], target, c.Reduction)),
            r => new[] { Scaled(Losses.MeanSquaredError(y, target, c.Reduction).Gradient, r) }, 1e-4, 1e-5);
        var t = c.Targets();
        var p = Tensor.FromArray(Uniform(new Random(c.Seed + 4), c.Size, 0.45f).Select(v => v + 0.5f).ToArray(), c.Dims);
        Check($"bce {c}", c.Seed, new[] { p }, new[] { 1e-4 },
            a => Scalar(Losses.BinaryCrossEntropy(a[0], t, c.Reduction)),
            r => new[] { Scaled(Losses.BinaryCrossEntropy(p, t, c.Reduction).Gradient, r) }, 1e-4, 1e-6);
        Check($"bce with logits {c}", c.Seed, new[] { y }, new[] { 1e-2 },
            a => Scalar(Losses.BinaryCrossEntropyWithLogits(a[0], t, c.Reduction)),
            r => new[] { Scaled(Losses.BinaryCrossEntropyWithLogits(y, t, c.Reduction).Gradient, r) }, 1e-3, 1e-6);
    });
}
