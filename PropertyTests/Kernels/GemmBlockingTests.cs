using Cnn.Core.Kernels;
using Xunit;

namespace Cnn.Tests.Kernels;

public class GemmBlockingTests
{
    [Fact]
    public void TheBlockingIsInWholeTilesAndKeepsTheDepthBlockOfEveryCpu()
    {
        foreach (var isa in new[] { GemmInstructionSet.Auto, GemmInstructionSet.Vector256, GemmInstructionSet.Scalar })
        {
            if (!Gemm.IsSupported(isa)) continue;
            var b = GemmBlocking.For(isa);
            Assert.True(b.MC >= b.MR && b.MC % b.MR == 0, $"{b}");
            Assert.True(b.NC >= b.NR && b.NC % b.NR == 0, $"{b}");
            // The depth block fixes the order of every sum: it must not follow the CPU.
            Assert.Equal(256, b.KC);
        }
    }

    [Fact]
    public void CachesAreReadOnLinux()
    {
        if (!OperatingSystem.IsLinux() || !Directory.Exists("/sys/devices/system/cpu/cpu0/cache")) return;
        Assert.InRange(CpuCaches.L1Data, 16 * 1024, 1 << 20);
        Assert.InRange(CpuCaches.L2, 256 * 1024, 64 << 20);
    }

    [Fact]
    public void AnIntelRapidsCoreGivesAsQuarterOfItsL2ToThePackedRowsOfA()
    {
        if (CpuCaches.Class != CpuClass.IntelRapids || GemmBlocking.Current.InstructionSet != GemmInstructionSet.Vector512
            || Environment.GetEnvironmentVariable("CNN_GEMM_MC") is not null) return;
        Assert.Equal((int)Math.Clamp(CpuCaches.L2 / 4 / 1024 / 12 * 12, 192, 1020), GemmBlocking.Current.MC);
    }
}
