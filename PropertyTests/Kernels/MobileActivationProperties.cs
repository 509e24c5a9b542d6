using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using TorchSharp;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.Kernels;

/// <summary>
/// Hard tanh (ReLU6), hard sigmoid, hard swish, SiLU and GELU, forward and pullback, against TorchSharp and its autograd, on
/// the activation cases (magnitudes 1, 5 and 200, so the kinks at ±3 and the saturated tails are reached, and exact zeros).
/// </summary>
public sealed class MobileActivationProperties
{
    private static readonly Arbitrary<ActivationCase> Cases = ActivationCase.Generator.ToArbitrary();

    /// <summary>
    /// PyTorch's hard tanh from LibTorch's clamp, with the gradient only strictly inside the bounds: TorchSharp 0.107's
    /// <c>hardtanh</c> and <c>nn.Hardtanh</c> return their input unclipped (the bridge does the same, in <c>TorchOps.HardTanh</c>).
    /// </summary>
    private static TorchSharp.torch.Tensor HardTanhReference(TorchSharp.torch.Tensor x, float min, float max) =>
        torch.where(x.gt(min).logical_and(x.lt(max)), x, x.clamp(min, max).detach());

    /// <summary>Bounds inside the data's range, so that both sides clip.</summary>
    private static (float Min, float Max) Bounds(ActivationCase c) => (-0.5f * c.Scale, 0.75f * c.Scale);

