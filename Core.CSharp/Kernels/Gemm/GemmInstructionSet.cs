namespace Cnn.Core.Kernels;

/// <summary>The micro-kernel <see cref="Gemm"/> runs on.</summary>
public enum GemmInstructionSet
{
    /// <summary>The widest the CPU supports: Vector512 with AVX-512, else Vector256 with FMA, else scalar.</summary>
    Auto,

    /// <summary>A 12x32 register tile of 512-bit FMAs; needs AVX-512F.</summary>
    Vector512,

    /// <summary>A 6x16 register tile of 256-bit FMAs; needs AVX2-class Vector256 acceleration and FMA.</summary>
    Vector256,

    /// <summary>Portable scalar code, always available.</summary>
    Scalar,
}
