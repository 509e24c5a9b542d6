using System.Globalization;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>The microarchitecture classes whose GEMM blocking was chosen by measurement.</summary>
public enum CpuClass
{
    /// <summary>Anything else: the blocking measured first (on AMD Zen 5).</summary>
    Other,
    /// <summary>AMD Zen 4 (family 19h, models 10h-1Fh, 60h-7Fh, A0h-AFh) and Zen 5 (family 1Ah): 1 MB L2 per core.</summary>
    AmdZen4Or5,
    /// <summary>Intel Sapphire Rapids, Emerald Rapids and Granite Rapids Xeons (family 6, models 8Fh, CFh, ADh, AEh): 2 MB L2 per core.</summary>
    IntelRapids,
    /// <summary>AMD Zen 3 (family 19h, models 00h-0Fh and 20h-5Fh): AVX2 and FMA without AVX-512, 512 KB L2 per core.</summary>
    AmdZen3,
}

/// <summary>
/// The calling machine's per-core data caches and microarchitecture class, read once: cache sizes from
/// <c>/sys/devices/system/cpu/cpu0/cache</c>, else from CPUID's deterministic cache parameters (leaf 4 on Intel, 8000001Dh
/// on AMD); vendor, family and model from CPUID.
/// </summary>
public static class CpuCaches
{
    private static readonly Lazy<(long L1, long L2, CpuClass Class)> Info = new(Read);

    /// <summary>Bytes of level-1 data cache per core (0 when unknown).</summary>
    public static long L1Data => Info.Value.L1;

    /// <summary>Bytes of level-2 cache per core (0 when unknown).</summary>
    public static long L2 => Info.Value.L2;

    /// <summary>The microarchitecture class the GEMM's blocking is chosen for.</summary>
    public static CpuClass Class => Info.Value.Class;

    private static (long, long, CpuClass) Read()
    {
        var (l1, l2) = FromSysfs();
        if (l1 == 0 || l2 == 0)
        {
            var (c1, c2) = FromCpuid();
            l1 = l1 == 0 ? c1 : l1;
            l2 = l2 == 0 ? c2 : l2;
        }
        return (l1, l2, Classify());
    }

    private static (long L1, long L2) FromSysfs()
    {
        long l1 = 0, l2 = 0;
        const string root = "/sys/devices/system/cpu/cpu0/cache";
        try
        {
            if (!Directory.Exists(root)) return (0, 0);
            foreach (var dir in Directory.GetDirectories(root, "index*"))
            {
                int level = int.Parse(File.ReadAllText(Path.Combine(dir, "level")).Trim(), CultureInfo.InvariantCulture);
                string type = File.ReadAllText(Path.Combine(dir, "type")).Trim();
                string size = File.ReadAllText(Path.Combine(dir, "size")).Trim();
                long unit = size.EndsWith('K') ? 1024 : size.EndsWith('M') ? 1 << 20 : 1;
                long bytes = long.Parse(unit == 1 ? size : size[..^1], CultureInfo.InvariantCulture) * unit;
                if (level == 1 && type == "Data") l1 = bytes;
                if (level == 2 && type != "Instruction") l2 = bytes;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException) { }
        return (l1, l2);
    }

    private static (long L1, long L2) FromCpuid()
    {
        if (!X86Base.IsSupported) return (0, 0);
        long l1 = 0, l2 = 0;
        int leaf = IsAmd() ? unchecked((int)0x8000001D) : 4;
        for (int i = 0; i < 16; i++)
        {
            var (eax, ebx, ecx, _) = X86Base.CpuId(leaf, i);
            int type = eax & 0x1F;
            if (type == 0) break;
            int level = (eax >> 5) & 0x7;
            long bytes = (long)(((ebx >> 22) & 0x3FF) + 1) * (((ebx >> 12) & 0x3FF) + 1) * ((ebx & 0xFFF) + 1) * ((long)(uint)ecx + 1);
            if (level == 1 && type == 1) l1 = bytes;
            if (level == 2 && type != 2) l2 = bytes;
        }
        return (l1, l2);
    }

    private static bool IsAmd()
    {
        var (_, ebx, _, _) = X86Base.CpuId(0, 0);
        return ebx == 0x68747541; // "Auth"
    }

    private static CpuClass Classify()
    {
        if (!X86Base.IsSupported) return CpuClass.Other;
        var (eax, _, _, _) = X86Base.CpuId(1, 0);
        int family = (eax >> 8) & 0xF, model = (eax >> 4) & 0xF;
        if (family == 0xF) family += (eax >> 20) & 0xFF;
        if (family is 6 or >= 0xF) model |= ((eax >> 16) & 0xF) << 4;
        return Classify(IsAmd(), family, model);
    }

    /// <summary>The class of a CPU from its vendor and CPUID's display family and model.</summary>
    internal static CpuClass Classify(bool amd, int family, int model)
    {
        if (amd)
            return family == 0x1A || (family == 0x19 && model is (>= 0x10 and <= 0x1F) or (>= 0x60 and <= 0x7F) or (>= 0xA0 and <= 0xAF))
                ? CpuClass.AmdZen4Or5
                : family == 0x19 ? CpuClass.AmdZen3 : CpuClass.Other;
        return family == 6 && model is 0x8F or 0xCF or 0xAD or 0xAE ? CpuClass.IntelRapids : CpuClass.Other;
    }
}
