using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// Packs up to 32 rows of a row-major block as one 32-wide panel of the AVX-512 micro-kernel's B operand, or up to 12 as
/// one 12-tall panel of its A operand (<c>dst[p * w + i] = src[i * ld + p]</c>, zero for rows i at or past n): what
/// <see cref="GemmDriver{TK}.PackTransposedBy4"/> writes, in 16x16 register transposes instead of 4x4 ones (the GEMM's packing
/// and the convolution's go through it on AVX-512; whole 16-column blocks of a 12-tall panel in a 12x16 one with whole-vector
/// stores, <see cref="Block12"/>). The dW product of
/// the convolution's backward pass (<see cref="ConvGemm{TK}.Backward"/>) transposes every column of the column matrix this
/// way, and dY into A panels. With 4x4 SSE transposes that took about as long as the product's multiply-adds (8-10 % of
/// lenet5's, keras-cifar's and resnet-mini's training step on the Intel Xeon, perf); a 16x16 transpose issues half the
/// shuffles per float (64 for 256) and loads and stores whole cache lines: conv backward at those networks' layer shapes
/// took 4-13 % less processor time. Data movement only: the panel holds the same floats, so the product's bits do not
/// change.
/// </summary>
internal static unsafe class PanelTranspose
{
    /// <summary>Whether <see cref="Pack"/> runs here and packs panels <paramref name="w"/> wide: AVX-512, and the 32-wide B
    /// panels or 12-tall A panels of <see cref="GemmKernel512"/>.</summary>
    public static bool Covers(int w) => (w == 32 || w == 12) && ColumnPacker.Vectorized;

    /// <summary>
    /// Packs rows <c>[0, n)</c> (n at most <paramref name="w"/>, 32 or 12), columns <c>[0, count)</c> of
    /// <paramref name="src"/> (row stride <paramref name="ld"/>) into <paramref name="dst"/>: count rows of w floats, zero
    /// past n. Reads nothing outside those rows and columns (the last partial 16 columns by masked loads).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pack(float* src, nint ld, int n, int count, int w, float* dst)
    {
        // Panel rows are written whole: 16 lanes of a 32-wide row's half, or the first 12 of a 12-wide one.
        var rowLanes = ImToCol.Lanes(Math.Min(16, w));
        int k0 = 0;
        if (w == 12)
            for (; k0 + 16 <= count; k0 += 16)
                Block12(src + k0, ld, n, dst + (nint)k0 * 12);
        for (; k0 < count; k0 += 16)
        {
            int width = Math.Min(16, count - k0);
            // Lanes of the columns that exist (all but in the last block).
            var mask = ImToCol.Lanes(width);
            float* d = dst + (nint)k0 * w;
            Half(src + k0, ld, n, width, mask, d, w, rowLanes);
            if (w == 32)
            {
                if (n > 16) Half(src + 16 * ld + k0, ld, n - 16, width, mask, d + 16, w, rowLanes);
                else
                    for (int c = 0; c < width; c++) Vector512<float>.Zero.Store(d + (nint)c * w + 16);
            }
        }
    }

    /// <summary>Transposes rows <c>[0, min(n, 16))</c> (zero past n) of 16 columns into column 0-15 of <paramref name="width"/> panel rows.</summary>
    /// <remarks>Too large for the JIT to inline: optimised from the first call rather than tiered up, like the kernels around it.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Half(float* s, nint ld, int n, int width, Vector512<float> mask, float* d, int w, Vector512<float> rowLanes)
    {
        // Stages 1 and 2, four rows at a time: u[4q + c] holds column 4j + c of rows 4q..4q+3 in its 128-bit block j.
        var (u0, u1, u2, u3) = Quad(Row(s, ld, 0, n, mask), Row(s, ld, 1, n, mask), Row(s, ld, 2, n, mask), Row(s, ld, 3, n, mask));
        var (u4, u5, u6, u7) = Quad(Row(s, ld, 4, n, mask), Row(s, ld, 5, n, mask), Row(s, ld, 6, n, mask), Row(s, ld, 7, n, mask));
        var (u8, u9, u10, u11) = Quad(Row(s, ld, 8, n, mask), Row(s, ld, 9, n, mask), Row(s, ld, 10, n, mask), Row(s, ld, 11, n, mask));
        var (u12, u13, u14, u15) = Quad(Row(s, ld, 12, n, mask), Row(s, ld, 13, n, mask), Row(s, ld, 14, n, mask), Row(s, ld, 15, n, mask));
        // Stages 3 and 4: gather the four row quarters of each column.
        Columns(u0, u4, u8, u12, 0, width, d, w, rowLanes);
        Columns(u1, u5, u9, u13, 1, width, d, w, rowLanes);
        Columns(u2, u6, u10, u14, 2, width, d, w, rowLanes);
        Columns(u3, u7, u11, u15, 3, width, d, w, rowLanes);
    }

