using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Kernels;

/// <summary>One product for the packed SGEMM: sizes, layout, accumulate, code path, thread count and data seed.</summary>
public sealed record SgemmCase(int M, int N, int K, bool TransA, bool TransB, bool Accumulate, GemmInstructionSet Isa, int Threads, int Seed)
{
    /// <summary>The per-call options this case forces.</summary>
    public GemmOptions Options => new() { InstructionSet = Isa, Threads = Threads };
}

/// <summary>
/// The SGEMM against a naive triple loop in double precision, on every instruction-set path the CPU has, across the
/// tile (4, 6, 12 rows; 4, 16, 32 columns) and block (MC 128/144/192, KC 256) boundaries, and through the in-place
/// kernels for products of 1 to 4 rows.
/// Tolerance: |c - ref| &lt;= 1e-5 * (1 + |c0| + sum_k |a||b|). Each element is float32 FMA chains of at most 256
/// steps whose sums are added in order; its error is at most k * 2^-24 times that magnitude sum in the worst case and
/// about sqrt(k) * 2^-24 for the random signs here, i.e. about 2e-6 at k = 1031, so 1e-5 is loose enough to be stable
/// and tight enough that a dropped, doubled or misplaced product (an error of order one term) fails.
/// </summary>
public sealed class GemmTests
{
    internal static readonly GemmInstructionSet[] Paths =
        new[] { GemmInstructionSet.Vector512, GemmInstructionSet.Vector256, GemmInstructionSet.Scalar }.Where(Gemm.IsSupported).ToArray();

    /// <summary>Sizes that sit on, just below and just above the tile and block sizes, plus 1 and primes.</summary>
    private static readonly int[] Boundaries =
        [1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 15, 16, 17, 23, 24, 25, 31, 32, 33, 47, 48, 49, 127, 128, 129, 143, 144, 145,
         191, 192, 193, 255, 256, 257, 263, 289, 293];

    internal static readonly Gen<int> Size = Gen.OneOf(Gen.Elements(Boundaries), Gen.Choose(1, 300), Gen.Choose(1, 40));

    private static readonly Gen<SgemmCase> Cases =
        from m in Size
        from n in Size
        from k in Size
        from ta in Gen.Elements(false, true)
        from tb in Gen.Elements(false, true)
        from acc in Gen.Elements(false, true)
        from isa in Gen.Elements(Paths)
        from threads in Gen.Elements(1, 2)
        from seed in Gen.Choose(0, int.MaxValue)
        select new SgemmCase(m, n, k, ta, tb, acc, isa, threads, seed);

