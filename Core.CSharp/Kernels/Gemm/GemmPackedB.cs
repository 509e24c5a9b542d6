using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Cnn.Core.Kernels;

/// <summary>
/// A fixed right-hand operand op(B) (k x n) packed once into the GEMM's B panels for one micro-kernel, for products
/// <c>C = A op(B)</c> repeated with many A (a dense layer's weights at inference). Each call then skips packing B, which
/// for a dense layer is as much memory traffic as the product's A and C together. Immutable, safe for concurrent calls.
/// </summary>
/// <remarks>
/// The sums are the GEMM's own (same depth blocks, same order, same micro-kernel), so C has the bits of
/// <see cref="Gemm.Multiply(bool, bool, int, int, int, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, bool)"/> for
/// every product with more than <see cref="GemmParallel.SmallRows"/> rows; smaller ones are computed by that call itself
/// (its small-product kernels read B in place), so they have its bits too.
/// </remarks>
internal sealed unsafe class GemmPackedB
{
    private readonly float[] _b, _storage;
    private readonly nint _offset;
    private readonly bool _transB;

    /// <param name="b">op(B)'s storage: n x k when <paramref name="transB"/>, else k x n (kept for small products).</param>
    /// <param name="transB">Whether B is stored transposed.</param>
    /// <param name="k">Rows of op(B).</param>
    /// <param name="n">Columns of op(B).</param>
    /// <param name="isa">The micro-kernel to pack for (resolved).</param>
    public GemmPackedB(float[] b, bool transB, int k, int n, GemmInstructionSet isa)
    {
        _b = b;
        _transB = transB;
        K = k;
        N = n;
        Isa = Gemm.Resolve(isa);
        long length = Isa switch
        {
            GemmInstructionSet.Vector512 => GemmDriver<GemmKernel512>.PackedLength(k, n),
            GemmInstructionSet.Vector256 => GemmDriver<GemmKernel256>.PackedLength(k, n),
            _ => GemmDriver<GemmKernelScalar>.PackedLength(k, n),
        };
        // Pinned (the pinned heap never moves it) and 64-byte aligned, as the per-call packing buffers are.
        _storage = GC.AllocateUninitializedArray<float>(checked((int)length + 16), pinned: true);
        nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_storage));
        _offset = (((start + 63) & ~(nint)63) - start) / sizeof(float);
        fixed (float* pb = b)
        {
            var job = new GemmJob(null, pb, null, 0, n, k, false, transB, false, Isa);
            float* dst = Packed;
            switch (Isa)
            {
                case GemmInstructionSet.Vector512: GemmDriver<GemmKernel512>.PackWhole(job, dst); break;
                case GemmInstructionSet.Vector256: GemmDriver<GemmKernel256>.PackWhole(job, dst); break;
                default: GemmDriver<GemmKernelScalar>.PackWhole(job, dst); break;
            }
        }
    }

    /// <summary>Rows of op(B), the products' depth.</summary>
    public int K { get; }

    /// <summary>Columns of op(B) and of C.</summary>
    public int N { get; }

    /// <summary>The micro-kernel the panels are packed for.</summary>
    public GemmInstructionSet Isa { get; }

    private float* Packed => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_storage)) + _offset;

    /// <summary><c>C (m x n) = A (m x k, row-major) op(B)</c>, split between threads as the GEMM splits it.</summary>
    /// <param name="m">Rows of A and C.</param>
    /// <param name="a">A.</param>
    /// <param name="c">C, overwritten.</param>
    /// <param name="threads">The most threads to use; 0 for <see cref="Gemm.Threads"/>.</param>
    public void Multiply(int m, ReadOnlySpan<float> a, Span<float> c, int threads = 0)
    {
        if (threads <= 0) threads = Gemm.Threads;
        if (a.Length < (long)m * K || c.Length < (long)m * N)
            throw new ArgumentException($"Packed GEMM operands too small for m={m}, n={N}, k={K}: A {a.Length}, C {c.Length}.");
        if (m <= GemmParallel.SmallRows || K == 0 || N == 0)
        {
            Gemm.Multiply(false, _transB, m, N, K, a, _b, c, false, new GemmOptions { InstructionSet = Isa, Threads = threads });
            return;
        }
        fixed (float* pa = a, pc = c)
            GemmParallel.Run(new GemmJob(pa, null, pc, m, N, K, false, _transB, false, Isa, Packed), threads);
    }
}
