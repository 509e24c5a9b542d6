using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// Which vectors the inference kernels with an AVX-512 path and an AVX2 one (<see cref="BlockedConv"/> and the blocked
/// layers, <see cref="Pool2x2{TOp}"/>) run on. Both give the same bits; the switch lets tests take the AVX2 path on a
/// machine with AVX-512.
/// </summary>
internal static class KernelWidth
{
    /// <summary>Makes a CPU with AVX-512 run the AVX2 paths (tests; set it only inside the worker-count test collection).</summary>
    internal static bool ForceVector256 { get; set; }

    /// <summary>Whether the kernels run on zmm: AVX-512 and not <see cref="ForceVector256"/>.</summary>
    public static bool Wide => Avx512F.IsSupported && Vector512.IsHardwareAccelerated && !ForceVector256;

    /// <summary>Whether the CPU runs the AVX2 paths: 256-bit vectors, AVX2 and FMA.</summary>
    public static bool Narrow => Avx2.IsSupported && Fma.IsSupported && Vector256.IsHardwareAccelerated;
}