    [Fact]
    public void Generator_covers_every_path_and_the_boundaries()
    {
        var cases = Cases.Sample(3000, 50);
        foreach (var (ta, tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
            Assert.Contains(cases, c => c.TransA == ta && c.TransB == tb);
        foreach (var isa in Paths) Assert.Contains(cases, c => c.Isa == isa);
        Assert.Contains(cases, c => c.M == 1 && c.N > 32);
        Assert.Contains(cases, c => c.M is > 1 and <= 4 && c.TransB && c.K > 16);
        Assert.Contains(cases, c => c.K == 257);
        Assert.Contains(cases, c => c.M > 192 && c.N > 192 && c.K > 256);
        Assert.Contains(cases, c => c.Threads == 2 && 2L * c.M * c.N * c.K > 3_000_000);
    }

    /// <summary>
    /// Operands sit in spans with NaN after their last element: reading past an operand makes the result NaN, and
    /// writing past C changes the NaNs.
    /// </summary>
    [Property(MaxTest = 150)]
    public Property Multiply_matches_a_double_precision_triple_loop() =>
        Prop.ForAll(Cases.ToArbitrary(), c => Check(c, slack: 7));

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Large_odd_products_match_on_every_path(bool transA, bool transB)
    {
        foreach (var isa in Paths)
        {
            Check(new SgemmCase(513, 257, 1031, transA, transB, Accumulate: transA, isa, Threads: 2, Seed: 11), slack: 1);
            Check(new SgemmCase(1031, 97, 289, transA, transB, Accumulate: !transA, isa, Threads: 2, Seed: 12), slack: 1);
        }
    }

    /// <summary>
    /// Threads split M or N, never K, so one and two threads give the same bits on every path. Every element is summed
    /// in the same depth blocks (one FMA chain each, added in k order) whatever the split, tiling and vector width, so
    /// the paths agree with each other too,
    /// except where at most four rows meet a transposed B (dot products with per-lane partial sums). Sizes are large
    /// enough to be split; one case in three has 1 to 4 rows (the in-place small-product kernels).
    /// </summary>
    [CnnProperty]
    public Property Results_are_bit_identical_across_thread_counts_and_paths() =>
        Prop.ForAll((from m in Gen.Frequency((2, Gen.Choose(100, 300)), (1, Gen.Choose(1, 4)))
                     from n in Gen.Choose(100, 300)
                     from k in m <= 4 ? Gen.Choose(2000, 4000) : Gen.Choose(150, 300)
                     from ta in Gen.Elements(false, true)
                     from tb in Gen.Elements(false, true)
                     from acc in Gen.Elements(false, true)
                     from seed in Gen.Choose(0, int.MaxValue)
                     select new SgemmCase(m, n, k, ta, tb, acc, GemmInstructionSet.Scalar, 1, seed)).ToArbitrary(), c =>
        {
            var (a, b, c0) = Operands(c);
            var scalar = Bits(Run(c, a, b, c0));
            foreach (var isa in Paths)
            {
                var one = Bits(Run(c with { Isa = isa }, a, b, c0));
                Assert.Equal(one, Bits(Run(c with { Isa = isa, Threads = 2 }, a, b, c0)));
                if (c.M > 4 || !c.TransB) Assert.Equal(scalar, one);
            }
        });

    /// <summary>
    /// A long product is summed in blocks of at most 256 steps, each from zero, and the blocks' sums added in order,
    /// not as one chain: after a product of 1, each of 511 products of 2^-24 is lost in a chain (1 + 2^-24 rounds to 1),
    /// while the second block's 256 of them add up exactly and survive as 2^-16. On every path, at 1 row (the in-place
    /// kernel) and 7 (the packed kernels), with and without accumulation.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    public void Long_products_are_summed_in_blocks(int m)
    {
        const int k = 512, n = 40;
        float tiny = MathF.ScaleB(1f, -24);
        var a = new float[m * k];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++) a[i * k + p] = p == 0 ? 1f : tiny;
        var b = Enumerable.Repeat(1f, k * n).ToArray();
        foreach (var isa in Paths)
            foreach (bool accumulate in new[] { false, true })
            {
                var c = new float[m * n];
                Gemm.Multiply(false, false, m, n, k, a, b, c, accumulate, new GemmOptions { InstructionSet = isa, Threads = 1 });
                Assert.All(c, v => Assert.Equal(1f + MathF.ScaleB(1f, -16), v));
            }
    }

    [Fact]
    public async Task Concurrent_callers_get_the_same_bits_as_a_lone_caller()
    {
        var cases = Enumerable.Range(0, 4).Select(i => new SgemmCase(160 + 31 * i, 300 - 17 * i, 200 + 9 * i,
            i % 2 == 1, i >= 2, false, GemmInstructionSet.Auto, 2, 100 + i)).ToArray();
        var inputs = cases.Select(Operands).ToArray();
        var expected = cases.Select((c, i) => Bits(Run(c with { Threads = 1 }, inputs[i].A, inputs[i].B, inputs[i].C0))).ToArray();
        var callers = Enumerable.Range(0, 3).Select(t => Task.Run(() =>
        {
            for (int r = 0; r < 30; r++)
            {
                int i = (t + r) % cases.Length;
                Assert.Equal(expected[i], Bits(Run(cases[i], inputs[i].A, inputs[i].B, inputs[i].C0)));
            }
        })).ToArray();
        // A deadlock surfaces as a TimeoutException rather than a hung test run.
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromMinutes(2));
    }