    /// <summary>
    /// The first two stages of a 16x16 transpose for four rows: pairs of rows interleaved, then four rows per 128-bit block,
    /// so that the c-th result holds column 4j + c of the four rows in its block j.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>) Quad(Vector512<float> r0, Vector512<float> r1,
        Vector512<float> r2, Vector512<float> r3)
    {
        var t0 = Avx512F.UnpackLow(r0, r1);
        var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3);
        var t3 = Avx512F.UnpackHigh(r2, r3);
        return (Avx512F.Shuffle(t0, t2, 0x44), Avx512F.Shuffle(t0, t2, 0xEE), Avx512F.Shuffle(t1, t3, 0x44), Avx512F.Shuffle(t1, t3, 0xEE));
    }

    /// <summary>
    /// From the quarters of columns <c>c + 4j</c> (rows 0-3 in <paramref name="q0"/>, 4-7 in <paramref name="q1"/>, 8-11,
    /// 12-15), writes the whole columns c, c + 4, c + 8 and c + 12 (those below <paramref name="width"/>) as panel rows,
    /// <paramref name="w"/> floats apart, the lanes of <paramref name="rowLanes"/> of each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns(Vector512<float> q0, Vector512<float> q1, Vector512<float> q2, Vector512<float> q3, int c, int width, float* d, int w,
        Vector512<float> rowLanes)
    {
        // 0x88 takes blocks 0 and 2 of each operand, 0xDD blocks 1 and 3.
        var a = Avx512F.Shuffle4x128(q0, q1, 0x88); // columns c, c + 8 of rows 0-7
        var b = Avx512F.Shuffle4x128(q0, q1, 0xDD); // columns c + 4, c + 12 of rows 0-7
        var e = Avx512F.Shuffle4x128(q2, q3, 0x88); // columns c, c + 8 of rows 8-15
        var f = Avx512F.Shuffle4x128(q2, q3, 0xDD); // columns c + 4, c + 12 of rows 8-15
        if (c < width) Avx512F.MaskStore(d + (nint)c * w, rowLanes, Avx512F.Shuffle4x128(a, e, 0x88));
        if (c + 4 < width) Avx512F.MaskStore(d + (nint)(c + 4) * w, rowLanes, Avx512F.Shuffle4x128(b, f, 0x88));
        if (c + 8 < width) Avx512F.MaskStore(d + (nint)(c + 8) * w, rowLanes, Avx512F.Shuffle4x128(a, e, 0xDD));
        if (c + 12 < width) Avx512F.MaskStore(d + (nint)(c + 12) * w, rowLanes, Avx512F.Shuffle4x128(b, f, 0xDD));
    }

    /// <summary>
    /// Transposes rows <c>[0, min(n, 12))</c> (zero past n) of 16 columns into 16 rows of a 12-wide panel: 192 contiguous
    /// floats, stored as 12 whole vectors. <see cref="Half"/>'s 16 masked 12-lane stores, half of them across a cache line,
    /// took 0.27-0.33 ns a float on the Xeon; these 0.13-0.20 (A panels of a 1536 x 1024 operand and of an L2-resident one),
    /// and the transpose needs no rows 12-15.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block12(float* s, nint ld, int n, float* d)
    {
        var full = Vector512.Create(-1).AsSingle();
        // As in Half: u[4q + c] holds column 4j + c of rows 4q..4q+3 in its 128-bit block j.
        var (u0, u1, u2, u3) = Quad(Row(s, ld, 0, n, full), Row(s, ld, 1, n, full), Row(s, ld, 2, n, full), Row(s, ld, 3, n, full));
        var (u4, u5, u6, u7) = Quad(Row(s, ld, 4, n, full), Row(s, ld, 5, n, full), Row(s, ld, 6, n, full), Row(s, ld, 7, n, full));
        var (u8, u9, u10, u11) = Quad(Row(s, ld, 8, n, full), Row(s, ld, 9, n, full), Row(s, ld, 10, n, full), Row(s, ld, 11, n, full));
        // Column 4j + c is block j of u[c], u[4 + c], u[8 + c]; columns 4j..4j+3 (48 floats) are vectors 3j..3j+2, each
        // four 4-row blocks in panel order: (col 0: rows 0-3, 4-7, 8-11; col 1: rows 0-3), (col 1: 4-7, 8-11; col 2: 0-3,
        // 4-7), (col 2: 8-11; col 3: 0-3, 4-7, 8-11).
        // (Block j's selector j | j << 2 | j << 4 | j << 6 is each shuffle's immediate: written out, so it is a constant.)
        Four(u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, 0x00, d);
        Four(u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, 0x55, d + 48);
        Four(u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, 0xAA, d + 96);
        Four(u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, 0xFF, d + 144);
    }

    /// <summary>Columns 4j to 4j + 3 of <see cref="Block12"/>'s transpose as three whole vectors at <paramref name="d"/> (<paramref name="each"/> selects block j).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Four(Vector512<float> u0, Vector512<float> u1, Vector512<float> u2, Vector512<float> u3, Vector512<float> u4,
        Vector512<float> u5, Vector512<float> u6, Vector512<float> u7, Vector512<float> u8, Vector512<float> u9, Vector512<float> u10,
        Vector512<float> u11, [ConstantExpected] byte each, float* d)
    {
        Blocks(u0, u4, u8, u1, each).Store(d);
        Blocks(u5, u9, u2, u6, each).Store(d + 16);
        Blocks(u10, u3, u7, u11, each).Store(d + 32);
    }

    /// <summary>The same 128-bit block of each of four vectors (<paramref name="each"/> selects it four times), as blocks 0 to 3 of one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Blocks(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> e, [ConstantExpected] byte each)
    {
        var ab = Avx512F.Shuffle4x128(a, b, each); // a_j a_j b_j b_j
        var ce = Avx512F.Shuffle4x128(c, e, each); // c_j c_j e_j e_j
        return Avx512F.Shuffle4x128(ab, ce, 0x88); // a_j b_j c_j e_j
    }

    /// <summary>Row i's 16 columns (masked to those that exist), or zeros for a row at or past n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Row(float* s, nint ld, int i, int n, Vector512<float> mask) =>
        i < n ? Avx512F.MaskLoad(s + i * ld, mask, Vector512<float>.Zero) : Vector512<float>.Zero;
}
