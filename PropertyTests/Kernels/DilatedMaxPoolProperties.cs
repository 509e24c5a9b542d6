using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.Kernels;

/// <summary>One random dilated 2-d max pooling problem; <paramref name="Ties"/>: data from {0, 1, 2}, so windows tie often.</summary>
public sealed record DilatedPoolCase(int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW, bool Ties, int Seed)
{
    /// <summary>The layer (floor mode, as a dilated window requires).</summary>
    public MaxPool2d Layer => new(KH, KW, SH, SW, PH, PW, false, DH, DW);

    /// <summary>The window in N-d form, as the apply interpreter gives it to <see cref="PoolNdKernel"/>.</summary>
    public ConvGeometry Geometry => ConvGeometry.Create(new[] { KH, KW }, new[] { SH, SW }, new[] { PH, PW }, new[] { PH, PW }, new[] { DH, DW });

    /// <summary>
    /// Batches 1..2, channels 1..3, windows 1..3 with dilation 1..3 per axis (at least one axis dilated), strides 1..3,
    /// padding up to half the window, input sizes from the smallest the dilated window fits to 10; geometries that leave a
    /// window only padding (which the layer refuses) are dropped.
    /// </summary>
    public static Gen<DilatedPoolCase> Generator { get; } =
        (from n in Gen.Choose(1, 2)
         from c in Gen.Choose(1, 3)
         from kh in Gen.Choose(1, 3)
         from kw in Gen.Choose(1, 3)
         from dh in Gen.Choose(1, 3)
         from dw in Gen.Choose(2, 3)
         from sh in Gen.Choose(1, 3)
         from sw in Gen.Choose(1, 3)
         from ph in Gen.Choose(0, kh / 2)
         from pw in Gen.Choose(0, kw / 2)
         from h in Gen.Choose(Math.Max(1, (kh - 1) * dh + 1 - 2 * ph), 10)
         from w in Gen.Choose(Math.Max(1, (kw - 1) * dw + 1 - 2 * pw), 10)
         from ties in Gen.Elements(false, true)
         from seed in Gen.Choose(0, 1_000_000_000)
         from swap in Gen.Elements(false, true)
         // Which axis is surely dilated alternates, so both are.
         select swap ? new DilatedPoolCase(n, c, w, h, kw, kh, sw, sh, pw, ph, dw, dh, ties, seed) : new DilatedPoolCase(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ties, seed))
        .Where(c => c.Fits);

    /// <summary>Whether the layer takes this input (every window covers an input element).</summary>
    public bool Fits
    {
        get
        {
            try
            {
                Layer.OutputShape(new Shape(C, H, W), "", false);
                return true;
            }
            catch (ShapeException)
            {
                return false;
            }
        }
    }

    /// <summary>The data: pairwise distinct values, or small integers that tie.</summary>
    public Tensor Input()
    {
        var rng = new Random(Seed);
        int size = N * C * H * W;
        var data = Ties ? Enumerable.Range(0, size).Select(_ => (float)rng.Next(3)).ToArray() : Distinct(rng, size);
        return Tensor.FromArray(data, N, C, H, W);
    }

    /// <summary>LibTorch's max_pool2d with the same window and dilation.</summary>
    public TorchSharp.torch.Tensor Torch(TorchSharp.torch.Tensor x) =>
        max_pool2d(x, new long[] { KH, KW }, new long[] { SH, SW }, new long[] { PH, PW }, new long[] { DH, DW });
}

/// <summary>
/// Dilated 2-d max pooling (ONNX's and PyTorch's <c>dilation</c>, which <see cref="MaxPool2d"/> takes in floor mode) on the
/// kernel the apply interpreter runs it on, against LibTorch's max_pool2d with dilation and its autograd.
/// </summary>
public sealed class DilatedMaxPoolProperties
{
    private static readonly Arbitrary<DilatedPoolCase> Cases = DilatedPoolCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = DilatedPoolCase.Generator.Sample(2000, 50);
        Assert.Contains(cases, c => c.DH > 1 && c.DW > 1 && c.PH > 0 && c.PW > 0);
        Assert.Contains(cases, c => c.DH == 1 && c.DW > 1);
        Assert.Contains(cases, c => c.DH > 1 && c.DW == 1);
        Assert.Contains(cases, c => c.SH > c.KH && c.DH > 1);
        Assert.Contains(cases, c => c.Ties && c.DW > 1);
        // The dilated window spans the whole padded input.
        Assert.Contains(cases, c => (c.KH - 1) * c.DH + 1 == c.H + 2 * c.PH && c.KH > 1 && c.DH > 1);
    }

    /// <summary>The maximum is one of the inputs, the first in row-major window order on ties: bitwise equal.</summary>
    [Property(MaxTest = 100)]
    public Property Forward_matches_libtorch_max_pool2d() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        Exact(PoolNdKernel.MaxForward(x, c.Geometry).Output, c.Torch(T(x)), "dilated max_pool2d");
    }));

    /// <summary>Each gradient goes to its window's winner, summed over windows: |a-b| &lt;= 1e-6 + 1e-5 max|b|.</summary>
    [Property(MaxTest = 100)]
    public Property Backward_matches_libtorch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var r = PoolNdKernel.MaxForward(x, c.Geometry);
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, r.Output.Shape.ToArray());
        var tx = T(x, requiresGrad: true);
        c.Torch(tx).backward(new[] { T(dy) });
        Close(PoolNdKernel.MaxBackward(dy, r.ArgMax, x.Shape), Grad(tx), 1e-6, 1e-5, "dilated max_pool2d dx");
    }));

    /// <summary>The layer's shape is the kernel's, and a window that covers only padding is refused before any tensor exists.</summary>
    [Property(MaxTest = 50)]
    public Property Layer_shape_is_the_kernels() => Prop.ForAll(Cases, c =>
        c.Layer.OutputShape(new Shape(c.C, c.H, c.W), "", false).PrependBatch(c.N) == PoolNdKernel.MaxForward(c.Input(), c.Geometry).Output.Shape);

    [Fact]
    public void A_window_of_only_padding_and_ceil_mode_are_refused()
    {
        // Input 2 wide, kernel 2, dilation 3, padding 1: the window taps -1 and 2, both outside.
        var e = Assert.Throws<ShapeException>(() => new MaxPool2d(1, 2, 1, 1, 0, 1, false, 1, 3).OutputShape(new Shape(1, 2, 2), "pool", false));
        Assert.Contains("covers only padding", e.Message);
        Assert.Contains("'pool'", e.Message);
        var ceil = Assert.Throws<ShapeException>(() => new MaxPool2d(2, 2, 2, 2, 0, 0, true, 2, 2).OutputShape(new Shape(1, 6, 6), "pool", false));
        Assert.Contains("floor mode", ceil.Message);
    }
}
