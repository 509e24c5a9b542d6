using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The finite-difference gradient check of every operation with a backward pass, independent of LibTorch.
/// </summary>
/// <remarks>
/// <para>
/// For an operation <c>y = f(x_1, ..., x_m)</c> and a random upstream gradient <c>r</c> (uniform in [-1, 1)), let
/// <c>L = &lt;f(x), r&gt;</c>. Every input is moved by a step of at most <c>eps_k</c> per element, in float32:
/// <c>x_k± = fl(x_k ± step_k)</c>, and <c>delta_k = x_k+ - x_k-</c> is taken exactly (in double) from the two float32
/// tensors, so rounding the move costs nothing. The central difference <c>L(x+) - L(x-) = sum_j r_j (y+_j - y-_j)</c>,
/// evaluated in double from the float32 outputs, must equal the analytic <c>sum_k &lt;g_k, delta_k&gt;</c>, where g_k is
/// the kernel's backward for upstream r. Each case checks two directions: an aligned one that moves every element, by
/// <c>u_i eps_k sign(g_ki)</c> (u uniform in (0, 1]), so the directional derivative cannot cancel and a gradient off by a
/// factor shows in full; and a sparse one that moves 3 random elements of each input with random signs, so an error
/// confined to a few elements (a border, a padded tap) is not diluted by thousands of correct ones.
/// </para>
/// <para>The bound is <c>Rtol * S + Floor * (T + Absolute * R) + 1e-5 * sum|delta| * max|r|</c>:</para>
/// <list type="bullet">
/// <item><c>S = sum |g_ki delta_ki|</c>, the directional derivative's size. Rtol covers the analytic side's float32
/// rounding (each gradient element a sum of up to ~10^3 rounded products: below 1e-4 S) and the truncation error of the
/// central difference, eps^2 / 6 times the ratio of the third derivative to the first: zero for the (multi)linear
/// operations (the joint central difference of a bilinear map is exact, so their step is a large 0.1), and, at the steps
/// chosen per operation below, a tenth of Rtol or less for the smooth ones.</item>
/// <item><c>T = sum_j |r_j| (|y+_j| + |y-_j|)</c>, the size of the two evaluations of L (an output the move does not
/// reach, that changes neither under the move nor under one 100 times longer, counts a tenth). The numeric side carries
/// the float32 rounding of every output it reads, a few ulps of the terms that make it. Floor is a per-operation multiple
/// of 2^-24 ~ 6e-8: 1e-7 where outputs are copies, 1e-6 for one rounding or a short sum, 1e-5 for chains of
/// transcendental functions and normalisations. Over 10,000 cases of every property (CNN_PROPERTY_RUNS=10000) the
/// largest |numeric - analytic| was 0.06 of its bound: a margin of 17 or more, so float32 rounding cannot make it flaky.</item>
/// <item><c>R = 2 sum_j |r_j|</c>, with Absolute 1 where an output's rounding does not shrink with the output: a
/// log-sum-exp adds a float32 sum that is at least 1, so log-softmax and cross-entropy are off by ulps of 1 even where
/// their value is near 0.</item>
/// <item><c>1e-5 sum|delta| max|r|</c>: the backward's rounding where a gradient element cancels to about 0 (log-softmax
/// along an axis of length 1: dy - exp(y) dy): its terms have the size of r whatever S is.</item>
/// </list>
/// <para>
/// Piecewise-smooth operations are sampled away from their kinks: max pooling on pairwise distinct values with a step a
/// quarter of the smallest gap (no two elements can change order, so every window keeps its winner), the ReLU family at
/// |x| &gt;= 0.05 with steps of at most 1e-2 (no element crosses 0). Shapes are small and random, from the same
/// generators as the LibTorch properties where those exist.
/// </para>
/// </remarks>
public sealed class FiniteDifferenceProperties
{
    /// <summary>The backward's own rounding where a gradient element cancels to about 0, per unit of |delta| and of |r|.</summary>
    private const double GradientFloor = 1e-5;

