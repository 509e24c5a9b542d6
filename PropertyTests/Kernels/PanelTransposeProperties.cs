using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The 16x16 AVX-512 panel transpose (<see cref="PanelTranspose"/>) against the GEMM's own 4x4 one
/// (<see cref="GemmDriver{TK}.PackTransposed"/>), bit for bit: every panel row written, rows past n zero, nothing written
/// past the panel's count rows. Shapes cover full and ragged 16-column blocks, fewer than 16 rows, between 16 and 32, and
/// row strides wider than the block. The whole backward pass that uses it is checked bit for bit by
/// <see cref="ConvGemmProperties"/>.
/// </summary>
public sealed class PanelTransposeProperties
{
    private static readonly Gen<(int N, int Count, int Extra, int Seed)> Shapes =
        from n in Gen.Frequency((1, Gen.Constant(32)), (1, Gen.Constant(16)), (3, Gen.Choose(1, 32)))
        from count in Gen.Frequency((1, Gen.Choose(1, 20)), (2, Gen.Choose(1, 300)))
        from extra in Gen.Choose(0, 40)
        from seed in Gen.Choose(0, 1_000_000_000)
        select (n, count, extra, seed);

    [Property(MaxTest = 200)]
    public Property Packs_what_the_gemm_packs() => Prop.ForAll(Shapes.ToArbitrary(), shape =>
    {
        if (!PanelTranspose.Covers(32)) return true; // no AVX-512: the GEMM's packing runs, nothing to compare
        var (n, count, extra, seed) = shape;
        int ld = count + extra;
        var rng = new Random(seed);
        var src = new float[(n - 1) * ld + count];
        for (int i = 0; i < src.Length; i++) src[i] = (float)(rng.NextDouble() * 2 - 1);
        const float sentinel = 12345f;
        var expected = new float[count * 32 + 32];
        var actual = new float[count * 32 + 32];
        Array.Fill(expected, sentinel);
        Array.Fill(actual, -sentinel); // so that rows the transpose skips cannot match the expected values by chance
        unsafe
        {
            fixed (float* s = src, e = expected, a = actual)
            {
                GemmDriver<GemmKernel512>.PackTransposed(s, ld, n, count, 32, e);
                PanelTranspose.Pack32(s, ld, n, count, a);
            }
        }
        for (int i = 0; i < count * 32; i++)
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                throw new Xunit.Sdk.XunitException($"n {n}, count {count}, ld {ld}: panel row {i / 32}, column {i % 32} is {actual[i]:R}, the GEMM packs {expected[i]:R}.");
        for (int i = count * 32; i < actual.Length; i++)
            Assert.Equal(-sentinel, actual[i]);
        return true;
    });
}
