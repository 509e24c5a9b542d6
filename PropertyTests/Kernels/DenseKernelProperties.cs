using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.Kernels;

/// <summary>
/// DenseKernel against TorchSharp's linear and its autograd. Tolerance |a-b| &lt;= 1e-5 + 1e-4 max|b|: y and dx are
/// float32 sums of up to 40 or 20 products, dW and db of up to 9, added by LibTorch in another order.
/// </summary>
public sealed class DenseKernelProperties
{
    private const double Atol = 1e-5, Rtol = 1e-4;

    /// <summary>Batch 1..9, features 1..40, units 1..20, with or without bias.</summary>
    private static readonly Arbitrary<(int N, int F, int U, bool Bias, int Seed)> Cases =
        (from n in Gen.Choose(1, 9)
         from f in Gen.Choose(1, 40)
         from u in Gen.Choose(1, 20)
         from bias in Gen.Elements(true, false)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (n, f, u, bias, seed)).ToArbitrary();

    [Property(MaxTest = 100)]
    public Property Forward_matches_torch_linear() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.N, c.F);
        var w = RandomTensor(rng, 1f, c.U, c.F);
        var b = c.Bias ? RandomTensor(rng, 1f, c.U) : null;
        Close(DenseKernel.Forward(x, w, b), linear(T(x), T(w), b is null ? null : T(b)), Atol, Rtol, "dense forward");
    }));

    [Property(MaxTest = 100)]
    public Property Backward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.N, c.F);
        var w = RandomTensor(rng, 1f, c.U, c.F);
        var b = c.Bias ? RandomTensor(rng, 1f, c.U) : null;
        var dy = RandomTensor(rng, 1f, c.N, c.U);

        var grads = DenseKernel.Backward(x, w, c.Bias, dy);

        var tx = T(x, requiresGrad: true);
        var tw = T(w, requiresGrad: true);
        var tb = b is null ? null : T(b, requiresGrad: true);
        linear(tx, tw, tb).backward(new[] { T(dy) });
        Close(grads.Input, Grad(tx), Atol, Rtol, "dense dx");
        Close(grads.Weight, Grad(tw), Atol, Rtol, "dense dW");
        if (tb is null) Assert.Null(grads.Bias);
        else Close(grads.Bias ?? throw new Xunit.Sdk.XunitException("db missing"), Grad(tb), Atol, Rtol, "dense db");
    }));
}
