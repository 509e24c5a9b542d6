namespace Cnn.Core.Kernels;

/// <summary>
/// One product's operands as raw pointers, so the job can be handed to a pool worker (spans cannot be stored).
/// The caller keeps the operands pinned until every worker it posted to has finished.
/// </summary>
internal readonly unsafe struct GemmJob(
    float* a, float* b, float* c, int m, int n, int k, bool transA, bool transB, bool accumulate, GemmInstructionSet isa)
{
    public readonly float* A = a, B = b, C = c;
    public readonly int M = m, N = n, K = k;
    public readonly bool TransA = transA, TransB = transB, Accumulate = accumulate;

    /// <summary>Resolved: never <see cref="GemmInstructionSet.Auto"/>.</summary>
    public readonly GemmInstructionSet Isa = isa;
}