    /// <summary>Runs the check described on the class; throws with both sides and the bound when it fails.</summary>
    /// <param name="what">The operation, for the message.</param>
    /// <param name="seed">Seed of r and the directions.</param>
    /// <param name="inputs">The inputs that are perturbed (others are captured by <paramref name="forward"/>).</param>
    /// <param name="eps">The step of each input.</param>
    /// <param name="forward">f: the output for perturbed inputs.</param>
    /// <param name="backward">The gradient of each input, at the unperturbed inputs, for upstream r.</param>
    /// <param name="rtol">Rtol, relative to S.</param>
    /// <param name="floor">Floor, relative to T.</param>
    /// <param name="absolute">Absolute: the output size below which an output's rounding no longer shrinks.</param>
    private static void Check(string what, int seed, Tensor[] inputs, double[] eps, Func<Tensor[], Tensor> forward,
        Func<Tensor, Tensor[]> backward, double rtol, double floor, double absolute = 0)
    {
        var rng = new Random(seed ^ 0x5F3759DF);
        var y = forward(inputs);
        var r = RandomTensor(rng, 1f, y.Shape.ToArray());
        var grads = backward(r);
        Assert.Equal(inputs.Length, grads.Length);
        for (int k = 0; k < inputs.Length; k++) Assert.Equal(inputs[k].Shape, grads[k].Shape);
        Along(what + " (aligned direction)", rng, inputs, y, eps, grads, r, forward, rtol, floor, absolute, sparse: false);
        Along(what + " (sparse direction)", rng, inputs, y, eps, grads, r, forward, rtol, floor, absolute, sparse: true);
    }

    /// <summary>One direction: aligned (every element, v_i = u_i sign(g_i)) or sparse (3 random elements of each input).</summary>
    private static void Along(string what, Random rng, Tensor[] inputs, Tensor y0, double[] eps, Tensor[] grads, Tensor r,
        Func<Tensor[], Tensor> forward, double rtol, double floor, double absolute, bool sparse)
    {
        var plus = new Tensor[inputs.Length];
        var minus = new Tensor[inputs.Length];
        double analytic = 0, s = 0, moved = 0;
        for (int k = 0; k < inputs.Length; k++)
        {
            var x = inputs[k];
            var g = grads[k];
            var chosen = new HashSet<int>();
            if (sparse) for (int i = 0; i < Math.Min(3, x.Size); i++) while (!chosen.Add(rng.Next(x.Size))) { }
            var p = x.ToArray();
            var m = x.ToArray();
            for (int i = 0; i < p.Length; i++)
            {
                if (sparse && !chosen.Contains(i)) continue;
                double u = 1 - rng.NextDouble(), sign = sparse || g[i] == 0 ? (rng.Next(2) == 0 ? -1 : 1) : Math.Sign(g[i]);
                double step = eps[k] * u * sign;
                p[i] = (float)(x[i] + step);
                m[i] = (float)(x[i] - step);
                double delta = (double)p[i] - m[i], term = g[i] * delta;
                analytic += term;
                s += Math.Abs(term);
                moved += Math.Abs(delta);
            }
            plus[k] = Tensor.FromArray(p, x.Shape);
            minus[k] = Tensor.FromArray(m, x.Shape);
        }
        var yp = forward(plus);
        var ym = forward(minus);
        // Which outputs the move reaches: those that change, or that change when the same move is made 100 times longer.
        // An output that does neither is either out of reach (computed from the same values both times, so bitwise equal
        // and free of rounding) or so insensitive that its true central difference is below 2/100 of its rounding:
        // it counts a tenth in T. Without this the sparse direction would drown in the rounding of outputs it cannot change.
        var far = new Tensor[inputs.Length];
        for (int k = 0; k < inputs.Length; k++)
        {
            var a = inputs[k].ToArray();
            for (int i = 0; i < a.Length; i++) a[i] = (float)(a[i] + 100 * ((double)plus[k][i] - a[i]));
            far[k] = Tensor.FromArray(a, inputs[k].Shape);
        }
        var probe = forward(far);
        double numeric = 0, t = 0, rmax = 0;
        for (int j = 0; j < r.Size; j++)
        {
            rmax = Math.Max(rmax, Math.Abs(r[j]));
            double weight = probe[j].Equals(y0[j]) && yp[j].Equals(ym[j]) ? 0.1 : 1;
            numeric += r[j] * ((double)yp[j] - ym[j]);
            t += weight * Math.Abs(r[j]) * (Math.Abs((double)yp[j]) + Math.Abs((double)ym[j]) + 2 * absolute);
        }
        double bound = rtol * s + floor * t + GradientFloor * moved * rmax;
        if (!(Math.Abs(numeric - analytic) <= bound))
            throw new Xunit.Sdk.XunitException(
                $"{what}: central difference {numeric:R}, analytic {analytic:R}; |diff| {Math.Abs(numeric - analytic):E3} > " +
                $"{rtol:E0} * S {s:G4} + {floor:E0} * T {t:G4} + {GradientFloor:E0} * sum|delta| {moved:G4} * max|r| {rmax:G3} = {bound:E3}.");
    }

    /// <summary>A scalar loss as a one-element output, so <see cref="Check"/> applies: L = r * loss.</summary>
    private static Tensor Scalar(LossResult l) => Tensor.FromArray(new[] { l.Value }, 1);

