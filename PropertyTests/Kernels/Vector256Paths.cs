using Cnn.Core.Kernels;

namespace Cnn.Tests.Kernels;

/// <summary>
/// Runs a check on the AVX2 paths of the kernels that have an AVX-512 one too (<see cref="KernelWidth.ForceVector256"/>), so
/// that a machine with AVX-512 checks both. The switch is global: the classes that set it are in the worker-count
/// collection (<see cref="WorkerCountCollection"/>), which xunit runs one test at a time. A test that runs meanwhile in
/// another class may take the AVX2 path too, which gives the same bits.
/// </summary>
internal static class Vector256Paths
{
    /// <summary>Whether the CPU runs the AVX2 paths at all (AVX2 and FMA); without them the check has nothing to run on.</summary>
    public static bool Supported => KernelWidth.Narrow;

    /// <summary>Runs <paramref name="check"/> with the AVX2 paths forced, then restores the switch.</summary>
    public static T With<T>(Func<T> check)
    {
        bool saved = KernelWidth.ForceVector256;
        KernelWidth.ForceVector256 = true;
        try { return check(); }
        finally { KernelWidth.ForceVector256 = saved; }
    }
}