    /// <summary>A max and a min per element, as LibTorch's clamp and relu6: bitwise equal.</summary>
    [CnnProperty]
    public Property HardTanh_matches_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var (min, max) = Bounds(c);
        Exact(Activations.HardTanh(x, min, max), HardTanhReference(T(x), min, max), "hardtanh");
        Exact(Activations.HardTanh(x, 0f, 6f), relu6(T(x)), "relu6");
        Exact(Activations.HardTanh(x, float.NegativeInfinity, max), HardTanhReference(T(x), float.NegativeInfinity, max), "hardtanh with no lower bound");
        Exact(Activations.HardTanh(x, min, float.PositiveInfinity), HardTanhReference(T(x), min, float.PositiveInfinity), "hardtanh with no upper bound");
    }));

    /// <summary>A select of dy, 0 at the bounds as PyTorch: bitwise equal to autograd.</summary>
    [CnnProperty]
    public Property HardTanhBackward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var (min, max) = Bounds(c);
        var tx = T(x, requiresGrad: true);
        HardTanhReference(tx, min, max).backward(new[] { T(dy) });
        Exact(Activations.HardTanhBackward(x, dy, min, max), Grad(tx), "hardtanh dx");
        var open = T(x, requiresGrad: true);
        HardTanhReference(open, float.NegativeInfinity, max).backward(new[] { T(dy) });
        Exact(Activations.HardTanhBackward(x, dy, float.NegativeInfinity, max), Grad(open), "hardtanh dx with no lower bound");
    }));

    /// <summary>
    /// The same add, clamp and division by 6 per element as PyTorch's kernel; |a-b| &lt;= 1e-7 absolute (outputs in [0, 1]) allows one
    /// rounding of a differently vectorised division.
    /// </summary>
    [CnnProperty]
    public Property HardSigmoid_and_its_pullback_match_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x, requiresGrad: true);
        var ty = hardsigmoid(tx);
        Close(Activations.HardSigmoid(x), ty, 1e-7, 0, "hardsigmoid");
        ty.backward(new[] { T(dy) });
        Exact(Activations.HardSigmoidBackward(x, dy), Grad(tx), "hardsigmoid dx");
    }));

    /// <summary>
    /// ONNX's hard sigmoid with other slopes and offsets (Keras's 0.2 and 0.5 among them): alpha from the case's parameter (0, the
    /// constant map, included) scaled to the data so that both bounds are reached, either sign, and beta in [0.1, 0.9]. The reference
    /// is LibTorch's unfused <c>x * alpha + beta</c> then the hard tanh to [0, 1]: forward and autograd's pullback bitwise equal.
    /// </summary>
    [CnnProperty]
    public Property HardSigmoid_with_any_alpha_and_beta_matches_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        float alpha = (c.Seed % 2 == 0 ? 1f : -1f) * c.Parameter * 2f / c.Scale, beta = 0.1f + 0.2f * (c.Seed / 2 % 5);
        var tx = T(x, requiresGrad: true);
        var ty = HardTanhReference(tx * alpha + beta, 0f, 1f);
        Exact(Activations.HardSigmoid(x, alpha, beta), ty, "hardsigmoid(alpha, beta)");
        ty.backward(new[] { T(dy) });
        Exact(Activations.HardSigmoidBackward(x, dy, alpha, beta), Grad(tx), "hardsigmoid(alpha, beta) dx");
    }));

    /// <summary>
    /// <c>x * relu6(x + 3) / 6</c> in PyTorch's order: |a-b| &lt;= 1e-6 * max|b| (one rounding of the division); the pullback's
    /// three branches (0, <c>dy * (x/3 + 1/2)</c>, dy) are PyTorch's, bitwise. At exactly x = ±3 LibTorch's vector loop takes the
    /// outer branch (0, dy) and its scalar tail loop the inner one (-dy/2, 1.5 dy), both one-sided derivatives: the reference
    /// takes the vector loop's value there, after checking that LibTorch gave one of the two.
    /// </summary>
    [CnnProperty]
    public Property HardSwish_and_its_pullback_match_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x, requiresGrad: true);
        var ty = hardswish(tx);
        Close(Activations.HardSwish(x), ty, 0, 1e-6, "hardswish");
        var tdy = T(dy);
        ty.backward(new[] { tdy });
        var torchDx = TorchGrad(tx);
        var (atMinus3, atPlus3) = (tx.detach().eq(-3f), tx.detach().eq(3f));
        var outer = torch.where(atPlus3, tdy, torch.zeros_like(tdy));
        var inner = tdy * torch.where(atPlus3, 1.5f, -0.5f);
        var atKink = atMinus3.logical_or(atPlus3);
        if (!torchDx.eq(outer).logical_or(torchDx.eq(inner)).logical_or(atKink.logical_not()).all().item<bool>())
            throw new Xunit.Sdk.XunitException("hardswish dx at x = ±3: LibTorch gave neither one-sided derivative");
        Exact(Activations.HardSwishBackward(x, dy), torch.where(atKink, outer, torchDx), "hardswish dx");
    }));

    /// <summary>
    /// <c>x * sigmoid(x)</c> against PyTorch's <c>x / (1 + exp(-x))</c>: the two exps and the product against the division differ
    /// by a few ulps, |a-b| &lt;= 1e-6 + 1e-6 max|b|; the pullback <c>dy * s * (1 + x (1 - s))</c> likewise.
    /// </summary>
    [CnnProperty]
    public Property Silu_and_its_pullback_match_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x, requiresGrad: true);
        var ty = silu(tx);
        Close(Activations.Silu(x), ty, 1e-6, 1e-6, "silu");
        ty.backward(new[] { T(dy) });
        Close(Activations.SiluBackward(x, dy), Grad(tx), 1e-6, 1e-6, "silu dx");
    }));

    /// <summary>
    /// Exact GELU from a double-precision erfc (relative error 1.2e-7) against LibTorch's float erf, whose <c>1 + erf</c> loses
    /// the left tail to cancellation (about 6e-8 absolute in Φ, times |x|): |a-b| &lt;= 1e-6 + 1e-6 max|b|, forward and pullback.
    /// </summary>
    [CnnProperty]
    public Property Gelu_and_its_pullback_match_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x, requiresGrad: true);
        var ty = gelu(tx);
        Close(Activations.Gelu(x), ty, 1e-6, 1e-6, "gelu");
        ty.backward(new[] { T(dy) });
        Close(Activations.GeluBackward(x, dy), Grad(tx), 1e-6, 1e-6, "gelu dx");
    }));
}
