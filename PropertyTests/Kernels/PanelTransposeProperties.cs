using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The 16x16 AVX-512 panel transpose (<see cref="PanelTranspose"/>) against the GEMM's own 4x4 one
/// (<see cref="GemmDriver{TK}.PackTransposedBy4"/>), bit for bit, for 32-wide B panels and 12-tall A panels: every panel row
/// written, rows past n zero, nothing written past the panel's count rows. Shapes cover full and ragged 16-column blocks, fewer than 16 rows, between 16 and 32, and
/// row strides wider than the block. The whole backward pass that uses it is checked bit for bit by
/// <see cref="ConvGemmProperties"/>.
/// </summary>
public sealed class PanelTransposeProperties
{
    private static readonly Gen<(int W, int N, int Count, int Extra, int Seed)> Shapes =
        from w in Gen.Elements(32, 12)
        from n in Gen.Frequency((1, Gen.Constant(w)), (1, Gen.Constant(Math.Min(16, w))), (3, Gen.Choose(1, w)))
        from count in Gen.Frequency((1, Gen.Choose(1, 20)), (2, Gen.Choose(1, 300)))
        from extra in Gen.Choose(0, 40)
        from seed in Gen.Choose(0, 1_000_000_000)
        select (w, n, count, extra, seed);

    [Property(MaxTest = 200)]
    public Property Packs_what_the_gemm_packs() => Prop.ForAll(Shapes.ToArbitrary(), shape =>
    {
        var (w, n, count, extra, seed) = shape;
        if (!PanelTranspose.Covers(w)) return true; // no AVX-512: the GEMM's packing runs, nothing to compare
        int ld = count + extra;
        var rng = new Random(seed);
        var src = new float[(n - 1) * ld + count];
        for (int i = 0; i < src.Length; i++) src[i] = (float)(rng.NextDouble() * 2 - 1);
        const float sentinel = 12345f;
        var expected = new float[count * w + 32];
        var actual = new float[count * w + 32];
        Array.Fill(expected, sentinel);
        Array.Fill(actual, -sentinel); // so that rows the transpose skips cannot match the expected values by chance
        unsafe
        {
            fixed (float* s = src, e = expected, a = actual)
            {
                GemmDriver<GemmKernel512>.PackTransposedBy4(s, ld, n, count, w, e);
                PanelTranspose.Pack(s, ld, n, count, w, a);
            }
        }
        for (int i = 0; i < count * w; i++)
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                throw new Xunit.Sdk.XunitException($"w {w}, n {n}, count {count}, ld {ld}: panel row {i / w}, column {i % w} is {actual[i]:R}, the GEMM packs {expected[i]:R}.");
        for (int i = count * w; i < actual.Length; i++)
            Assert.Equal(-sentinel, actual[i]);
        return true;
    });

    /// <summary>
    /// The 4x4 packing itself (every CPU's path; with AVX2 the 6-tall A panels' last two rows go by pairs) against the
    /// definition: panel row p, column i is source row i's float p for i below n, zero up to the panel's width, and nothing
    /// written past the panel.
    /// </summary>
    [Property(MaxTest = 200)]
    public Property The_4x4_packing_is_the_transpose() => Prop.ForAll(
        (from w in Gen.Elements(4, 6, 12, 16, 32)
         from n in Gen.Choose(1, w)
         from count in Gen.Frequency((2, Gen.Choose(1, 9)), (1, Gen.Choose(1, 300)))
         from extra in Gen.Choose(0, 7)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (w, n, count, extra, seed)).ToArbitrary(), shape =>
    {
        var (w, n, count, extra, seed) = shape;
        int ld = count + extra;
        var rng = new Random(seed);
        var src = new float[(n - 1) * ld + count];
        for (int i = 0; i < src.Length; i++) src[i] = (float)(rng.NextDouble() * 2 - 1);
        const float sentinel = 12345f;
        var actual = new float[count * w + 8];
        Array.Fill(actual, sentinel);
        unsafe
        {
            fixed (float* s = src, a = actual) GemmDriver<GemmKernel256>.PackTransposedBy4(s, ld, n, count, w, a);
        }
        for (int p = 0; p < count; p++)
            for (int i = 0; i < w; i++)
            {
                float expected = i < n ? src[i * ld + p] : 0f;
                if (BitConverter.SingleToInt32Bits(actual[p * w + i]) != BitConverter.SingleToInt32Bits(expected))
                    throw new Xunit.Sdk.XunitException($"w {w}, n {n}, count {count}, ld {ld}: panel row {p}, column {i} is {actual[p * w + i]:R}, expected {expected:R}.");
            }
        for (int i = count * w; i < actual.Length; i++)
            Assert.Equal(sentinel, actual[i]);
        return true;
    });
}
