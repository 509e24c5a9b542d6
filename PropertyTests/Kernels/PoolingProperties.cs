using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// One random 2-d pooling problem with the options max pooling's ceil mode and average pooling's divisor rules need.
/// <paramref name="Ties"/>: data drawn from {0, 1, 2} so max windows tie often.
/// </summary>
public sealed record Pool2dCase(int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, bool Ceil, bool CountIncludePad, bool Ties, int Seed)
{
    /// <summary>The window.</summary>
    public Window2d Window => new(KH, KW, SH, SW, PH, PW);

    /// <summary>
    /// Batches 1..3, channels 1..3, windows 1..4 per axis, strides 1..4 (so ceil mode often adds a window that overhangs
    /// the padded input, and sometimes would add one that starts in the right padding, which PyTorch drops), padding up
    /// to half the window (PyTorch's limit), input sizes from the smallest that fits to 11; ceil mode and
    /// count_include_pad each half the time.
    /// </summary>
    public static Gen<Pool2dCase> Generator { get; } =
        from n in Gen.Choose(1, 3)
        from c in Gen.Choose(1, 3)
        from kh in Gen.Choose(1, 4)
        from kw in Gen.Choose(1, 4)
        from sh in Gen.Choose(1, 4)
        from sw in Gen.Choose(1, 4)
        from ph in Gen.Choose(0, kh / 2)
        from pw in Gen.Choose(0, kw / 2)
        from h in Gen.Choose(Math.Max(1, kh - 2 * ph), 11)
        from w in Gen.Choose(Math.Max(1, kw - 2 * pw), 11)
        from ceil in Gen.Elements(false, true)
        from includePad in Gen.Elements(false, true)
        from ties in Gen.Elements(false, true)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new Pool2dCase(n, c, h, w, kh, kw, sh, sw, ph, pw, ceil, includePad, ties, seed);

    /// <summary>Whether ceil mode adds a window (one that overhangs the padded input) on some axis.</summary>
    public bool Overhangs => Ceil && (PoolingSize.Output(H, KH, SH, PH, true) > PoolingSize.Output(H, KH, SH, PH, false)
                                      || PoolingSize.Output(W, KW, SW, PW, true) > PoolingSize.Output(W, KW, SW, PW, false));

    /// <summary>Whether PyTorch's rule drops a last window that would start in the right padding, on some axis.</summary>
    public bool DropsLastWindow => Ceil && (Naive(H, KH, SH, PH) > PoolingSize.Output(H, KH, SH, PH, true) || Naive(W, KW, SW, PW) > PoolingSize.Output(W, KW, SW, PW, true));

    private static int Naive(int size, int k, int s, int p) => (size + 2 * p - k + s - 1) / s + 1;

    /// <summary>The data: pairwise distinct values, or small integers that tie.</summary>
    public Tensor Input()
    {
        var rng = new Random(Seed);
        int size = N * C * H * W;
        var data = Ties ? Enumerable.Range(0, size).Select(_ => (float)rng.Next(3)).ToArray() : Distinct(rng, size);
        return Tensor.FromArray(data, N, C, H, W);
    }

    /// <summary>LibTorch's window arguments.</summary>
    public (long[] Kernel, long[] Stride, long[] Pad) TorchWindow => (new long[] { KH, KW }, new long[] { SH, SW }, new long[] { PH, PW });
}

/// <summary>One random global or channel pooling problem: a shape of rank 2..5 (rank >= 3 for global pooling), kernel and stride along channels.</summary>
public sealed record ReducePoolCase(int[] Dims, int Kernel, int Stride, bool Ties, int Seed)
{
    /// <summary>Batch 1..3, channels 1..12, 0..3 spatial axes of 1..6; a channel window of 1..min(C, 4) with stride 1..3.</summary>
    public static Gen<ReducePoolCase> Generator { get; } =
        from rank in Gen.Choose(2, 5)
        from n in Gen.Choose(1, 3)
        from c in Gen.Choose(1, 12)
        from spatial in Gen.ArrayOf(Gen.Choose(1, 6), rank - 2)
        from k in Gen.Choose(1, Math.Min(c, 4))
        from s in Gen.Choose(1, 3)
        from ties in Gen.Elements(false, true)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ReducePoolCase(new[] { n, c }.Concat(spatial).ToArray(), k, s, ties, seed);

    /// <summary>The data: pairwise distinct values, or small integers that tie.</summary>
    public Tensor Input()
    {
        var rng = new Random(Seed);
        int size = new Shape(Dims).Size;
        var data = Ties ? Enumerable.Range(0, size).Select(_ => (float)rng.Next(3)).ToArray() : Distinct(rng, size);
        return Tensor.FromArray(data, Dims);
    }

