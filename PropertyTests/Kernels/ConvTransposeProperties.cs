using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>One random 2-d transposed convolution: NCHW input, weight [Cin, Cout, KH, KW], stride, padding, output padding.</summary>
public sealed record ConvTransposeCase(int N, int Cin, int Cout, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OPH, int OPW, bool Bias, int Seed)
{
    /// <summary>Output height.</summary>
    public int OH => (H - 1) * SH - 2 * PH + KH + OPH;

    /// <summary>Output width.</summary>
    public int OW => (W - 1) * SW - 2 * PW + KW + OPW;

    /// <summary>
    /// Batches 1..4, channels 1..4 each way, kernels 1..4 per axis (so mostly non-square), strides 1..3, padding 0..2,
    /// output padding below the stride, input sizes 1..7 but at least what gives a non-empty output; one case in six is
    /// a 1x1, stride-1, unpadded one (no col2im).
    /// </summary>
    public static Gen<ConvTransposeCase> Generator { get; } = Gen.Frequency((5, General()), (1, Pointwise()));

    private static Gen<ConvTransposeCase> General() =>
        from n in Gen.Choose(1, 4)
        from cin in Gen.Choose(1, 4)
        from cout in Gen.Choose(1, 4)
        from kh in Gen.Choose(1, 4)
        from kw in Gen.Choose(1, 4)
        from sh in Gen.Choose(1, 3)
        from sw in Gen.Choose(1, 3)
        from ph in Gen.Choose(0, 2)
        from pw in Gen.Choose(0, 2)
        from oph in Gen.Choose(0, sh - 1)
        from opw in Gen.Choose(0, sw - 1)
        from h in Gen.Choose(MinSize(kh, sh, ph, oph), 7)
        from w in Gen.Choose(MinSize(kw, sw, pw, opw), 7)
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ConvTransposeCase(n, cin, cout, h, w, kh, kw, sh, sw, ph, pw, oph, opw, bias, seed);

    // 1x1, stride 1, unpadded: the kernel skips col2im.
    private static Gen<ConvTransposeCase> Pointwise() =>
        from n in Gen.Choose(1, 4)
        from cin in Gen.Choose(1, 4)
        from cout in Gen.Choose(1, 4)
        from h in Gen.Choose(1, 7)
        from w in Gen.Choose(1, 7)
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ConvTransposeCase(n, cin, cout, h, w, 1, 1, 1, 1, 0, 0, 0, 0, bias, seed);

    // The least input size whose output (in-1)*s - 2p + k + op is at least 1.
    private static int MinSize(int k, int s, int p, int op) => 1 + (Math.Max(0, 1 + 2 * p - k - op) + s - 1) / s;
}

/// <summary>ConvTranspose2dKernel against TorchSharp's conv_transpose2d and its autograd, and hand-checked cases.</summary>
public sealed class ConvTransposeProperties
{
    /// <summary>
    /// |a-b| &lt;= 1e-5 + 1e-4 max|b|: each output is a float32 sum of up to Cin * ceil(K/S)^2 = 64 products (dX: Cout*KH*KW
    /// = 64; dW and db: N*H*W up to 196) that LibTorch adds in another order.
    /// </summary>
    private const double Atol = 1e-5, Rtol = 1e-4;

