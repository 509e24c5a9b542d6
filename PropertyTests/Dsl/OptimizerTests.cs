using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Dsl;

public class OptimizerTests
{
    private static Gen<float[]> Vector(int n) => Gen.ArrayOf(Gen.Choose(-1000, 1000).Select(i => i / 100f), n);

    private static Parameters One(float[] v) => Parameters.Of(new[] { KeyValuePair.Create("w", Tensor.FromArray(v, v.Length)) });

    [Property(MaxTest = 100)]
    public Property SgdWithMomentumFollowsPyTorchsRecurrenceOverThreeSteps() =>
        Prop.ForAll((from w in Vector(5) from g1 in Vector(5) from g2 in Vector(5) from g3 in Vector(5)
                     from nesterov in Gen.Elements(true, false) select (w, gs: new[] { g1, g2, g3 }, nesterov)).ToArbitrary(), t =>
        {
            const float lr = 0.1f, mu = 0.9f;
            var opt = new Sgd(lr, mu, t.nesterov);
            var p = One(t.w);
            var s = opt.Init(p);
            var w = t.w.Select(x => (double)x).ToArray();
            var v = new double[5];
            foreach (var g in t.gs)
            {
                var r = opt.Step(p, One(g), s);
                p = r.Parameters;
                s = r.State;
                for (int i = 0; i < 5; i++)
                {
                    v[i] = mu * v[i] + g[i];
                    w[i] -= lr * (t.nesterov ? g[i] + mu * v[i] : v[i]);
                }
            }
            var got = p["w"].ToArray();
            return Enumerable.Range(0, 5).All(i => Math.Abs(got[i] - w[i]) <= 1e-4 * (1 + Math.Abs(w[i])))
                .Label($"expected [{string.Join(", ", w)}], got [{string.Join(", ", got)}]");
        });

    [Property(MaxTest = 100)]
    public Property AdamsFirstStepMovesEachWeightByTheLearningRateAgainstItsGradient() =>
        Prop.ForAll((from w in Vector(6) from g in Vector(6) select (w, g)).ToArbitrary(), t =>
        {
            var opt = new Adam(0.01f);
            var p = One(t.w);
            var next = opt.Step(p, One(t.g), opt.Init(p)).Parameters["w"].ToArray();
            // With bias correction, step 1 is lr * g / (|g| + eps'): exactly lr * sign(g) up to epsilon.
            return Enumerable.Range(0, 6).All(i =>
            {
                double expected = t.g[i] == 0 ? 0 : 0.01 * Math.Sign(t.g[i]);
                return Math.Abs((t.w[i] - next[i]) - expected) <= 1e-5;
            });
        });

    [CnnProperty]
    public Property OnlyParametersWithAGradientChange() =>
        Prop.ForAll(Vector(4).ToArbitrary(), v =>
        {
            var p = One(v).With("frozen", Tensor.FromArray(v, 4));
            var opt = new Adam();
            var next = opt.Step(p, One(v), opt.Init(p)).Parameters;
            return next["frozen"].Span.SequenceEqual(p["frozen"].Span);
        });

    /// <summary>
    /// A parameter large enough to be updated in ranges on several threads, of a length that leaves a scalar tail in each
    /// range, gets exactly the bits of the element-by-element formula (no fused multiply-add anywhere), over three steps
    /// with weight decay, for Adam and SGD with and without (Nesterov) momentum.
    /// </summary>
    [Theory]
    [InlineData("adam")]
    [InlineData("sgd")]
    [InlineData("momentum")]
    [InlineData("nesterov")]
    public void A_large_parameter_is_updated_with_the_bits_of_the_scalar_formula(string kind)
    {
        const int n = 200_003;
        const float lr = 0.01f, decay = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, mu = 0.9f;
        var rng = new Random(5);
        float Next() => (float)(rng.NextDouble() * 2 - 1);
        var w = Enumerable.Range(0, n).Select(_ => Next()).ToArray();
        Optimizer opt = kind switch
        {
            "adam" => new Adam(lr, b1, b2, eps) { WeightDecay = decay },
            "sgd" => new Sgd(lr) { WeightDecay = decay },
            "momentum" => new Sgd(lr, mu) { WeightDecay = decay },
            _ => new Sgd(lr, mu, Nesterov: true) { WeightDecay = decay },
        };
        var p = One(w);
        var s = opt.Init(p);
        var (m, v) = (new float[n], new float[n]);
        for (int t = 1; t <= 3; t++)
        {
            var g = Enumerable.Range(0, n).Select(_ => Next()).ToArray();
            var r = opt.Step(p, One(g), s);
            (p, s) = (r.Parameters, r.State);
            // Adam's constants are formed in double and rounded once, as torch.optim forms them.
            float stepSize = (float)(lr / (1 - Math.Pow(b1, t))), sqrtC2 = (float)Math.Sqrt(1 - Math.Pow(b2, t));
            for (int i = 0; i < n; i++)
            {
                float gi = w[i] * decay + g[i];
                switch (kind)
                {
                    case "adam":
                        m[i] = b1 * m[i] + (1f - b1) * gi;
                        v[i] = b2 * v[i] + (1f - b2) * gi * gi;
                        w[i] = w[i] - stepSize * m[i] / (MathF.Sqrt(v[i]) / sqrtC2 + eps);
                        break;
                    case "sgd":
                        w[i] = gi * -lr + w[i];
                        break;
                    default:
                        m[i] = m[i] * mu + gi;
                        float d = kind == "nesterov" ? m[i] * mu + gi : m[i];
                        w[i] = d * -lr + w[i];
                        break;
                }
            }
            var got = p["w"].Span;
            for (int i = 0; i < n; i++)
                if (BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(w[i]))
                    Assert.Fail($"{kind}, step {t}, element {i} of {n}: expected {w[i]:R}, got {got[i]:R}");
        }
    }
}