    /// <summary>The spatial axes, for LibTorch's reductions.</summary>
    public long[] SpatialAxes => Enumerable.Range(2, Dims.Length - 2).Select(a => (long)a).ToArray();

    /// <inheritdoc />
    public override string ToString() => $"ReducePoolCase([{string.Join(", ", Dims)}], kernel {Kernel}, stride {Stride}, ties {Ties}, seed {Seed})";
}

/// <summary>
/// Average pooling (ceil mode, count_include_pad), max pooling in ceil mode, global pooling and channel max pooling
/// against TorchSharp's avg_pool2d, max_pool2d, adaptive_avg_pool, amax and max_pool1d, with their autograd.
/// </summary>
public sealed class PoolingProperties
{
    private static readonly Arbitrary<Pool2dCase> Cases = Pool2dCase.Generator.ToArbitrary();
    private static readonly Arbitrary<ReducePoolCase> ReduceCases = ReducePoolCase.Generator.ToArbitrary();
    private static readonly Arbitrary<ReducePoolCase> GlobalCases = ReducePoolCase.Generator.Where(c => c.Dims.Length >= 3).ToArbitrary();

    [Fact]
    public void Generators_cover_the_hard_cases()
    {
        var cases = Pool2dCase.Generator.Sample(3000, 50);
        Assert.Contains(cases, c => c.Overhangs && c.PH > 0);
        Assert.Contains(cases, c => c.Overhangs && !c.CountIncludePad);
        Assert.Contains(cases, c => c.DropsLastWindow);
        Assert.Contains(cases, c => c.PH > 0 && !c.CountIncludePad);
        Assert.Contains(cases, c => c.N == 1);
        Assert.Contains(cases, c => c.SH > c.KH);
        var reduce = ReducePoolCase.Generator.Sample(2000, 50);
        Assert.Contains(reduce, c => c.Kernel > c.Stride);
        Assert.Contains(reduce, c => c.Stride > c.Kernel);
        Assert.Contains(reduce, c => (c.Dims[1] - c.Kernel) % c.Stride != 0);
        foreach (var rank in new[] { 2, 3, 4, 5 }) Assert.Contains(reduce, c => c.Dims.Length == rank);
    }

    /// <summary>
    /// PyTorch's ceil-mode rule on known numbers: 5 wide, kernel 3, stride 2, padding 1 gives 4 windows by rounding up, but
    /// the 4th would start in the right padding: 3. Likewise 1 wide, kernel 2, stride 2, padding 1: the 2nd window would
    /// start at index 1, the right padding: 1.
    /// </summary>
    [Theory]
    [InlineData(5, 3, 2, 1, false, 3)]
    [InlineData(5, 3, 2, 1, true, 3)]
    [InlineData(6, 3, 2, 0, false, 2)]
    [InlineData(6, 3, 2, 0, true, 3)]
    [InlineData(112, 3, 2, 0, true, 56)]
    [InlineData(1, 2, 2, 1, true, 1)]
    public void PoolingSize_matches_known_cases(int size, int kernel, int stride, int pad, bool ceil, int expected) =>
        Assert.Equal(expected, PoolingSize.Output(size, kernel, stride, pad, ceil));

    [Fact]
    public void PoolingSize_rejects_padding_above_half_the_kernel()
    {
        var e = Assert.Throws<ShapeException>(() => PoolingSize.Output(5, 2, 1, 2, false));
        Assert.Contains("kernel/2", e.Message);
    }

