namespace Cnn.Core.Kernels;

/// <summary>
/// Single-precision matrix product on contiguous row-major operands:
/// <c>C = op(A) * op(B)</c>, or <c>C += op(A) * op(B)</c> when accumulating.
/// </summary>
/// <remarks>
/// <para>A packed, register-blocked SGEMM (BLIS loop nest; a 12x32 AVX-512, 6x16 AVX2/FMA or 4x4 scalar tile)
/// that splits large products between the caller and a persistent pool worker. Products with at most four rows
/// read B in place instead of packing it. Safe to call from several threads at once; the packing workspace is
/// per thread and reused, so calls allocate nothing in the steady state.</para>
/// <para>Determinism: threads split M or N, never K, so the result is bit-identical run to run and for any
/// <see cref="Threads"/>: it depends only on the operands, the shapes and transposes, and the instruction set.
/// Each element of C is one fused multiply-add chain over k in increasing order, starting from 0 (or from C
/// when accumulating), whatever the blocking, tiling or split, so the instruction sets agree bit for bit too,
/// with one exception: on the vector paths, products with at most four rows and B transposed are dot products
/// whose per-lane partial sums depend on the vector width. Any of these can differ in the last bits from an
/// unfused or differently ordered sum.</para>
/// </remarks>
public static class Gemm
{
    private static int s_threads = Environment.ProcessorCount;

    /// <summary>
    /// The most threads one call uses (the caller plus pool workers), capped at the processor count;
    /// defaults to the processor count. Products of a few MFLOP or less always run on the calling thread.
    /// </summary>
    public static int Threads
    {
        get => s_threads;
        set => s_threads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Gemm.Threads must be at least 1.");
    }

    /// <summary>
    /// Computes <c>C (m x n) = op(A) (m x k) * op(B) (k x n)</c>, adding to C when <paramref name="accumulate"/> is true.
    /// </summary>
    /// <param name="transA">When true, A is stored as k x m and read transposed.</param>
    /// <param name="transB">When true, B is stored as n x k and read transposed.</param>
    /// <param name="m">Rows of C.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">The inner dimension.</param>
    /// <param name="a">A, row-major, m*k elements.</param>
    /// <param name="b">B, row-major, k*n elements.</param>
    /// <param name="c">C, row-major, m*n elements.</param>
    /// <param name="accumulate">Add to C instead of overwriting it.</param>
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, bool accumulate = false) =>
        Multiply(transA, transB, m, n, k, a, b, c, accumulate, default);

    /// <summary>
    /// <see cref="Multiply(bool, bool, int, int, int, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, bool)"/>
    /// with explicit choices of instruction set and thread count, e.g. to test each code path.
    /// </summary>
    /// <param name="transA">When true, A is stored as k x m and read transposed.</param>
    /// <param name="transB">When true, B is stored as n x k and read transposed.</param>
    /// <param name="m">Rows of C.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">The inner dimension.</param>
    /// <param name="a">A, row-major, m*k elements.</param>
    /// <param name="b">B, row-major, k*n elements.</param>
    /// <param name="c">C, row-major, m*n elements.</param>
    /// <param name="accumulate">Add to C instead of overwriting it.</param>
    /// <param name="options">Instruction set and thread count; <c>default</c> chooses automatically.</param>
    public static unsafe void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, bool accumulate, GemmOptions options)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"GEMM sizes must be >= 0; found m={m}, n={n}, k={k}.");
        if (a.Length < (long)m * k || b.Length < (long)k * n || c.Length < (long)m * n)
            throw new ArgumentException($"GEMM operands too small for m={m}, n={n}, k={k}: A {a.Length}, B {b.Length}, C {c.Length}.");
        if (options.Threads < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "GemmOptions.Threads must be >= 0.");
        var isa = Resolve(options.InstructionSet);
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) c[..(m * n)].Clear();
            return;
        }
        fixed (float* pa = a, pb = b, pc = c)
        {
            var job = new GemmJob(pa, pb, pc, m, n, k, transA, transB, accumulate, isa);
            GemmParallel.Run(job, options.Threads > 0 ? options.Threads : s_threads);
        }
    }

    /// <summary>Whether this CPU can run <paramref name="isa"/>.</summary>
    /// <param name="isa">The instruction set to check; <see cref="GemmInstructionSet.Auto"/> and scalar are always supported.</param>
    public static bool IsSupported(GemmInstructionSet isa) => isa switch
    {
        GemmInstructionSet.Vector512 => GemmKernel512.IsSupported,
        GemmInstructionSet.Vector256 => GemmKernel256.IsSupported,
        _ => true,
    };

    internal static GemmInstructionSet Resolve(GemmInstructionSet isa)
    {
        if (isa == GemmInstructionSet.Auto)
            return GemmKernel512.IsSupported ? GemmInstructionSet.Vector512
                : GemmKernel256.IsSupported ? GemmInstructionSet.Vector256
                : GemmInstructionSet.Scalar;
        if (!IsSupported(isa))
            throw new PlatformNotSupportedException($"GEMM instruction set {isa} is not supported on this CPU.");
        return isa;
    }
}
