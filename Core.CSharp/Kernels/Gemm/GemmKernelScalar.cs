using System.Runtime.CompilerServices;

namespace Cnn.Core.Kernels;

/// <summary>
/// Portable fallback: a 4x4 tile through a scratch block. Uses fused multiply-adds like the vector kernels,
/// so all three produce bit-identical results.
/// </summary>
internal readonly unsafe struct GemmKernelScalar : IGemmKernel
{
    public static int MR => 4;
    public static int NR => 4;
    public static int MC => 128;
    public static int NC => 2048;
    public static bool APanelResident => false;
    public static int MGrain => 4;
    public static int NGrain => 4;

    public static void TileBeforeNext(int kc, float* a, float* b, float* c, nint ldc, int rows, int cols, bool load) =>
        Tile(kc, a, b, c, ldc, rows, cols, load);

    [SkipLocalsInit, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile(int kc, float* a, float* b, float* c, nint ldc, int rows, int cols, bool load)
    {
        float* t = stackalloc float[16];
        new Span<float>(t, 16).Clear();
        for (int p = 0; p < kc; p++, a += 4, b += 4)
            for (int i = 0; i < 4; i++)
            {
                float ai = a[i];
                for (int j = 0; j < 4; j++) t[i * 4 + j] = MathF.FusedMultiplyAdd(ai, b[j], t[i * 4 + j]);
            }
        // The block's sum starts from zero and is added to C once (see GemmDepth).
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                c[i * ldc + j] = load ? c[i * ldc + j] + t[i * 4 + j] : t[i * 4 + j];
    }
}
