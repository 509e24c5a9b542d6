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

/// <summary>
/// One random 2-d average pooling problem with ONNX's padding: each of the four ends padded independently by 0 to
/// kernel - 1 (so the ends of an axis differ most of the time and a padding beyond half the window is common).
/// </summary>
public sealed record UnevenPoolCase(int N, int C, int H, int W, int KH, int KW, int SH, int SW, int Top, int Bottom, int Left, int Right, bool CountIncludePad, int Seed)
{
    /// <summary>The window with the leading padding; <see cref="Bottom"/> and <see cref="Right"/> go beside it.</summary>
    public Window2d Window => new(KH, KW, SH, SW, Top, Left);

    /// <summary>Batches 1..2, channels 1..3, windows 1..4, strides 1..3, every padding 0..kernel-1, sizes from the smallest that fits to 9.</summary>
    public static Gen<UnevenPoolCase> Generator { get; } =
        from n in Gen.Choose(1, 2)
        from c in Gen.Choose(1, 3)
        from kh in Gen.Choose(1, 4)
        from kw in Gen.Choose(1, 4)
        from sh in Gen.Choose(1, 3)
        from sw in Gen.Choose(1, 3)
        from top in Gen.Choose(0, kh - 1)
        from bottom in Gen.Choose(0, kh - 1)
        from left in Gen.Choose(0, kw - 1)
        from right in Gen.Choose(0, kw - 1)
        from h in Gen.Choose(Math.Max(1, kh - top - bottom), 9)
        from w in Gen.Choose(Math.Max(1, kw - left - right), 9)
        from includePad in Gen.Elements(false, true)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new UnevenPoolCase(n, c, h, w, kh, kw, sh, sw, top, bottom, left, right, includePad, seed);

    /// <summary>Pairwise distinct values.</summary>
    public Tensor Input() => Tensor.FromArray(Distinct(new Random(Seed), N * C * H * W), N, C, H, W);

    /// <summary>
    /// LibTorch's average by a rule that shares nothing with the kernel: the input padded with zeros by F.pad, every window's
    /// sum (avg_pool2d with divisor 1), divided by the window's area or, without count_include_pad, by the same sums over
    /// a padded tensor of ones (the number of real elements, exactly).
    /// </summary>
    public TorchTensor Torch(TorchTensor x)
    {
        long[] k = { KH, KW }, s = { SH, SW }, pads = { Left, Right, Top, Bottom };
        var sums = avg_pool2d(pad(x, pads), k, s, divisor_override: 1);
        return CountIncludePad ? sums / (KH * KW) : sums / avg_pool2d(pad(TorchSharp.torch.ones_like(x), pads), k, s, divisor_override: 1);
    }
}

/// <summary>
/// Average pooling with padding that differs between the ends of an axis or exceeds half the window (ONNX's SAME and
/// explicit pads), forward and backward, against LibTorch (<see cref="UnevenPoolCase.Torch"/>) and its autograd.
/// </summary>
public sealed class UnevenAvgPoolProperties
{
    private static readonly Arbitrary<UnevenPoolCase> Cases = UnevenPoolCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = UnevenPoolCase.Generator.Sample(2000, 50);
        Assert.Contains(cases, c => c.Top != c.Bottom && c.Left != c.Right && !c.CountIncludePad);
        Assert.Contains(cases, c => 2 * c.Top > c.KH && !c.CountIncludePad);
        Assert.Contains(cases, c => 2 * c.Right > c.KW && c.CountIncludePad);
        // A window that holds a single input element: the divisor 1 without count_include_pad.
        Assert.Contains(cases, c => c.Top == c.KH - 1 && c.KH > 1);
        Assert.Contains(cases, c => c.SH > c.KH);
    }

    /// <summary>A sum of at most 16 inputs over the same divisor: |a-b| &lt;= 1e-6 + 1e-5 max|b|, as for PyTorch's padding.</summary>
    [Property(MaxTest = 100)]
    public Property Forward_matches_libtorch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        Close(AvgPool2dKernel.Forward(x, c.Window, c.Bottom, c.Right, c.CountIncludePad), c.Torch(T(x)), 1e-6, 1e-5, "padded avg_pool2d");
    }));

    /// <summary>Each input gathers dy/divisor from up to 16 windows: |a-b| &lt;= 1e-6 + 1e-5 max|b|.</summary>
    [Property(MaxTest = 100)]
    public Property Backward_matches_libtorch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var y = AvgPool2dKernel.Forward(x, c.Window, c.Bottom, c.Right, c.CountIncludePad);
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, y.Shape.ToArray());
        var tx = T(x, requiresGrad: true);
        c.Torch(tx).backward(new[] { T(dy) });
        Close(AvgPool2dKernel.Backward(dy, x.Shape, c.Window, c.Bottom, c.Right, c.CountIncludePad), Grad(tx), 1e-6, 1e-5, "padded avg_pool2d dx");
    }));

    /// <summary>PyTorch's padding given as ends is the old computation, bit for bit, forward and backward.</summary>
    [Property(MaxTest = 50)]
    public Property Symmetric_padding_as_ends_is_the_symmetric_kernel() => Prop.ForAll(Pool2dCase.Generator.Where(c => !c.Ceil).ToArbitrary(), c =>
    {
        var x = c.Input();
        var y = AvgPool2dKernel.Forward(x, c.Window, c.PH, c.PW, c.CountIncludePad);
        Exact(y, AvgPool2dKernel.Forward(x, c.Window, false, c.CountIncludePad), "forward");
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, y.Shape.ToArray());
        Exact(AvgPool2dKernel.Backward(dy, x.Shape, c.Window, c.PH, c.PW, c.CountIncludePad), AvgPool2dKernel.Backward(dy, x.Shape, c.Window, false, c.CountIncludePad), "backward");
    });

    [Fact]
    public void A_padding_that_reaches_the_window_is_refused()
    {
        var x = Tensor.FromArray(new float[16], 1, 1, 4, 4);
        var e = Assert.Throws<ShapeException>(() => AvgPool2dKernel.Forward(x, new Window2d(3, 3, 1, 1, 0, 1), 3, 0, false));
        Assert.Contains("below the kernel", e.Message);
        Assert.Contains("3 rows below", e.Message);
    }
}
