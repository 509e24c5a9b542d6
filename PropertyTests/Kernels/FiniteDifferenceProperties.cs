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
public sealed partial class FiniteDifferenceProperties
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