    /// <summary>A loss's gradient scaled by the upstream r (one element).</summary>
    private static Tensor Scaled(Tensor g, Tensor r)
    {
        var a = g.ToArray();
        for (int i = 0; i < a.Length; i++) a[i] *= r[0];
        return Tensor.FromArray(a, g.Shape);
    }

    private static Tensor Uniformly(int seed, float scale, params int[] dims) => RandomTensor(new Random(seed), scale, dims);

    /// <summary>Pairwise distinct values (see <see cref="TorchReference.Distinct"/>) and a step of a quarter of their gap.</summary>
    private static (Tensor X, double Eps) Distinct(int seed, int[] dims)
    {
        int size = new Shape(dims).Size;
        return (Tensor.FromArray(TorchReference.Distinct(new Random(seed), size), dims), 0.25 * 2.0 / size);
    }

    // ---------------------------------------------------------------- convolutions and dense

    /// <summary>
    /// Convolution 1d/2d/3d (groups, depthwise, dilation, asymmetric padding, 1x1): x, w and b moved together by 0.1
    /// (bilinear, so the central difference is exact). Floor 1e-6: each output sums at most 4*125 products in float32.
    /// </summary>
    [CnnProperty]
    public Property Conv_nd() => Prop.ForAll(ConvNdCase.Generator().ToArbitrary(), c =>
    {
        var g = c.Geometry;
        var x = Uniformly(c.Seed, 1f, c.XDims);
        var w = Uniformly(c.Seed + 1, 1f, c.WDims);
        var inputs = c.Bias ? new[] { x, w, Uniformly(c.Seed + 2, 1f, c.F) } : new[] { x, w };
        Check($"conv {c}", c.Seed, inputs, inputs.Select(_ => 0.1).ToArray(),
            a => ConvKernel.Forward(a[0], a[1], c.Bias ? a[2] : null, g),
            r =>
            {
                var d = ConvKernel.Backward(x, w, c.Bias, r, g);
                return c.Bias ? new[] { d.Input, d.Weight, d.Bias! } : new[] { d.Input, d.Weight };
            }, 1e-4, 1e-6);
    });

    /// <summary>The 2-d convolution through its Window2d entry point (same reasoning as <see cref="Conv_nd"/>).</summary>
    [CnnProperty]
    public Property Conv_2d_window() => Prop.ForAll(ConvCase.Arbitrary, c =>
    {
        var x = Uniformly(c.Seed, 1f, c.N, c.C, c.H, c.W);
        var w = Uniformly(c.Seed + 1, 1f, c.F, c.C, c.KH, c.KW);
        var inputs = c.Bias ? new[] { x, w, Uniformly(c.Seed + 2, 1f, c.F) } : new[] { x, w };
        Check($"conv2d {c}", c.Seed, inputs, inputs.Select(_ => 0.1).ToArray(),
            a => Conv2dKernel.Forward(a[0], a[1], c.Bias ? a[2] : null, c.Window),
            r =>
            {
                var d = Conv2dKernel.Backward(x, w, c.Bias, r, c.Window);
                return c.Bias ? new[] { d.Input, d.Weight, d.Bias! } : new[] { d.Input, d.Weight };
            }, 1e-4, 1e-6);
    });

    /// <summary>Transposed convolution 2d (stride, padding, output padding): bilinear, steps 0.1, floor 1e-6.</summary>
    [CnnProperty]
    public Property Conv_transpose_2d() => Prop.ForAll(ConvTransposeCase.Generator.ToArbitrary(), c =>
    {
        var x = Uniformly(c.Seed, 1f, c.N, c.Cin, c.H, c.W);
        var w = Uniformly(c.Seed + 1, 1f, c.Cin, c.Cout, c.KH, c.KW);
        var inputs = c.Bias ? new[] { x, w, Uniformly(c.Seed + 2, 1f, c.Cout) } : new[] { x, w };
        Check($"conv_transpose2d {c}", c.Seed, inputs, inputs.Select(_ => 0.1).ToArray(),
            a => ConvTranspose2dKernel.Forward(a[0], a[1], c.Bias ? a[2] : null, c.SH, c.SW, c.PH, c.PW, c.OPH, c.OPW),
            r =>
            {
                var d = ConvTranspose2dKernel.Backward(x, w, c.Bias, r, c.SH, c.SW, c.PH, c.PW, c.OPH, c.OPW);
                return c.Bias ? new[] { d.Input, d.Weight, d.Bias! } : new[] { d.Input, d.Weight };
            }, 1e-4, 1e-6);
    });