    private static readonly Arbitrary<ConvTransposeCase> Cases = ConvTransposeCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = ConvTransposeCase.Generator.Sample(2000, 50);
        Assert.Contains(cases, c => c.N == 1);
        Assert.Contains(cases, c => c.Cin == 1 && c.Cout > 1);
        Assert.Contains(cases, c => c.KH == 1 && c.KW > 1);
        Assert.Contains(cases, c => c.KH > 1 && c.KW == 1);
        Assert.Contains(cases, c => c.KH == 1 && c.KW == 1 && c.SH == 1 && c.SW == 1 && c.PH == 0 && c.PW == 0);
        Assert.Contains(cases, c => c.SH > c.KH);
        Assert.Contains(cases, c => c.SH == 2 && c.OPH == 1);
        Assert.Contains(cases, c => c.OPW == 2);
        Assert.Contains(cases, c => c.PH == 2 && c.KH <= 2);
        Assert.Contains(cases, c => c.H == 1 && c.W > 1);
        Assert.Contains(cases, c => c.OH == 1);
        Assert.Contains(cases, c => !c.Bias);
    }

    [Property(MaxTest = 150)]
    public Property Forward_matches_torch_conv_transpose2d() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.N, c.Cin, c.H, c.W);
        var w = RandomTensor(rng, 1f, c.Cin, c.Cout, c.KH, c.KW);
        var b = c.Bias ? RandomTensor(rng, 1f, c.Cout) : null;

        var y = ConvTranspose2dKernel.Forward(x, w, b, c.SH, c.SW, c.PH, c.PW, c.OPH, c.OPW);

        Close(y, Reference(c, T(x), T(w), b is null ? null : T(b)), Atol, Rtol, "conv_transpose2d forward");
    }));

    [Property(MaxTest = 150)]
    public Property Backward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.N, c.Cin, c.H, c.W);
        var w = RandomTensor(rng, 1f, c.Cin, c.Cout, c.KH, c.KW);
        var b = c.Bias ? RandomTensor(rng, 1f, c.Cout) : null;
        var dy = RandomTensor(rng, 1f, c.N, c.Cout, c.OH, c.OW);

        var grads = ConvTranspose2dKernel.Backward(x, w, c.Bias, dy, c.SH, c.SW, c.PH, c.PW, c.OPH, c.OPW);

        var tx = T(x, requiresGrad: true);
        var tw = T(w, requiresGrad: true);
        var tb = b is null ? null : T(b, requiresGrad: true);
        Reference(c, tx, tw, tb).backward(new[] { T(dy) });
        Close(grads.Input, Grad(tx), Atol, Rtol, "conv_transpose2d dx");
        Close(grads.Weight, Grad(tw), Atol, Rtol, "conv_transpose2d dW");
        if (tb is null) Assert.Null(grads.Bias);
        else Close(grads.Bias ?? throw new Xunit.Sdk.XunitException("db missing"), Grad(tb), Atol, Rtol, "conv_transpose2d db");
    }));

    /// <summary>
    /// x = [[1, 2], [3, 4]], kernel [[1, 2], [3, 4]]. Stride 2: each input element stamps the kernel, scaled, into its own
    /// 2x2 block; output padding 1 adds a zero row and column. Stride 1: the stamps overlap, the centre gets
    /// 1*4 + 2*3 + 3*2 + 4*1 = 20; padding 1 crops the 3x3 result to that centre.
    /// </summary>
    [Fact]
    public void Hand_checked_transposed_convolution()
    {
        var x = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 1, 1, 2, 2);
        var w = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 1, 1, 2, 2);

        var stamped = ConvTranspose2dKernel.Forward(x, w, null, 2, 2, 0, 0, 0, 0);
        Assert.Equal(new Shape(1, 1, 4, 4), stamped.Shape);
        Assert.Equal(new float[] { 1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16 }, stamped.ToArray());

        var outputPadded = ConvTranspose2dKernel.Forward(x, w, Tensor.FromArray(new float[] { 10 }, 1), 2, 2, 0, 0, 1, 1);
        Assert.Equal(new float[] { 11, 12, 12, 14, 10, 13, 14, 16, 18, 10, 13, 16, 14, 18, 10, 19, 22, 22, 26, 10, 10, 10, 10, 10, 10 }, outputPadded.ToArray());

        Assert.Equal(new float[] { 1, 4, 4, 6, 20, 16, 9, 24, 16 }, ConvTranspose2dKernel.Forward(x, w, null, 1, 1, 0, 0, 0, 0).ToArray());
        Assert.Equal(new float[] { 20 }, ConvTranspose2dKernel.Forward(x, w, null, 1, 1, 1, 1, 0, 0).ToArray());

        // The input gradient is the stride-2 convolution of dy with the kernel: each 2x2 block of dy against [[1, 2], [3, 4]].
        var dy = Tensor.FromArray(new float[] { 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, 1, 1, 4, 4);
        var grads = ConvTranspose2dKernel.Backward(x, w, false, dy, 2, 2, 0, 0, 0, 0);
        Assert.Equal(new float[] { 1, 2, 0, 4 }, grads.Input.ToArray());
        // dW[a, b] = sum over i, j of x[i, j] * dy[2i + a, 2j + b]: only x[0, 0]*dy[0, 0], x[0, 1]*dy[0, 3] and x[1, 1]*dy[3, 3].
        Assert.Equal(new float[] { 1, 2, 0, 4 }, grads.Weight.ToArray());
    }

    [Fact]
    public void Output_padding_must_be_below_the_stride()
    {
        var x = Tensor.Zeros(1, 1, 3, 3);
        var w = Tensor.Zeros(1, 2, 3, 3);
        var e = Assert.Throws<ShapeException>(() => ConvTranspose2dKernel.Forward(x, w, null, 2, 2, 0, 0, 2, 0));
        Assert.Contains("output padding", e.Message);
        Assert.Throws<ShapeException>(() => ConvTranspose2dKernel.Forward(x, w, null, 1, 1, 0, 0, 0, 1));
        Assert.Throws<ShapeException>(() => ConvTranspose2dKernel.Forward(x, Tensor.Zeros(2, 1, 3, 3), null, 1, 1, 0, 0, 0, 0));
        Assert.Throws<ShapeException>(() => ConvTranspose2dKernel.Forward(Tensor.Zeros(1, 1, 1, 1), Tensor.Zeros(1, 1, 1, 1), null, 1, 1, 1, 1, 0, 0));
        Assert.Equal(new Shape(1, 2, 8, 7), ConvTranspose2dKernel.Forward(x, w, null, 2, 2, 0, 0, 1, 0).Shape);
    }

    private static TorchTensor Reference(ConvTransposeCase c, TorchTensor x, TorchTensor w, TorchTensor? b) =>
        conv_transpose2d(x, w, b, strides: new long[] { c.SH, c.SW }, padding: new long[] { c.PH, c.PW }, output_padding: new long[] { c.OPH, c.OPW });
}
