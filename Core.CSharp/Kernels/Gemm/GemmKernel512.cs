using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// AVX-512 micro-kernel: a 12x32 tile (24 zmm accumulators, two B vectors, one broadcast of A: 27 of 32
/// registers). Edge tiles of 4 or 8 rows and 16 columns run narrower specialisations rather than a full
/// tile of zero padding, which matters for convolution shapes such as 64 filters or 225 output pixels.
/// </summary>
internal readonly unsafe struct GemmKernel512 : IGemmKernel
{
    public static int MR => 12;
    public static int NR => 32;
    public static int MC => GemmBlockSizes.MC512;
    public static int NC => GemmBlockSizes.NC512;
    public static bool APanelResident => GemmBlockSizes.APanelResident;
    public static int MGrain => 4;
    public static int NGrain => 16;

    public static bool IsSupported => Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    /// <summary>
    /// <see cref="Tile"/>, and a full tile prefetches the packed B panel after its own into L1 as its loop runs, two lines a
    /// step: the next tile's in the A-resident loop order, where B's panels stream from L2. Measured on the Xeon (one thread,
    /// loaded, medians of six): GEMM 1024 151 against 146 GFLOP/s, 2048 even. The convolution's products, which reuse one B
    /// panel for several tiles, call <see cref="Tile"/> (its forward pass lost 1 % with the prefetch).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileBeforeNext(int kc, float* a, float* b, float* c, nint ldc, int rows, int cols, bool load)
    {
        if (rows == 12 && cols == 32) Micro<Rows12, Cols32, NextPanel>(kc, a, b, c, ldc, load);
        else Tile(kc, a, b, c, ldc, rows, cols, load);
    }

    [SkipLocalsInit, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile(int kc, float* a, float* b, float* c, nint ldc, int rows, int cols, bool load)
    {
        int rowClass = rows > 8 ? 12 : rows > 4 ? 8 : 4;
        int colClass = cols > 16 ? 32 : 16;
        if (rows == rowClass && cols == colClass)
        {
            Specialised(rowClass, colClass, kc, a, b, c, ldc, load);
            return;
        }
        // A ragged edge goes through a scratch tile so the kernel never touches C outside the product.
        float* t = stackalloc float[12 * 32];
        if (load)
            for (int i = 0; i < rows; i++)
                new ReadOnlySpan<float>(c + i * ldc, cols).CopyTo(new Span<float>(t + i * 32, cols));
        Specialised(rowClass, colClass, kc, a, b, t, 32, load);
        for (int i = 0; i < rows; i++)
            new ReadOnlySpan<float>(t + i * 32, cols).CopyTo(new Span<float>(c + i * ldc, cols));
    }

    private static void Specialised(int rowClass, int colClass, int kc, float* a, float* b, float* c, nint ldc, bool load)
    {
        if (colClass == 32)
        {
            if (rowClass == 12) Micro<Rows12, Cols32, ThisPanel>(kc, a, b, c, ldc, load);
            else if (rowClass == 8) Micro<Rows8, Cols32, ThisPanel>(kc, a, b, c, ldc, load);
            else Micro<Rows4, Cols32, ThisPanel>(kc, a, b, c, ldc, load);
        }
        else
        {
            if (rowClass == 12) Micro<Rows12, Cols16, ThisPanel>(kc, a, b, c, ldc, load);
            else if (rowClass == 8) Micro<Rows8, Cols16, ThisPanel>(kc, a, b, c, ldc, load);
            else Micro<Rows4, Cols16, ThisPanel>(kc, a, b, c, ldc, load);
        }
    }

    /// <summary>
    /// The register tile. <typeparamref name="TR"/> and <typeparamref name="TC"/> are constants after
    /// specialisation, so unused rows and columns vanish and the accumulators stay in registers (a tile in
    /// memory is several times slower). Optimised from the first call: an instrumented first tier of a
    /// loop this hot runs many times slower. <typeparamref name="TP"/> 1 also prefetches the next B panel (<see cref="TileBeforeNext"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro<TR, TC, TP>(int kc, float* a, float* b, float* c, nint ldc, bool load)
        where TR : struct, IConstant where TC : struct, IConstant where TP : struct, IConstant
    {
        Vector512<float> lo0 = default, lo1 = default, lo2 = default, lo3 = default, lo4 = default, lo5 = default, lo6 = default, lo7 = default, lo8 = default, lo9 = default, lo10 = default, lo11 = default;
        Vector512<float> hi0 = default, hi1 = default, hi2 = default, hi3 = default, hi4 = default, hi5 = default, hi6 = default, hi7 = default, hi8 = default, hi9 = default, hi10 = default, hi11 = default;
        bool wide = TC.Value == 32;
        // C's tile is read after the loop: ask for its lines into L2 now, so they arrive during the loop instead of
        // stalling it at the end (a large C lives in L3 between depth blocks). Measured on a Xeon (one thread, 2048^3):
        // 4-5 % faster; into L1 they were evicted again by the streaming panels before the loop ended.
        for (int i = 0; i < TR.Value; i++)
        {
            Sse.Prefetch1(c + i * ldc);
            Sse.Prefetch1(c + i * ldc + 15);
            if (wide) Sse.Prefetch1(c + i * ldc + 31);
        }
        float* next = b + 32 * kc; // the packed panel after this one
        for (int p = 0; p < kc; p++, a += 12, b += 32)
        {
            if (TP.Value == 1)
            {
                Sse.Prefetch0(next + 32 * p);
                Sse.Prefetch0(next + 32 * p + 16);
            }
            var b0 = Vector512.Load(b);
            var b1 = wide ? Vector512.Load(b + 16) : default;
            Vector512<float> av;
            av = Vector512.Create(a[0]); lo0 = Avx512F.FusedMultiplyAdd(av, b0, lo0); if (wide) hi0 = Avx512F.FusedMultiplyAdd(av, b1, hi0);
            av = Vector512.Create(a[1]); lo1 = Avx512F.FusedMultiplyAdd(av, b0, lo1); if (wide) hi1 = Avx512F.FusedMultiplyAdd(av, b1, hi1);
            av = Vector512.Create(a[2]); lo2 = Avx512F.FusedMultiplyAdd(av, b0, lo2); if (wide) hi2 = Avx512F.FusedMultiplyAdd(av, b1, hi2);
            av = Vector512.Create(a[3]); lo3 = Avx512F.FusedMultiplyAdd(av, b0, lo3); if (wide) hi3 = Avx512F.FusedMultiplyAdd(av, b1, hi3);
            if (TR.Value >= 8)
            {
                av = Vector512.Create(a[4]); lo4 = Avx512F.FusedMultiplyAdd(av, b0, lo4); if (wide) hi4 = Avx512F.FusedMultiplyAdd(av, b1, hi4);
                av = Vector512.Create(a[5]); lo5 = Avx512F.FusedMultiplyAdd(av, b0, lo5); if (wide) hi5 = Avx512F.FusedMultiplyAdd(av, b1, hi5);
                av = Vector512.Create(a[6]); lo6 = Avx512F.FusedMultiplyAdd(av, b0, lo6); if (wide) hi6 = Avx512F.FusedMultiplyAdd(av, b1, hi6);
                av = Vector512.Create(a[7]); lo7 = Avx512F.FusedMultiplyAdd(av, b0, lo7); if (wide) hi7 = Avx512F.FusedMultiplyAdd(av, b1, hi7);
            }
            if (TR.Value >= 12)
            {
                av = Vector512.Create(a[8]); lo8 = Avx512F.FusedMultiplyAdd(av, b0, lo8); if (wide) hi8 = Avx512F.FusedMultiplyAdd(av, b1, hi8);
                av = Vector512.Create(a[9]); lo9 = Avx512F.FusedMultiplyAdd(av, b0, lo9); if (wide) hi9 = Avx512F.FusedMultiplyAdd(av, b1, hi9);
                av = Vector512.Create(a[10]); lo10 = Avx512F.FusedMultiplyAdd(av, b0, lo10); if (wide) hi10 = Avx512F.FusedMultiplyAdd(av, b1, hi10);
                av = Vector512.Create(a[11]); lo11 = Avx512F.FusedMultiplyAdd(av, b0, lo11); if (wide) hi11 = Avx512F.FusedMultiplyAdd(av, b1, hi11);
            }
        }
        // The block's sum starts from zero and is added to C once (see GemmDepth).
        if (load)
        {
            lo0 += Vector512.Load(c + 0 * ldc); if (wide) hi0 += Vector512.Load(c + 0 * ldc + 16);
            lo1 += Vector512.Load(c + 1 * ldc); if (wide) hi1 += Vector512.Load(c + 1 * ldc + 16);
            lo2 += Vector512.Load(c + 2 * ldc); if (wide) hi2 += Vector512.Load(c + 2 * ldc + 16);
            lo3 += Vector512.Load(c + 3 * ldc); if (wide) hi3 += Vector512.Load(c + 3 * ldc + 16);
            if (TR.Value >= 8)
            {
                lo4 += Vector512.Load(c + 4 * ldc); if (wide) hi4 += Vector512.Load(c + 4 * ldc + 16);
                lo5 += Vector512.Load(c + 5 * ldc); if (wide) hi5 += Vector512.Load(c + 5 * ldc + 16);
                lo6 += Vector512.Load(c + 6 * ldc); if (wide) hi6 += Vector512.Load(c + 6 * ldc + 16);
                lo7 += Vector512.Load(c + 7 * ldc); if (wide) hi7 += Vector512.Load(c + 7 * ldc + 16);
            }
            if (TR.Value >= 12)
            {
                lo8 += Vector512.Load(c + 8 * ldc); if (wide) hi8 += Vector512.Load(c + 8 * ldc + 16);
                lo9 += Vector512.Load(c + 9 * ldc); if (wide) hi9 += Vector512.Load(c + 9 * ldc + 16);
                lo10 += Vector512.Load(c + 10 * ldc); if (wide) hi10 += Vector512.Load(c + 10 * ldc + 16);
                lo11 += Vector512.Load(c + 11 * ldc); if (wide) hi11 += Vector512.Load(c + 11 * ldc + 16);
            }
        }
        lo0.Store(c + 0 * ldc); if (wide) hi0.Store(c + 0 * ldc + 16);
        lo1.Store(c + 1 * ldc); if (wide) hi1.Store(c + 1 * ldc + 16);
        lo2.Store(c + 2 * ldc); if (wide) hi2.Store(c + 2 * ldc + 16);
        lo3.Store(c + 3 * ldc); if (wide) hi3.Store(c + 3 * ldc + 16);
        if (TR.Value >= 8)
        {
            lo4.Store(c + 4 * ldc); if (wide) hi4.Store(c + 4 * ldc + 16);
            lo5.Store(c + 5 * ldc); if (wide) hi5.Store(c + 5 * ldc + 16);
            lo6.Store(c + 6 * ldc); if (wide) hi6.Store(c + 6 * ldc + 16);
            lo7.Store(c + 7 * ldc); if (wide) hi7.Store(c + 7 * ldc + 16);
        }
        if (TR.Value >= 12)
        {
            lo8.Store(c + 8 * ldc); if (wide) hi8.Store(c + 8 * ldc + 16);
            lo9.Store(c + 9 * ldc); if (wide) hi9.Store(c + 9 * ldc + 16);
            lo10.Store(c + 10 * ldc); if (wide) hi10.Store(c + 10 * ldc + 16);
            lo11.Store(c + 11 * ldc); if (wide) hi11.Store(c + 11 * ldc + 16);
        }
    }
}