    [Theory]
    [InlineData(30, 576, 25, 1)]
    [InlineData(64, 225, 288, 2)]
    [InlineData(256, 256, 256, 2)]
    public void Steady_state_calls_allocate_nothing(int m, int n, int k, int threads)
    {
        var c = new SgemmCase(m, n, k, false, false, false, GemmInstructionSet.Auto, threads, 3);
        var (a, b, c0) = Operands(c);
        for (int i = 0; i < 5; i++) Gemm.Multiply(false, false, m, n, k, a, b, c0, false, c.Options);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++) Gemm.Multiply(false, false, m, n, k, a, b, c0, false, c.Options);
        long perCall = (GC.GetAllocatedBytesForCurrentThread() - before) / 20;
        Assert.True(perCall <= 100, $"Gemm allocated {perCall} bytes per call in the steady state.");
    }

    [Fact]
    public void Empty_inner_dimension_clears_or_keeps_C()
    {
        float[] c = [1, 2, 3, 4, 5, 6];
        Gemm.Multiply(false, false, 2, 3, 0, [], [], c, accumulate: true);
        Assert.Equal([1f, 2, 3, 4, 5, 6], c);
        Gemm.Multiply(false, false, 2, 3, 0, [], [], c);
        Assert.Equal(new float[6], c);
    }

    [Fact]
    public void Operands_too_small_are_rejected_naming_the_sizes()
    {
        var e = Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 3, 4, new float[8], new float[11], new float[6]));
        Assert.Contains("m=2, n=3, k=4", e.Message);
        Assert.Contains("B 11", e.Message);
    }

    private static void Check(SgemmCase c, int slack)
    {
        var (a, b, c0) = Operands(c);
        var got = new float[c.M * c.N + slack];
        c0.CopyTo(got, 0);
        Array.Fill(got, float.NaN, c.M * c.N, slack);
        Gemm.Multiply(c.TransA, c.TransB, c.M, c.N, c.K, Padded(a, slack), Padded(b, slack), got, c.Accumulate, c.Options);

        for (int i = 0; i < c.M; i++)
            for (int j = 0; j < c.N; j++)
            {
                double start = c.Accumulate ? c0[i * c.N + j] : 0, sum = start, magnitude = Math.Abs(start);
                for (int p = 0; p < c.K; p++)
                {
                    double x = c.TransA ? a[p * c.M + i] : a[i * c.K + p];
                    double y = c.TransB ? b[j * c.K + p] : b[p * c.N + j];
                    sum += x * y;
                    magnitude += Math.Abs(x * y);
                }
                float v = got[i * c.N + j];
                if (!(Math.Abs(v - sum) <= 1e-5 * (1 + magnitude)))
                    Assert.Fail($"{c}: C[{i}, {j}] = {v}, expected {sum} (tolerance {1e-5 * (1 + magnitude):G3}).");
            }
        for (int i = c.M * c.N; i < got.Length; i++)
            Assert.True(float.IsNaN(got[i]), $"{c}: Gemm wrote past C at {i}.");
    }

    private static float[] Run(SgemmCase c, float[] a, float[] b, float[] c0)
    {
        var got = (float[])c0.Clone();
        Gemm.Multiply(c.TransA, c.TransB, c.M, c.N, c.K, a, b, got, c.Accumulate, c.Options);
        return got;
    }

    private static int[] Bits(float[] v) => v.Select(BitConverter.SingleToInt32Bits).ToArray();

    private static (float[] A, float[] B, float[] C0) Operands(SgemmCase c)
    {
        var rng = new Random(c.Seed);
        float[] Uniform(int count)
        {
            var v = new float[count];
            for (int i = 0; i < count; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
            return v;
        }
        return (Uniform(c.M * c.K), Uniform(c.K * c.N), Uniform(c.M * c.N));
    }

    private static float[] Padded(float[] v, int slack)
    {
        var padded = new float[v.Length + slack];
        v.CopyTo(padded, 0);
        Array.Fill(padded, float.NaN, v.Length, slack);
        return padded;
    }
}
