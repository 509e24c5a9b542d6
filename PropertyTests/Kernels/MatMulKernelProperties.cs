using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>One random batched matrix product: x <c>[N, G..., R, K]</c> with 0..2 leading axes G, weight <c>[G..., K, M]</c>.</summary>
public sealed record MatMulCase(int N, int[] Lead, int R, int K, int M, int Seed)
{
    public int[] XDims => new[] { N }.Concat(Lead).Concat(new[] { R, K }).ToArray();

    public int[] WDims => Lead.Concat(new[] { K, M }).ToArray();

    /// <summary>Batch 1..3, 0..2 leading axes of 1..3, rows, inner size and columns 1..9.</summary>
    public static Gen<MatMulCase> Generator { get; } =
        from n in Gen.Choose(1, 3)
        from lead in Gen.Choose(0, 2).SelectMany(a => Gen.ArrayOf(Gen.Choose(1, 3), a))
        from r in Gen.Choose(1, 9)
        from k in Gen.Choose(1, 9)
        from m in Gen.Choose(1, 9)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new MatMulCase(n, lead, r, k, m, seed);

    public override string ToString() => $"MatMulCase(x [{string.Join(", ", XDims)}], w [{string.Join(", ", WDims)}], seed {Seed})";
}

/// <summary>The DSL's MatMul on its kernel against LibTorch's <c>matmul</c> and its autograd.</summary>
public sealed class MatMulKernelProperties
{
    /// <summary>|a-b| &lt;= 1e-5 + 1e-4 max|b|: sums of up to 9 products (dW: up to 27) that LibTorch adds in another order.</summary>
    private const double Atol = 1e-5, Rtol = 1e-4;

    private static readonly Arbitrary<MatMulCase> Cases = MatMulCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = MatMulCase.Generator.Sample(1000, 50);
        foreach (var lead in new[] { 0, 1, 2 }) Assert.Contains(cases, c => c.Lead.Length == lead && c.N > 1);
        Assert.Contains(cases, c => c.Lead.Length == 2 && c.Lead[0] != c.Lead[1] && c.R != c.M);
        Assert.Contains(cases, c => c.R == 1 || c.K == 1 || c.M == 1);
    }

    [Property(MaxTest = 100)]
    public Property Forward_and_backward_match_libtorch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.XDims);
        var w = RandomTensor(rng, 1f, c.WDims);
        var y = MatMulKernel.Forward(x, w);
        var (tx, tw) = (T(x, requiresGrad: true), T(w, requiresGrad: true));
        var ty = TorchSharp.torch.matmul(tx, tw);
        Close(y, ty, Atol, Rtol, "matmul");
        var dy = RandomTensor(rng, 1f, y.Shape.ToArray());
        ty.backward(new[] { T(dy) });
        var grads = MatMulKernel.Backward(x, w, dy);
        Close(grads.Input, Grad(tx), Atol, Rtol, "matmul dx");
        Close(grads.Weight, Grad(tw), Atol, Rtol, "matmul dW");
    }));

    [Fact]
    public void Shapes_that_do_not_fit_are_refused_with_both()
    {
        var e = Assert.Throws<ShapeException>(() => MatMulKernel.Forward(Tensor.Zeros(2, 3, 4, 5), Tensor.Zeros(2, 5, 6)));
        Assert.Contains("[2, 3, 4, 5]", e.Message);
        Assert.Contains("[2, 5, 6]", e.Message);
        Assert.Contains("rank 2 or more", Assert.Throws<ShapeException>(() => new Cnn.Dsl.MatMul(3).OutputShape(new Shape(4), "m", false)).Message);
    }
}
