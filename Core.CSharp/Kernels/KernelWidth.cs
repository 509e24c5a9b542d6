using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// Which vectors the kernels with an AVX-512 path and an AVX2 one run on: the blocked inference layers
/// (<see cref="BlockedConv"/>, <see cref="Pool2x2{TOp}"/>, max pooling), average pooling's 2x2 backward spread, the column
/// packer and the kernels that ask <see cref="ColumnPacker.Vectorized"/>, the direct convolutions
/// (<see cref="DirectConv.Lanes"/>) and batch norm's sums.
/// <see cref="ForceVector256"/> makes a machine with AVX-512 take the paths of a CPU with AVX2 alone (AMD Zen 3), so that
/// the tests run both there.
/// </summary>
internal static class KernelWidth
{
    /// <summary>
    /// Makes a CPU with AVX-512 run the AVX2 paths (tests; set it only inside the worker-count test collection, which runs
    /// alone: the direct weight gradient's bits follow the vector width).
    /// </summary>
    internal static bool ForceVector256 { get; set; }

    /// <summary>Whether the kernels run on zmm: AVX-512 and not <see cref="ForceVector256"/>.</summary>
    public static bool Wide => Avx512F.IsSupported && Vector512.IsHardwareAccelerated && !ForceVector256;

    /// <summary>Whether the CPU runs the AVX2 paths: 256-bit vectors, AVX2 and FMA.</summary>
    public static bool Narrow => Avx2.IsSupported && Fma.IsSupported && Vector256.IsHardwareAccelerated;
}
