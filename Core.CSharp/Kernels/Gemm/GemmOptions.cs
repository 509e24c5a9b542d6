namespace Cnn.Core.Kernels;

/// <summary>Per-call overrides for <see cref="Gemm"/>; <c>default</c> means automatic choices.</summary>
public readonly record struct GemmOptions
{
    /// <summary>The micro-kernel to use; forcing one the CPU lacks throws <see cref="PlatformNotSupportedException"/>.</summary>
    public GemmInstructionSet InstructionSet { get; init; }

    /// <summary>
    /// The most threads (the caller plus pool workers) this call may use; 0 means <see cref="Gemm.Threads"/>.
    /// Capped at the processor count.
    /// </summary>
    public int Threads { get; init; }
}
