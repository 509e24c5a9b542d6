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
    public void AnIntelRapidsCoreKeepsAPanelsInL1AndHalfItsL2ForTheBlockOfB()
    {
        if (CpuCaches.Class != CpuClass.IntelRapids || GemmBlocking.Current.InstructionSet != GemmInstructionSet.Vector512
            || Environment.GetEnvironmentVariable("CNN_GEMM_NC") is not null) return;
        Assert.True(GemmBlocking.Current.APanelResident);
        Assert.Equal((int)Math.Clamp(CpuCaches.L2 / 2 / 1024 / 32 * 32, 256, 4096), GemmBlocking.Current.NC);
    }
}
