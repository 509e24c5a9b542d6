namespace Cnn.Core.Kernels;

/// <summary>
/// Element-wise passes split across the kernels' workers: a training step's activations (ReLU and its pullback, residual
/// sums: one core alone walked megabytes while the other waited, 4 MB a pass in resnet-mini's first block) and the
/// optimizers' updates (a network's big dense matrix is most of its parameters, and a serial update was a tenth of a
/// training step on two threads). Every element's result depends on that element alone, so the bits do not depend on
/// where the ranges fall.
/// </summary>
internal static class Elementwise
{
    /// <summary>Below this many elements a pass stays on the calling thread: handing out chunks would cost more than it saves.</summary>
    internal const int ParallelLength = 1 << 15;

    /// <summary>The elements of one call of the body: 16 KB, so that a pass made of two operations finds its block in L1.</summary>
    private const int BlockLength = 4096;

    /// <summary>Runs <paramref name="body"/>(start, end) over <c>[0, length)</c> in blocks, on the workers when the length is large.</summary>
    public static void For(int length, Action<int, int> body)
    {
        if (length < ParallelLength)
        {
            body(0, length);
            return;
        }
        int blocks = (length + BlockLength - 1) / BlockLength;
        BatchParallel.For(blocks, (_, first, end) =>
        {
            for (int b = first; b < end; b++) body(b * BlockLength, Math.Min(length, (b + 1) * BlockLength));
        });
    }
}
