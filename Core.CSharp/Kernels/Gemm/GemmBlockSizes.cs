using System.Globalization;

namespace Cnn.Core.Kernels;

/// <summary>
/// The AVX-512 micro-kernel's cache blocks for the CPU the process runs on (<see cref="CpuCaches"/>), chosen once. MC (rows of
/// packed A) and NC (columns of packed B) only decide which tiles are computed together: every element of C still adds the
/// same depth blocks (<see cref="GemmDepth"/>, at most 256 steps, the same on every CPU) in the same order, so they change
/// speed, never bits. What changes bits across CPUs is the micro-kernel alone (AVX-512, AVX2 with FMA, or scalar).
/// </summary>
/// <remarks>
/// <para>AMD Zen 4/5 and unknown CPUs keep the blocking measured on Zen 5 (1 MB L2): MC 192 (a 192 x 256 block of A, 192 KB),
/// NC 4096. Intel Sapphire/Emerald/Granite Rapids (2 MB L2 per core, non-inclusive): A's block gets a quarter of L2, MC =
/// L2 / 4 / (256 x 4 bytes) rounded down to the tile's 12 rows (504 for 2 MB), in line with BLIS's Skylake-X sgemm blocking
/// (MC 480 for 1 MB of L2 with a deeper KC). Measured on Sapphire/Emerald Rapids only in a loaded window (load average 9-11
/// on 2 cores, 2026-12-06): MC 504 and MC 192 alternated gave GEMM 1024/2048 within the run-to-run noise of each other, so
/// this choice rests on the cache arithmetic, not on a measured gain.</para>
/// <para>For experiments, <c>CNN_GEMM_MC</c> and <c>CNN_GEMM_NC</c> override both (rounded to whole tiles); they are read
/// once, when the GEMM is first used.</para>
/// </remarks>
internal static class GemmBlockSizes
{
    private const int MR = 12, NR = 32;

    public static readonly int MC512 = Override("CNN_GEMM_MC", MR) ?? ChooseMc();

    public static readonly int NC512 = Override("CNN_GEMM_NC", NR) ?? 4096;

    private static int ChooseMc()
    {
        if (CpuCaches.Class != CpuClass.IntelRapids || CpuCaches.L2 <= 0) return 192;
        long rows = CpuCaches.L2 / 4 / (GemmDepth.MaxBlock * sizeof(float));
        return (int)Math.Clamp(rows / MR * MR, 192, 1020);
    }

    private static int? Override(string variable, int multiple)
    {
        var text = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(text) || !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < multiple) return null;
        return v / multiple * multiple;
    }
}
