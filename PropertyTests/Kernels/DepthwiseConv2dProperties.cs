using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The direct depthwise kernel (ConvKernel with one input channel per group, 2-d) against TorchSharp's grouped conv2d and its
/// autograd. Tolerance |a-b| &lt;= 1e-5 + 1e-4 max|b|: each output is a float32 sum of at most 16 taps (dx: m x 16), but dW
/// and db sum up to N x OH x OW = 3 x 121 products in another order than LibTorch's.
/// </summary>
public sealed class DepthwiseConv2dProperties
{
    private const double Atol = 1e-5, Rtol = 1e-4;

    /// <summary>A depthwise problem: C channels (groups), M filters per channel, a window with stride, padding and dilation.</summary>
    public sealed record Case(int N, int C, int M, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW, bool Bias, int Seed)
    {
        public ConvGeometry Geometry => ConvGeometry.Create(new[] { KH, KW }, new[] { SH, SW }, new[] { PH, PW }, new[] { PH, PW }, new[] { DH, DW }, C);

        public int OH => (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1;

        public int OW => (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1;
    }

    /// <summary>
    /// Batches 1..3, 2..6 channels, 1..4 filters per channel (the kernel's range; more go to the fused GEMM path), kernels 1..4 per axis, strides 1..3, padding 0..2, dilation 1..2,
    /// inputs from the smallest that fits up to 11 (so many strided windows do not tile and some see only padding).
    /// </summary>
    public static Arbitrary<Case> Cases { get; } = (
        from n in Gen.Choose(1, 3)
        from c in Gen.Choose(2, 6)
        from m in Gen.Choose(1, 4)
        from kh in Gen.Choose(1, 4)
        from kw in Gen.Choose(1, 4)
        from sh in Gen.Choose(1, 3)
        from sw in Gen.Choose(1, 3)
        from ph in Gen.Choose(0, 2)
        from pw in Gen.Choose(0, 2)
        from dh in Gen.Choose(1, 2)
        from dw in Gen.Choose(1, 2)
        from h in Gen.Choose(Math.Max(1, dh * (kh - 1) + 1 - 2 * ph), 11)
        from w in Gen.Choose(Math.Max(1, dw * (kw - 1) + 1 - 2 * pw), 11)
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new Case(n, c, m, h, w, kh, kw, sh, sw, ph, pw, dh, dw, bias, seed)).ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = Cases.Generator.Sample(2000, 50);
        Assert.Contains(cases, c => c.M > 1);
        Assert.Contains(cases, c => c.SW > 1 && c.PW > 0);
        Assert.Contains(cases, c => c.DH == 2 && c.DW == 2);
        Assert.Contains(cases, c => c.PH >= c.KH);
        Assert.Contains(cases, c => c.OH == 1 && c.OW == 1);
        Assert.Contains(cases, c => !c.Bias);
        Assert.All(cases, c => Assert.True(c.OH >= 1 && c.OW >= 1));
    }

    [CnnProperty]
    public Property Forward_matches_torch_grouped_conv2d() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.N, c.C, c.H, c.W);
        var w = RandomTensor(rng, 1f, c.C * c.M, 1, c.KH, c.KW);
        var b = c.Bias ? RandomTensor(rng, 1f, c.C * c.M) : null;

        var y = ConvKernel.Forward(x, w, b, c.Geometry);

        var expected = conv2d(T(x), T(w), b is null ? null : T(b), strides: new long[] { c.SH, c.SW }, padding: new long[] { c.PH, c.PW },
            dilation: new long[] { c.DH, c.DW }, groups: c.C);
        Close(y, expected, Atol, Rtol, "depthwise conv2d forward");
    }));

    [CnnProperty]
    public Property Backward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.N, c.C, c.H, c.W);
        var w = RandomTensor(rng, 1f, c.C * c.M, 1, c.KH, c.KW);
        var b = c.Bias ? RandomTensor(rng, 1f, c.C * c.M) : null;
        var dy = RandomTensor(rng, 1f, c.N, c.C * c.M, c.OH, c.OW);

        var grads = ConvKernel.Backward(x, w, c.Bias, dy, c.Geometry);
        var (weightOnly, biasOnly) = ConvKernel.ParameterGradients(x, w, c.Bias, dy, c.Geometry);

        var tx = T(x, requiresGrad: true);
        var tw = T(w, requiresGrad: true);
        var tb = b is null ? null : T(b, requiresGrad: true);
        var ty = conv2d(tx, tw, tb, strides: new long[] { c.SH, c.SW }, padding: new long[] { c.PH, c.PW }, dilation: new long[] { c.DH, c.DW }, groups: c.C);
        ty.backward(new[] { T(dy) });
        Close(grads.Input, Grad(tx), Atol, Rtol, "depthwise dx");
        Close(grads.Weight, Grad(tw), Atol, Rtol, "depthwise dW");
        Exact(weightOnly, grads.Weight, "dW without dx");
        if (tb is null) Assert.Null(grads.Bias);
        else
        {
            Close(grads.Bias ?? throw new Xunit.Sdk.XunitException("db missing"), Grad(tb), Atol, Rtol, "depthwise db");
            Exact(biasOnly ?? throw new Xunit.Sdk.XunitException("db missing"), grads.Bias, "db without dx");
        }
    }));
}

/// <summary>Changes <see cref="BatchParallel.Workers"/>, which every kernel reads: in the collection whose tests run alone.</summary>
[Collection(WorkerCountCollection.Name)]
public sealed class DepthwiseConv2dWorkerCountTests
{
    [Fact]
    public void Output_and_gradients_do_not_depend_on_the_thread_count()
    {
        var rng = new Random(3);
        var c = new DepthwiseConv2dProperties.Case(5, 7, 2, 13, 12, 3, 3, 1, 2, 1, 1, 1, 1, true, 3);
        var x = RandomTensor(rng, 1f, c.N, c.C, c.H, c.W);
        var w = RandomTensor(rng, 1f, c.C * c.M, 1, c.KH, c.KW);
        var b = RandomTensor(rng, 1f, c.C * c.M);
        var dy = RandomTensor(rng, 1f, c.N, c.C * c.M, c.OH, c.OW);
        var (y1, g1) = WorkerCountCollection.With(1, () => (ConvKernel.Forward(x, w, b, c.Geometry), ConvKernel.Backward(x, w, true, dy, c.Geometry)));
        var (y3, g3) = WorkerCountCollection.With(3, () => (ConvKernel.Forward(x, w, b, c.Geometry), ConvKernel.Backward(x, w, true, dy, c.Geometry)));
        Exact(y3, y1, "y");
        Exact(g3.Input, g1.Input, "dx");
        Exact(g3.Weight, g1.Weight, "dW");
        Exact(g3.Bias!, g1.Bias!, "db");
    }
}
