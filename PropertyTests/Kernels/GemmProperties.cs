using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>One random product: sizes, transposes, accumulate, and how many junk elements trail each operand.</summary>
public sealed record GemmCase(int M, int N, int K, bool TransA, bool TransB, bool Accumulate, int Slack, int Seed);

/// <summary>
/// Gemm.Multiply in all four transpose combinations, overwriting and accumulating, against torch.matmul.
/// Tolerance |a-b| &lt;= 1e-5 + 1e-4 max|b|: each entry is a float32 sum of up to 70 products, blocked differently.
/// </summary>
public sealed class GemmProperties
{
    /// <summary>Sizes mostly 1..70 with a bias to 1..8 (edges of register blocks and vector widths).</summary>
    private static readonly Gen<int> Size = Gen.Frequency((1, Gen.Choose(1, 8)), (2, Gen.Choose(1, 70)));

    private static readonly Gen<GemmCase> Cases =
        from m in Size
        from n in Size
        from k in Size
        from ta in Gen.Elements(false, true)
        from tb in Gen.Elements(false, true)
        from acc in Gen.Elements(false, true)
        from slack in Gen.Choose(0, 17)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new GemmCase(m, n, k, ta, tb, acc, slack, seed);

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = Cases.Sample(2000, 50);
        foreach (var (ta, tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
            Assert.Contains(cases, c => c.TransA == ta && c.TransB == tb);
        Assert.Contains(cases, c => c.M == 1);
        Assert.Contains(cases, c => c.N == 1);
        Assert.Contains(cases, c => c.K == 1);
        Assert.Contains(cases, c => c.M > 48 && c.N > 48 && c.K > 48);
        Assert.Contains(cases, c => c.M % 2 == 1 && c.N % 2 == 1 && c.K % 2 == 1 && c.M > 16);
    }

    /// <summary>
    /// C = op(A) op(B) (+ C0 when accumulating). Operands are passed in spans longer than they need, the extra elements
    /// NaN: a kernel that reads past an operand turns the result into NaN, and one that writes past C changes the NaNs.
    /// </summary>
    [Property(MaxTest = 150)]
    public Property Multiply_matches_torch_matmul() => Prop.ForAll(Cases.ToArbitrary(), c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var a = Uniform(rng, c.M * c.K);
        var b = Uniform(rng, c.K * c.N);
        var c0 = Uniform(rng, c.M * c.N);
        float[] Padded(float[] v) => v.Concat(Enumerable.Repeat(float.NaN, c.Slack)).ToArray();
        var cBuffer = Padded(c0);

        Gemm.Multiply(c.TransA, c.TransB, c.M, c.N, c.K, Padded(a), Padded(b), cBuffer, c.Accumulate);

        var ta = c.TransA ? T(a, c.K, c.M).t() : T(a, c.M, c.K);
        var tb = c.TransB ? T(b, c.N, c.K).t() : T(b, c.K, c.N);
        var expected = torch.matmul(ta, tb);
        if (c.Accumulate) expected = expected + T(c0, c.M, c.N);
        Close(Tensor.FromArray(cBuffer[..(c.M * c.N)], c.M, c.N), expected, 1e-5, 1e-4, "gemm");
        Assert.All(cBuffer[(c.M * c.N)..], v => Assert.True(float.IsNaN(v), "Gemm wrote past C."));
    }));
}
