using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

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
}