    /// <summary>
    /// A sum of at most 16 inputs divided by PyTorch's divisor (which differs from ours only if a rule is wrong, by a
    /// factor of at least 16/15): |a-b| &lt;= 1e-6 + 1e-5 max|b|.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property AvgPool_forward_matches_torch_avg_pool2d() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var (k, s, p) = c.TorchWindow;
        var expected = avg_pool2d(T(x), k, s, p, ceil_mode: c.Ceil, count_include_pad: c.CountIncludePad);
        Close(AvgPool2dKernel.Forward(x, c.Window, c.Ceil, c.CountIncludePad), expected, 1e-6, 1e-5, "avg_pool2d");
    }));

    /// <summary>Each input gathers dy/divisor from up to 16 overlapping windows: |a-b| &lt;= 1e-6 + 1e-5 max|b|.</summary>
    [Property(MaxTest = 100)]
    public Property AvgPool_backward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var y = AvgPool2dKernel.Forward(x, c.Window, c.Ceil, c.CountIncludePad);
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, y.Shape.ToArray());
        var (k, s, p) = c.TorchWindow;
        var tx = T(x, requiresGrad: true);
        avg_pool2d(tx, k, s, p, ceil_mode: c.Ceil, count_include_pad: c.CountIncludePad).backward(new[] { T(dy) });
        Close(AvgPool2dKernel.Backward(dy, x.Shape, c.Window, c.Ceil, c.CountIncludePad), Grad(tx), 1e-6, 1e-5, "avg_pool2d dx");
    }));

    /// <summary>The maximum is one of the inputs: bitwise equal, in ceil mode and out of it, with ties half the time.</summary>
    [Property(MaxTest = 100)]
    public Property MaxPool_with_ceil_mode_matches_torch_max_pool2d() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var (k, s, p) = c.TorchWindow;
        Exact(MaxPool2dKernel.Forward(x, c.Window, c.Ceil).Output, max_pool2d(T(x), k, s, p, ceil_mode: c.Ceil), "max_pool2d");
    }));

    /// <summary>Each input sums the dy of the windows it won (ties to the first, as LibTorch): |a-b| &lt;= 1e-6 + 1e-5 max|b|.</summary>
    [Property(MaxTest = 100)]
    public Property MaxPool_with_ceil_mode_backward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var r = MaxPool2dKernel.Forward(x, c.Window, c.Ceil);
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, r.Output.Shape.ToArray());
        var (k, s, p) = c.TorchWindow;
        var tx = T(x, requiresGrad: true);
        max_pool2d(tx, k, s, p, ceil_mode: c.Ceil).backward(new[] { T(dy) });
        Close(MaxPool2dKernel.Backward(dy, r.ArgMax, x.Shape), Grad(tx), 1e-6, 1e-5, "max_pool2d dx");
    }));

    private static TorchTensor AdaptiveAverage(TorchTensor x, int rank) => rank switch
    {
        3 => adaptive_avg_pool1d(x, 1),
        4 => adaptive_avg_pool2d(x, new long[] { 1, 1 }),
        _ => adaptive_avg_pool3d(x, new long[] { 1, 1, 1 }),
    };

    /// <summary>The mean of up to 216 values in [-1, 1): |a-b| &lt;= 1e-6 + 1e-5 max|b|.</summary>
    [CnnProperty]
    public Property GlobalAverage_matches_torch_adaptive_avg_pool() => Prop.ForAll(GlobalCases, c => Scoped(() =>
    {
        var x = c.Input();
        Close(GlobalPoolKernel.AverageForward(x), AdaptiveAverage(T(x), c.Dims.Length), 1e-6, 1e-5, "global average");
    }));

    /// <summary>dy / (spatial size) spread over each plane: one division, |a-b| &lt;= 1e-7 + 1e-6 max|b|.</summary>
    [CnnProperty]
    public Property GlobalAverage_backward_matches_torch_autograd() => Prop.ForAll(GlobalCases, c => Scoped(() =>
    {
        var x = c.Input();
        var y = GlobalPoolKernel.AverageForward(x);
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, y.Shape.ToArray());
        var tx = T(x, requiresGrad: true);
        AdaptiveAverage(tx, c.Dims.Length).backward(new[] { T(dy) });
        Close(GlobalPoolKernel.AverageBackward(dy, x.Shape), Grad(tx), 1e-7, 1e-6, "global average dx");
    }));

    /// <summary>
    /// The maximum is exact (bitwise against amax). The routed gradient is checked against amax's autograd on distinct
    /// data only (amax splits a tied gradient evenly, max pooling gives it to one winner); with ties the winner must be
    /// the first maximum of its plane.
    /// </summary>
    [CnnProperty]
    public Property GlobalMax_matches_torch_amax() => Prop.ForAll(GlobalCases, c => Scoped(() =>
    {
        var x = c.Input();
        var r = GlobalPoolKernel.MaxForward(x);
        var tx = T(x, requiresGrad: true);
        var ty = tx.amax(c.SpatialAxes, true);
        Exact(r.Output, ty, "global max");
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, r.Output.Shape.ToArray());
        var dx = GlobalPoolKernel.MaxBackward(dy, r.ArgMax, x.Shape);
        if (!c.Ties)
        {
            ty.backward(new[] { T(dy) });
            Exact(dx, Grad(tx), "global max dx");
        }
        int plane = x.Size / r.Output.Size;
        for (int p = 0; p < r.Output.Size; p++)
        {
            int first = x.Span.Slice(p * plane, plane).IndexOf(r.Output[p]) + p * plane;
            Assert.Equal(first, r.ArgMax.Span[p]);
        }
    }));

    private static TorchTensor ChannelMaxReference(TorchTensor x, ReducePoolCase c) => ChannelReference(x, c, rows => max_pool1d(rows, c.Kernel, c.Stride));

    // [N, C, S...] -> [N*S, 1, C] so that a 1-d pooling runs along the channels, and back.
    private static TorchTensor ChannelReference(TorchTensor x, ReducePoolCase c, Func<TorchTensor, TorchTensor> pool)
    {
        int n = c.Dims[0], ch = c.Dims[1], s = new Shape(c.Dims).Size / (n * ch);
        var rows = x.reshape(n, ch, s).permute(0, 2, 1).reshape(n * s, 1, ch);
        var pooled = pool(rows);
        long oc = pooled.shape[2];
        var dims = c.Dims.Select(d => (long)d).ToArray();
        dims[1] = oc;
        return pooled.reshape(n, s, oc).permute(0, 2, 1).reshape(dims);
    }

    /// <summary>The maximum is one of the inputs: bitwise equal to max_pool1d run along the channels.</summary>
    [CnnProperty]
    public Property ChannelMax_matches_torch_max_pool1d_along_channels() => Prop.ForAll(ReduceCases, c => Scoped(() =>
    {
        var x = c.Input();
        Exact(ChannelMaxPoolKernel.Forward(x, c.Kernel, c.Stride).Output, ChannelMaxReference(T(x), c), "channel max");
    }));

    /// <summary>Each input sums the dy of the windows it won, ties to the first channel as LibTorch: |a-b| &lt;= 1e-6 + 1e-5 max|b|.</summary>
    [CnnProperty]
    public Property ChannelMax_backward_matches_torch_autograd() => Prop.ForAll(ReduceCases, c => Scoped(() =>
    {
        var x = c.Input();
        var r = ChannelMaxPoolKernel.Forward(x, c.Kernel, c.Stride);
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, r.Output.Shape.ToArray());
        var tx = T(x, requiresGrad: true);
        ChannelMaxReference(tx, c).backward(new[] { T(dy) });
        Close(ChannelMaxPoolKernel.Backward(dy, r.ArgMax, x.Shape), Grad(tx), 1e-6, 1e-5, "channel max dx");
    }));

    /// <summary>
    /// avg_pool1d run along the channels, on distinct values and on ties, windows overlapping (stride below the kernel) or
    /// skipping channels (stride above it). A mean of at most 4 values in [-2, 2], summed in the same order and divided once
    /// on both sides: |a-b| &lt;= 1e-6 + 1e-6 |b|.
    /// </summary>
    [CnnProperty]
    public Property ChannelAvg_matches_torch_avg_pool1d_along_channels() => Prop.ForAll(ReduceCases, c => Scoped(() =>
    {
        var x = c.Input();
        Close(ChannelAvgPoolKernel.Forward(x, c.Kernel, c.Stride), ChannelReference(T(x), c, rows => avg_pool1d(rows, c.Kernel, c.Stride)), 1e-6, 1e-6, "channel avg");
    }));

    /// <summary>
    /// Each input channel gets dy / kernel from every window holding it (several where windows overlap, none past the last
    /// window), as LibTorch's autograd: a sum of at most 4 shares, |a-b| &lt;= 1e-6 + 1e-5 max|b|.
    /// </summary>
    [CnnProperty]
    public Property ChannelAvg_backward_matches_torch_autograd() => Prop.ForAll(ReduceCases, c => Scoped(() =>
    {
        var x = c.Input();
        var y = ChannelAvgPoolKernel.Forward(x, c.Kernel, c.Stride);
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, y.Shape.ToArray());
        var tx = T(x, requiresGrad: true);
        ChannelReference(tx, c, rows => avg_pool1d(rows, c.Kernel, c.Stride)).backward(new[] { T(dy) });
        Close(ChannelAvgPoolKernel.Backward(dy, x.Shape, c.Kernel, c.Stride), Grad(tx), 1e-6, 1e-5, "channel avg dx");
    }));

    [Fact]
    public void ChannelAvg_rejects_a_kernel_wider_than_the_channels_and_a_gradient_of_another_shape()
    {
        var e = Assert.Throws<ShapeException>(() => ChannelAvgPoolKernel.Forward(Tensor.Zeros(1, 3, 2, 2), 4, 1));
        Assert.Contains("[1, 3, 2, 2]", e.Message);
        e = Assert.Throws<ShapeException>(() => ChannelAvgPoolKernel.Backward(Tensor.Zeros(1, 2, 2, 2), new Shape(1, 4, 2, 2), 2, 1));
        Assert.Contains("[1, 3, 2, 2]", e.Message);
    }

    [Fact]
    public void ChannelMax_rejects_a_kernel_wider_than_the_channels()
    {
        var e = Assert.Throws<ShapeException>(() => ChannelMaxPoolKernel.Forward(Tensor.Zeros(1, 3, 2, 2), 4, 1));
        Assert.Contains("[1, 3, 2, 2]", e.Message);
    }

    [Fact]
    public void GlobalPool_rejects_an_input_without_spatial_axes() =>
        Assert.Throws<ShapeException>(() => GlobalPoolKernel.AverageForward(Tensor.Zeros(2, 3)));
}
