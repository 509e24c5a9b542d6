using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// AVX2/FMA micro-kernel: a 6x16 tile (12 ymm accumulators, two B vectors, one broadcast: 15 of 16 registers).
/// </summary>
internal readonly unsafe struct GemmKernel256 : IGemmKernel
{
    public static int MR => 6;
    public static int NR => 16;
    public static int MC => 144;
    public static int NC => 4096;
    public static bool APanelResident => false;
    public static int MGrain => 6;
    public static int NGrain => 16;

    public static bool IsSupported => Vector256.IsHardwareAccelerated && Fma.IsSupported;

    public static void TileBeforeNext(int kc, float* a, float* b, float* c, nint ldc, int rows, int cols, bool load) =>
        Tile(kc, a, b, c, ldc, rows, cols, load);

    [SkipLocalsInit, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile(int kc, float* a, float* b, float* c, nint ldc, int rows, int cols, bool load)
    {
        if (rows == 6 && cols == 16)
        {
            Micro(kc, a, b, c, ldc, load);
            return;
        }
        // A ragged edge goes through a scratch tile so the kernel never touches C outside the product.
        float* t = stackalloc float[6 * 16];
        if (load)
            for (int i = 0; i < rows; i++)
                new ReadOnlySpan<float>(c + i * ldc, cols).CopyTo(new Span<float>(t + i * 16, cols));
        Micro(kc, a, b, t, 16, load);
        for (int i = 0; i < rows; i++)
            new ReadOnlySpan<float>(t + i * 16, cols).CopyTo(new Span<float>(c + i * ldc, cols));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro(int kc, float* a, float* b, float* c, nint ldc, bool load)
    {
        Vector256<float> lo0 = default, lo1 = default, lo2 = default, lo3 = default, lo4 = default, lo5 = default;
        Vector256<float> hi0 = default, hi1 = default, hi2 = default, hi3 = default, hi4 = default, hi5 = default;
        // C's tile is read after the loop: ask for its lines into L2 now, so they arrive during the loop instead of
        // stalling it at the end (as the AVX-512 kernel does; a large C lives in L3 between depth blocks).
        for (int i = 0; i < 6; i++)
        {
            Sse.Prefetch1(c + i * ldc);
            Sse.Prefetch1(c + i * ldc + 15);
        }
        for (int p = 0; p < kc; p++, a += 6, b += 16)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            Vector256<float> av;
            av = Vector256.Create(a[0]); lo0 = Fma.MultiplyAdd(av, b0, lo0); hi0 = Fma.MultiplyAdd(av, b1, hi0);
            av = Vector256.Create(a[1]); lo1 = Fma.MultiplyAdd(av, b0, lo1); hi1 = Fma.MultiplyAdd(av, b1, hi1);
            av = Vector256.Create(a[2]); lo2 = Fma.MultiplyAdd(av, b0, lo2); hi2 = Fma.MultiplyAdd(av, b1, hi2);
            av = Vector256.Create(a[3]); lo3 = Fma.MultiplyAdd(av, b0, lo3); hi3 = Fma.MultiplyAdd(av, b1, hi3);
            av = Vector256.Create(a[4]); lo4 = Fma.MultiplyAdd(av, b0, lo4); hi4 = Fma.MultiplyAdd(av, b1, hi4);
            av = Vector256.Create(a[5]); lo5 = Fma.MultiplyAdd(av, b0, lo5); hi5 = Fma.MultiplyAdd(av, b1, hi5);
        }
        // The block's sum starts from zero and is added to C once (see GemmDepth).
        if (load)
        {
            lo0 += Vector256.Load(c + 0 * ldc); hi0 += Vector256.Load(c + 0 * ldc + 8);
            lo1 += Vector256.Load(c + 1 * ldc); hi1 += Vector256.Load(c + 1 * ldc + 8);
            lo2 += Vector256.Load(c + 2 * ldc); hi2 += Vector256.Load(c + 2 * ldc + 8);
            lo3 += Vector256.Load(c + 3 * ldc); hi3 += Vector256.Load(c + 3 * ldc + 8);
            lo4 += Vector256.Load(c + 4 * ldc); hi4 += Vector256.Load(c + 4 * ldc + 8);
            lo5 += Vector256.Load(c + 5 * ldc); hi5 += Vector256.Load(c + 5 * ldc + 8);
        }
        lo0.Store(c + 0 * ldc); hi0.Store(c + 0 * ldc + 8);
        lo1.Store(c + 1 * ldc); hi1.Store(c + 1 * ldc + 8);
        lo2.Store(c + 2 * ldc); hi2.Store(c + 2 * ldc + 8);
        lo3.Store(c + 3 * ldc); hi3.Store(c + 3 * ldc + 8);
        lo4.Store(c + 4 * ldc); hi4.Store(c + 4 * ldc + 8);
        lo5.Store(c + 5 * ldc); hi5.Store(c + 5 * ldc + 8);
    }
}
