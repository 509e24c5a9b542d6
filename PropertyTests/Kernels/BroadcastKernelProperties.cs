using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>Two shapes of one rank that broadcast: each axis drawn 1..5, then set to 1 in the first, the second or neither.</summary>
public sealed record BroadcastCase(int[] A, int[] B, int Seed)
{
    public static Gen<BroadcastCase> Generator { get; } =
        from rank in Gen.Choose(1, 4)
        from dims in Gen.ArrayOf(Gen.Choose(1, 5), rank)
        from which in Gen.ArrayOf(Gen.Choose(0, 2), rank)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new BroadcastCase(dims.Select((d, i) => which[i] == 1 ? 1 : d).ToArray(), dims.Select((d, i) => which[i] == 2 ? 1 : d).ToArray(), seed);

    public override string ToString() => $"BroadcastCase([{string.Join(", ", A)}], [{string.Join(", ", B)}], seed {Seed})";
}

/// <summary>The product join's kernel against LibTorch's broadcasting <c>mul</c> and its autograd (which sums over the broadcast axes).</summary>
public sealed class BroadcastKernelProperties
{
    private static readonly Arbitrary<BroadcastCase> Cases = BroadcastCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = BroadcastCase.Generator.Sample(500, 50);
        Assert.Contains(cases, c => c.A.SequenceEqual(c.B) && c.A.Any(d => d > 1));
        Assert.Contains(cases, c => c.A[^1] == 1 && c.B[^1] > 1);
        Assert.Contains(cases, c => c.B[^1] == 1 && c.A[^1] > 1);
        Assert.Contains(cases, c => c.A.Length == 4 && c.A.Zip(c.B).Any(p => p.First == 1 && p.Second > 1) && c.A.Zip(c.B).Any(p => p.Second == 1 && p.First > 1));
    }

    /// <summary>
    /// One multiplication per element: bitwise equal. The gradients are sums of products over the broadcast axes, taken in
    /// another order by LibTorch, so they differ by a few ulps of the sum of the terms' magnitudes, not of the (possibly
    /// cancelled) result: |a-b| &lt;= 1e-6 * Σ|terms| + 1e-7 per element (Σ|terms| is the same sum over |dy| and |b|; 1e-6
    /// is about 16 ulps, above the log2(625) ≈ 10 ulps a pairwise sum of the largest case's 625 terms can lose). A scale of
    /// max|result| failed on a sum whose terms cancelled (3.8e-6 against 3.4e-6).
    /// </summary>
    [CnnProperty]
    public Property Multiply_and_its_pullback_match_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var a = RandomTensor(rng, 1f, c.A);
        var b = RandomTensor(rng, 1f, c.B);
        var y = BroadcastKernel.Multiply(a, b);
        var ta = T(a, requiresGrad: true);
        var tb = T(b, requiresGrad: true);
        var ty = ta * tb;
        Exact(y, ty, "a * b");
        var dy = RandomTensor(rng, 1f, y.Shape.ToArray());
        ty.backward(new[] { T(dy) });
        CloseToSum(BroadcastKernel.SumTo(BroadcastKernel.Multiply(dy, b), a.Shape), Grad(ta), BroadcastKernel.SumTo(BroadcastKernel.Multiply(Abs(dy), Abs(b)), a.Shape), "da");
        CloseToSum(BroadcastKernel.SumTo(BroadcastKernel.Multiply(dy, a), b.Shape), Grad(tb), BroadcastKernel.SumTo(BroadcastKernel.Multiply(Abs(dy), Abs(a)), b.Shape), "db");
    }));

    /// <summary>
    /// Sum, difference and quotient (the constant operand's kernels): one operation per element, bitwise equal to LibTorch's; a
    /// divisor in ±[0.5, 1.5] keeps the quotient finite. The pullbacks are <see cref="BroadcastKernel.CombineBackward"/>'s, each
    /// element LibTorch's formula and the reduction over the broadcast axes in another order: the tolerance of the product's
    /// gradients, scaled by each sum's terms' magnitudes (|dy|, and |dy| / |b| and |dy| |a| / b² for a quotient).
    /// </summary>
    [CnnProperty]
    public Property Add_subtract_divide_and_their_pullbacks_match_torch() => Prop.ForAll(Cases, Gen.Elements(BinaryOp.Add, BinaryOp.Subtract, BinaryOp.Divide).ToArbitrary(), (c, op) => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var a = RandomTensor(rng, 1f, c.A);
        var b = op == BinaryOp.Divide
            ? Tensor.FromArray(RandomTensor(rng, 1f, c.B).ToArray().Select(v => (v < 0 ? -0.5f : 0.5f) + v).ToArray(), c.B)
            : RandomTensor(rng, 1f, c.B);
        var y = BroadcastKernel.Combine(op, a, b);
        var ta = T(a, requiresGrad: true);
        var tb = T(b, requiresGrad: true);
        var ty = op switch { BinaryOp.Add => ta + tb, BinaryOp.Subtract => ta - tb, _ => ta / tb };
        Exact(y, ty, $"a {op} b");
        var dy = RandomTensor(rng, 1f, y.Shape.ToArray());
        ty.backward(new[] { T(dy) });
        var (da, db) = BroadcastKernel.CombineBackward(op, a, b, dy);
        var ones = Tensor.FromArray(Enumerable.Repeat(1f, b.Size).ToArray(), c.B);
        var inverse = op == BinaryOp.Divide ? BroadcastKernel.Combine(BinaryOp.Divide, ones, Abs(b)) : ones;
        CloseToSum(da, Grad(ta), BroadcastKernel.SumTo(BroadcastKernel.Multiply(Abs(dy), inverse), a.Shape), "da");
        var dbTerms = op == BinaryOp.Divide ? BroadcastKernel.Multiply(BroadcastKernel.Multiply(Abs(dy), Abs(a)), BroadcastKernel.Multiply(inverse, inverse)) : BroadcastKernel.Multiply(Abs(dy), ones);
        CloseToSum(db, Grad(tb), BroadcastKernel.SumTo(dbTerms, b.Shape), "db");
    }));

    private static Tensor Abs(Tensor t) => Tensor.FromArray(t.ToArray().Select(MathF.Abs).ToArray(), t.Shape);

    private static void CloseToSum(Tensor actual, Tensor expected, Tensor magnitudes, string what)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        for (int i = 0; i < actual.Size; i++)
        {
            double diff = Math.Abs((double)actual[i] - expected[i]), bound = 1e-7 + 1e-6 * magnitudes[i];
            if (!(diff <= bound))
                throw new Xunit.Sdk.XunitException($"{what}: element {i} is {actual[i]:R}, reference {expected[i]:R}; |diff| {diff:E3} > 1e-7 + 1e-6 * Σ|terms| {magnitudes[i]:G4}.");
        }
    }
}
