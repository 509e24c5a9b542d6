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

    /// <summary>CPUID's family and model of known parts (AMD's and Intel's published tables) to the class the blocking follows.</summary>
    [Theory]
    [InlineData(true, 0x19, 0x01, CpuClass.AmdZen3)]     // EPYC 7003 (Milan)
    [InlineData(true, 0x19, 0x21, CpuClass.AmdZen3)]     // Ryzen 5000 (Vermeer)
    [InlineData(true, 0x19, 0x50, CpuClass.AmdZen3)]     // Ryzen 5000 APU (Cezanne)
    [InlineData(true, 0x19, 0x11, CpuClass.AmdZen4Or5)]  // EPYC 9004 (Genoa)
    [InlineData(true, 0x19, 0x61, CpuClass.AmdZen4Or5)]  // Ryzen 7000 (Raphael)
    [InlineData(true, 0x19, 0xA0, CpuClass.AmdZen4Or5)]  // EPYC 97x4 (Bergamo)
    [InlineData(true, 0x1A, 0x02, CpuClass.AmdZen4Or5)]  // EPYC 9005 (Turin)
    [InlineData(true, 0x17, 0x31, CpuClass.Other)]       // EPYC 7002 (Rome, Zen 2)
    [InlineData(false, 6, 0x8F, CpuClass.IntelRapids)]   // Sapphire Rapids
    [InlineData(false, 6, 0xCF, CpuClass.IntelRapids)]   // Emerald Rapids
    [InlineData(false, 6, 0xAD, CpuClass.IntelRapids)]   // Granite Rapids
    [InlineData(false, 6, 0x55, CpuClass.Other)]         // Skylake-SP / Cascade Lake
    public void CpusAreClassifiedByFamilyAndModel(bool amd, int family, int model, CpuClass expected) =>
        Assert.Equal(expected, CpuCaches.Classify(amd, family, model));
}
