using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.Kernels;

/// <summary>One random max-pooling problem. <paramref name="Ties"/>: data drawn from {0, 1, 2} so windows tie often.</summary>
public sealed record PoolCase(int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, bool Ties, int Seed)
{
    /// <summary>The window.</summary>
    public Window2d Window => new(KH, KW, SH, SW, PH, PW);

    /// <summary>
    /// Batches 1..5, channels 1..5, windows 1..4 per axis, strides 1..3 (overlapping windows when the stride is below the
    /// kernel), padding up to half the window (PyTorch's limit) and at most 2, input sizes from the smallest that fits to 11.
    /// </summary>
    public static Gen<PoolCase> Generator { get; } =
        from n in Gen.Choose(1, 5)
        from c in Gen.Choose(1, 5)
        from kh in Gen.Choose(1, 4)
        from kw in Gen.Choose(1, 4)
        from sh in Gen.Choose(1, 3)
        from sw in Gen.Choose(1, 3)
        from ph in Gen.Choose(0, Math.Min(2, kh / 2))
        from pw in Gen.Choose(0, Math.Min(2, kw / 2))
        from h in Gen.Choose(Math.Max(1, kh - 2 * ph), 11)
        from w in Gen.Choose(Math.Max(1, kw - 2 * pw), 11)
        from ties in Gen.Elements(false, true)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new PoolCase(n, c, h, w, kh, kw, sh, sw, ph, pw, ties, seed);

    /// <summary>The data: pairwise distinct values, or small integers that tie.</summary>
    public Tensor Input()
    {
        var rng = new Random(Seed);
        int size = N * C * H * W;
        var data = Ties ? Enumerable.Range(0, size).Select(_ => (float)rng.Next(3)).ToArray() : Distinct(rng, size);
        return Tensor.FromArray(data, N, C, H, W);
    }
}

/// <summary>
/// MaxPool2dKernel against TorchSharp's max_pool2d and its autograd. Half the cases use pairwise-distinct data (no
/// ties); the other half use values in {0, 1, 2}, where most windows tie: both the kernel and LibTorch's CPU kernel give
/// a tie to the first maximum in row-major window order, so the routed gradients must agree there too.
/// </summary>
public sealed class MaxPool2dKernelProperties
{
    private static readonly Arbitrary<PoolCase> Cases = PoolCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = PoolCase.Generator.Sample(2000, 50);
        Assert.Contains(cases, c => c.N == 1);
        Assert.Contains(cases, c => c.N is 3 or 5);
        Assert.Contains(cases, c => c.KH != c.KW);
        Assert.Contains(cases, c => c.SH < c.KH);
        Assert.Contains(cases, c => c.SH > c.KH);
        Assert.Contains(cases, c => c.PH == 2);
        Assert.Contains(cases, c => (c.H + 2 * c.PH - c.KH) % c.SH != 0);
        Assert.Contains(cases, c => c.Ties);
    }

    /// <summary>The maximum is one of the inputs, chosen exactly: the output must be bitwise equal.</summary>
    [Property(MaxTest = 100)]
    public Property Forward_matches_torch_max_pool2d() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var r = MaxPool2dKernel.Forward(x, c.Window);
        var expected = max_pool2d(T(x), new long[] { c.KH, c.KW }, new long[] { c.SH, c.SW }, new long[] { c.PH, c.PW });
        Exact(r.Output, expected, "max_pool2d forward");
    }));

    /// <summary>
    /// Each input's gradient is the sum of the upstream gradients of the windows it won; overlapping windows add up to
    /// KH*KW terms in another order: |a-b| &lt;= 1e-6 + 1e-5 max|b|.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property Backward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var r = MaxPool2dKernel.Forward(x, c.Window);
        var dy = RandomTensor(new Random(c.Seed + 1), 1f, r.Output.Shape.ToArray());

        var dx = MaxPool2dKernel.Backward(dy, r.ArgMax, x.Shape);

        var tx = T(x, requiresGrad: true);
        var ty = max_pool2d(tx, new long[] { c.KH, c.KW }, new long[] { c.SH, c.SW }, new long[] { c.PH, c.PW });
        ty.backward(new[] { T(dy) });
        Close(dx, Grad(tx), 1e-6, 1e-5, "max_pool2d dx");
    }));
}
