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
/// NC 4096, each packed panel of B resident in L1 while the panels of A stream past it.</para>
/// <para>Intel Sapphire/Emerald/Granite Rapids (2 MB L2 per core, non-inclusive) turn the inner loops round
/// (<see cref="APanelResident"/>): each 12-row panel of A (12 KB) stays in L1 while the 32-column panels of B (32 KB each)
/// stream from L2, where the block of B is kept: NC = L2 / 2 / (256 x 4 bytes), 1,024 columns for 2 MB. MC 192. Measured on
/// a Sapphire/Emerald Rapids Xeon (one thread, fastest of 9-18 products, 2026-12-07, other work on the second core): GEMM
/// 1024 / 2048 at 147-153 / 149-151 GFLOP/s against 138-146 / 119-148 with B's panel resident, MC 504 and NC 4096 (the
/// earlier blocking, MC chosen as a quarter of L2 by the cache arithmetic). With B's panel resident, that 32 KB panel, the
/// streaming A panels and C's tile fill the 48 KB L1, and B's lines are evicted before their last use.</para>
/// <para>For experiments, <c>CNN_GEMM_MC</c> and <c>CNN_GEMM_NC</c> override both (rounded to whole tiles); they are read
/// once, when the GEMM is first used.</para>
/// </remarks>
internal static class GemmBlockSizes
{
    private const int MR = 12, NR = 32;

    /// <summary>Whether the inner loops keep an A panel in L1 and stream B's panels (Intel Rapids), rather than the reverse.</summary>
    public static readonly bool APanelResident = CpuCaches.Class == CpuClass.IntelRapids && CpuCaches.L2 > 0;

    public static readonly int MC512 = Override("CNN_GEMM_MC", MR) ?? 192;

    public static readonly int NC512 = Override("CNN_GEMM_NC", NR) ?? ChooseNc();

    private static int ChooseNc()
    {
        if (!APanelResident) return 4096;
        long columns = CpuCaches.L2 / 2 / (GemmDepth.MaxBlock * sizeof(float));
        return (int)Math.Clamp(columns / NR * NR, 256, 4096);
    }

    private static int? Override(string variable, int multiple)
    {
        var text = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(text) || !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < multiple) return null;
        return v / multiple * multiple;
    }
}
