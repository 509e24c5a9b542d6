using Cnn.Core;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;

namespace Cnn.Tests.LibTorch;

/// <summary>
/// RMSprop and AdamW against <c>torch.optim</c>'s: the same parameters and the same gradient at each of 100 steps, every
/// option generated (momentum, centering, coupled L2 and decoupled decay, rates from 1e-4 to 1e-1). The gradient
/// of <c>sum(w * G)</c> is <c>G</c> exactly, so torch's autograd hands its optimizer our gradients bit for bit.
/// Tolerance: 1e-6 of the parameters' largest magnitude after 100 steps; both sides compute each element in float32
/// with the same formula, so what differs is only the rounding of sqrt and division order inside torch's kernels. torch
/// takes alpha and the betas as doubles and forms 1 - alpha, 1 - β in double; ours are floats, so torch is given the
/// floats' exact values (1 - 0.999 in double rounds to a float 1.3e-5 away from 1f - 0.999f, which shifts Adam's second
/// moment by that much; centered RMSprop divides by s - ḡ², which amplifies the same error in 1 - α).
/// </summary>
public sealed class OptimizerAgainstTorchTests
{
    private const int Steps = 100;
    private const double Tolerance = 1e-6;

    private sealed record Case(string Kind, float Lr, float Momentum, bool Centered, float Decay, float Coupled, int Size, int Seed)
    {
        public override string ToString() => $"{Kind} lr {Lr} momentum {Momentum} centered {Centered} decay {Decay} coupled {Coupled} size {Size} seed {Seed}";
    }

    private static readonly Arbitrary<Case> Cases =
        (from kind in Gen.Elements("rmsprop", "adamw")
         from lr in Gen.Elements(1e-4f, 1e-3f, 1e-2f, 1e-1f)
         from momentum in Gen.Elements(0f, 0.5f, 0.9f)
         from centered in Gen.Elements(false, true)
         from decay in Gen.Elements(0f, 1e-2f, 0.1f)
         from coupled in Gen.Elements(0f, 0f, 1e-3f)
         from size in Gen.Choose(1, 300)
         from seed in Gen.Choose(0, 1_000_000)
         select new Case(kind, lr, momentum, centered, decay, coupled, size, seed)).ToArbitrary();

    [Property(MaxTest = 100)]
    public Property Hundred_steps_follow_torch_optim() => Prop.ForAll(Cases, c =>
    {
        var rng = new Random(c.Seed);
        var w0 = Enumerable.Range(0, c.Size).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var grads = Enumerable.Range(0, Steps).Select(_ => Enumerable.Range(0, c.Size).Select(_ => (float)((rng.NextDouble() * 2 - 1) * 3)).ToArray()).ToArray();

        Optimizer ours = c.Kind == "rmsprop"
            ? new RmsProp(c.Lr, Momentum: c.Momentum, Centered: c.Centered) { WeightDecay = c.Coupled }
            : new AdamW(c.Lr, c.Decay);
        var p = Parameters.Of(new[] { KeyValuePair.Create("w", Tensor.FromArray(w0, c.Size)) });
        var s = ours.Init(p);
        foreach (var g in grads)
        {
            var r = ours.Step(p, Parameters.Of(new[] { KeyValuePair.Create("w", Tensor.FromArray(g, c.Size)) }), s);
            (p, s) = (r.Parameters, r.State);
        }

        using var scope = torch.NewDisposeScope();
        var w = torch.nn.Parameter(TorchTensors.ToTorch(Tensor.FromArray(w0, c.Size)));
        using var opt = c.Kind == "rmsprop"
            ? (torch.optim.Optimizer)torch.optim.RMSProp(new[] { w }, c.Lr, alpha: (double)0.99f, eps: 1e-8, weight_decay: c.Coupled, momentum: c.Momentum, centered: c.Centered)
            : torch.optim.AdamW(new[] { w }, c.Lr, (double)0.9f, (double)0.999f, 1e-8, weight_decay: c.Decay);
        foreach (var g in grads)
        {
            opt.zero_grad();
            using var step = torch.NewDisposeScope();
            (w * TorchTensors.ToTorch(Tensor.FromArray(g, c.Size))).sum().backward();
            opt.step();
        }
        var expected = TorchTensors.FromTorch(w.detach()).ToArray();
        var got = p["w"].ToArray();
        double scale = expected.Max(v => Math.Abs((double)v));
        double worst = Enumerable.Range(0, c.Size).Max(i => Math.Abs((double)got[i] - expected[i]));
        return (worst <= Tolerance * scale).Label($"{c}: max |ours - torch| {worst:G3} > {Tolerance} x {scale:G3}");
    });
}
