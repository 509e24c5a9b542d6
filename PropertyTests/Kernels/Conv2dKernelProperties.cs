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

/// <summary>
/// Conv2dKernel (the 2-d front of ConvKernel) against TorchSharp's conv2d and its autograd. The im2col properties moved
/// to <see cref="ConvNdProperties"/>, which checks ImToCol in 1, 2 and 3 dimensions.
/// Tolerance for convolution: |a-b| &lt;= 1e-5 + 1e-4 max|b|, because each output is a float32 sum of up to
/// C*KH*KW = 80 products (dx: F*KH*KW; dW and db: N*OH*OW, up to ~850) that LibTorch adds in another order.
/// </summary>
public sealed class Conv2dKernelProperties
{
    private const double Atol = 1e-5, Rtol = 1e-4;

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = ConvCase.Generator.Sample(2000, 50);
        Assert.Contains(cases, c => c.N == 1);
        Assert.Contains(cases, c => c.N is 3 or 5);
        Assert.Contains(cases, c => c.C == 1);
        Assert.Contains(cases, c => c.C == 5 && c.F == 5);
        Assert.Contains(cases, c => c.KH != c.KW);
        Assert.Contains(cases, c => c.SH == 3 || c.SW == 3);
        Assert.Contains(cases, c => c.PH == 2 && c.PW == 2);
        Assert.Contains(cases, c => c.PH >= c.KH);
        Assert.Contains(cases, c => c.DoesNotTile);
        Assert.Contains(cases, c => c.Pointwise);
        Assert.Contains(cases, c => c.OH == 1 && c.OW == 1);
        Assert.Contains(cases, c => !c.Bias);
    }

    [Property(MaxTest = 100)]
    public Property Forward_matches_torch_conv2d() => Prop.ForAll(ConvCase.Arbitrary, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.N, c.C, c.H, c.W);
        var w = RandomTensor(rng, 1f, c.F, c.C, c.KH, c.KW);
        var b = c.Bias ? RandomTensor(rng, 1f, c.F) : null;

        var y = Conv2dKernel.Forward(x, w, b, c.Window);

        var expected = conv2d(T(x), T(w), b is null ? null : T(b), strides: new long[] { c.SH, c.SW }, padding: new long[] { c.PH, c.PW });
        Close(y, expected, Atol, Rtol, "conv2d forward");
    }));

    [Property(MaxTest = 100)]
    public Property Backward_matches_torch_autograd() => Prop.ForAll(ConvCase.Arbitrary, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.N, c.C, c.H, c.W);
        var w = RandomTensor(rng, 1f, c.F, c.C, c.KH, c.KW);
        var b = c.Bias ? RandomTensor(rng, 1f, c.F) : null;
        var dy = RandomTensor(rng, 1f, c.N, c.F, c.OH, c.OW);

        var grads = Conv2dKernel.Backward(x, w, c.Bias, dy, c.Window);

        var tx = T(x, requiresGrad: true);
        var tw = T(w, requiresGrad: true);
        var tb = b is null ? null : T(b, requiresGrad: true);
        var ty = conv2d(tx, tw, tb, strides: new long[] { c.SH, c.SW }, padding: new long[] { c.PH, c.PW });
        ty.backward(new[] { T(dy) });
        Close(grads.Input, Grad(tx), Atol, Rtol, "conv2d dx");
        Close(grads.Weight, Grad(tw), Atol, Rtol, "conv2d dW");
        if (tb is null) Assert.Null(grads.Bias);
        else Close(grads.Bias ?? throw new Xunit.Sdk.XunitException("db missing"), Grad(tb), Atol, Rtol, "conv2d db");
    }));
}