    private static readonly Arbitrary<(int N, int F, int U, bool Bias, int Seed)> DenseCases =
        (from n in Gen.Choose(1, 6)
         from f in Gen.Choose(1, 40)
         from u in Gen.Choose(1, 12)
         from bias in Gen.Elements(true, false)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (n, f, u, bias, seed)).ToArbitrary();

    /// <summary>Dense x W^T + b: bilinear, steps 0.1, floor 1e-6 (sums of at most 40 products).</summary>
    [CnnProperty]
    public Property Dense() => Prop.ForAll(DenseCases, c =>
    {
        var x = Uniformly(c.Seed, 1f, c.N, c.F);
        var w = Uniformly(c.Seed + 1, 1f, c.U, c.F);
        var inputs = c.Bias ? new[] { x, w, Uniformly(c.Seed + 2, 1f, c.U) } : new[] { x, w };
        Check($"dense {c}", c.Seed, inputs, inputs.Select(_ => 0.1).ToArray(),
            a => DenseKernel.Forward(a[0], a[1], c.Bias ? a[2] : null),
            r =>
            {
                var d = DenseKernel.Backward(x, w, c.Bias, r);
                return c.Bias ? new[] { d.Input, d.Weight, d.Bias! } : new[] { d.Input, d.Weight };
            }, 1e-4, 1e-6);
    });

    // ---------------------------------------------------------------- pooling

    /// <summary>Max pooling 2d on distinct values (no ties, no change of winner): the outputs are copies, so exact.</summary>
    [CnnProperty]
    public Property Max_pool_2d() => Prop.ForAll(PoolCase.Generator.ToArbitrary(), c =>
    {
        var (x, eps) = Distinct(c.Seed, new[] { c.N, c.C, c.H, c.W });
        var arg = MaxPool2dKernel.Forward(x, c.Window).ArgMax;
        Check($"max_pool2d {c}", c.Seed, new[] { x }, new[] { eps },
            a => MaxPool2dKernel.Forward(a[0], c.Window).Output,
            r => new[] { MaxPool2dKernel.Backward(r, arg, x.Shape) }, 1e-6, 1e-7);
    });

    /// <summary>Max pooling 2d in ceil mode (windows overhanging the padded input), as <see cref="Max_pool_2d"/>.</summary>
    [CnnProperty]
    public Property Max_pool_2d_ceil_mode() => Prop.ForAll(Pool2dCase.Generator.ToArbitrary(), c =>
    {
        var (x, eps) = Distinct(c.Seed, new[] { c.N, c.C, c.H, c.W });
        var arg = MaxPool2dKernel.Forward(x, c.Window, c.Ceil).ArgMax;
        Check($"max_pool2d ceil {c}", c.Seed, new[] { x }, new[] { eps },
            a => MaxPool2dKernel.Forward(a[0], c.Window, c.Ceil).Output,
            r => new[] { MaxPool2dKernel.Backward(r, arg, x.Shape) }, 1e-6, 1e-7);
    });

    /// <summary>
    /// Average pooling 2d (ceil mode, both divisor rules): linear, step 0.1; each output is a float32 sum of at most 16
    /// values divided once: floor 1e-6.
    /// </summary>
    [CnnProperty]
    public Property Avg_pool_2d() => Prop.ForAll(Pool2dCase.Generator.ToArbitrary(), c =>
    {
        var x = Uniformly(c.Seed, 1f, c.N, c.C, c.H, c.W);
        Check($"avg_pool2d {c}", c.Seed, new[] { x }, new[] { 0.1 },
            a => AvgPool2dKernel.Forward(a[0], c.Window, c.Ceil, c.CountIncludePad),
            r => new[] { AvgPool2dKernel.Backward(r, x.Shape, c.Window, c.Ceil, c.CountIncludePad) }, 1e-4, 1e-6);
    });

    /// <summary>Max pooling 1d/2d/3d (dilated too) on distinct values: exact, as <see cref="Max_pool_2d"/>.</summary>
    [CnnProperty]
    public Property Max_pool_nd() => Prop.ForAll(PoolNdCase.Generator(dilated: true).ToArbitrary(), c =>
    {
        var (x, eps) = Distinct(c.Seed, c.XDims);
        var arg = PoolNdKernel.MaxForward(x, c.Geometry).ArgMax;
        Check($"max_pool_nd {c}", c.Seed, new[] { x }, new[] { eps },
            a => PoolNdKernel.MaxForward(a[0], c.Geometry).Output,
            r => new[] { PoolNdKernel.MaxBackward(r, arg, x.Shape) }, 1e-6, 1e-7);
    });

