namespace Cnn.Core.Kernels;

/// <summary>
/// One product's operands as raw pointers, so the job can be handed to a pool worker (spans cannot be stored).
/// The caller keeps the operands pinned until every worker it posted to has finished.
/// </summary>
internal readonly unsafe struct GemmJob(
    float* a, float* b, float* c, int m, int n, int k, bool transA, bool transB, bool accumulate, GemmInstructionSet isa, float* packedB = null)
{
    public readonly float* A = a, B = b, C = c;

    /// <summary>
    /// B already packed for the job's kernel (<see cref="GemmPackedB"/>), or null to pack it per call. Set only on products
    /// with more than <see cref="GemmParallel.SmallRows"/> rows (the small-product kernels read B in place).
    /// </summary>
    public readonly float* PackedB = packedB;

    /// <summary>Whether <see cref="PackedB"/> is set.</summary>
    public bool HasPackedB => PackedB != null;
    public readonly int M = m, N = n, K = k;
    public readonly bool TransA = transA, TransB = transB, Accumulate = accumulate;

    /// <summary>Resolved: never <see cref="GemmInstructionSet.Auto"/>.</summary>
    public readonly GemmInstructionSet Isa = isa;
}