    /// <summary>Average pooling 1d/2d/3d (both divisor rules): linear, step 0.1, floor 1e-6 (at most 125 values a window).</summary>
    [CnnProperty]
    public Property Avg_pool_nd() => Prop.ForAll(PoolNdCase.Generator(dilated: false).ToArbitrary(), c =>
    {
        var x = Uniformly(c.Seed, 1f, c.XDims);
        Check($"avg_pool_nd {c}", c.Seed, new[] { x }, new[] { 0.1 },
            a => PoolNdKernel.AverageForward(a[0], c.Geometry, c.CountIncludePad),
            r => new[] { PoolNdKernel.AverageBackward(r, x.Shape, c.Geometry, c.CountIncludePad) }, 1e-4, 1e-6);
    });

    private static readonly Arbitrary<ReducePoolCase> GlobalCases = ReducePoolCase.Generator.Where(c => c.Dims.Length >= 3).ToArbitrary();

    /// <summary>Global average pooling: linear, step 0.1, floor 1e-6 (planes of at most 216 values).</summary>
    [CnnProperty]
    public Property Global_avg_pool() => Prop.ForAll(GlobalCases, c =>
    {
        var x = Uniformly(c.Seed, 1f, c.Dims);
        Check($"global avg {c}", c.Seed, new[] { x }, new[] { 0.1 },
            a => GlobalPoolKernel.AverageForward(a[0]),
            r => new[] { GlobalPoolKernel.AverageBackward(r, x.Shape) }, 1e-4, 1e-6);
    });

    /// <summary>Global max pooling on distinct values: exact.</summary>
    [CnnProperty]
    public Property Global_max_pool() => Prop.ForAll(GlobalCases, c =>
    {
        var (x, eps) = Distinct(c.Seed, c.Dims);
        var arg = GlobalPoolKernel.MaxForward(x).ArgMax;
        Check($"global max {c}", c.Seed, new[] { x }, new[] { eps },
            a => GlobalPoolKernel.MaxForward(a[0]).Output,
            r => new[] { GlobalPoolKernel.MaxBackward(r, arg, x.Shape) }, 1e-6, 1e-7);
    });

    /// <summary>Max pooling across channels on distinct values: exact.</summary>
    [CnnProperty]
    public Property Channel_max_pool() => Prop.ForAll(ReducePoolCase.Generator.ToArbitrary(), c =>
    {
        var (x, eps) = Distinct(c.Seed, c.Dims);
        var arg = ChannelMaxPoolKernel.Forward(x, c.Kernel, c.Stride).ArgMax;
        Check($"channel max {c}", c.Seed, new[] { x }, new[] { eps },
            a => ChannelMaxPoolKernel.Forward(a[0], c.Kernel, c.Stride).Output,
            r => new[] { ChannelMaxPoolKernel.Backward(r, arg, x.Shape) }, 1e-6, 1e-7);
    });

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

    // ---------------------------------------------------------------- the check itself

    /// <summary>
    /// The check has power: the true gradient of a small convolution passes, and the same gradient with one element of dX
    /// off by 5% of the largest (or dW scaled by 1.01) fails.
    /// </summary>
    [Fact]
    public void A_wrong_gradient_fails_the_check()
    {
        var g = ConvGeometry.Create(new[] { 3, 3 }, padBegin: new[] { 1, 1 }, padEnd: new[] { 1, 1 });
        var x = Uniformly(1, 1f, 2, 3, 6, 6);
        var w = Uniformly(2, 1f, 4, 3, 3, 3);
        Tensor Forward(Tensor[] a) => ConvKernel.Forward(a[0], a[1], null, g);
        Tensor[] True(Tensor r)
        {
            var d = ConvKernel.Backward(x, w, false, r, g);
            return new[] { d.Input, d.Weight };
        }
        Check("true gradient", 7, new[] { x, w }, new[] { 0.1, 0.1 }, Forward, True, 1e-4, 1e-6);

        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => Check("one element off", 7, new[] { x, w }, new[] { 0.1, 0.1 }, Forward, r =>
        {
            var d = True(r);
            var dx = d[0].ToArray();
            dx[17] += 0.05f * dx.Max(Math.Abs);
            return new[] { Tensor.FromArray(dx, x.Shape), d[1] };
        }, 1e-4, 1e-6));
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => Check("dW scaled", 7, new[] { x, w }, new[] { 0.1, 0.1 }, Forward, r =>
        {
            var d = True(r);
            return new[] { d[0], Tensor.FromArray(d[1].ToArray().Select(v => v * 1.01f).ToArray(), w.Shape) };
        }, 1e-4, 1e-6));
    }
}
