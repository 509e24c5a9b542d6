namespace Cnn.Core.Kernels;

/// <summary>
/// Splits a batch into one contiguous chunk per worker. The split depends only on the batch size and the
/// worker count, so per-worker partial sums, added in worker order, give bitwise-identical results run to run.
/// </summary>
public static class BatchParallel
{
    /// <summary>The number of workers kernels use; defaults to the processor count.</summary>
    public static int Workers { get; set; } = Environment.ProcessorCount;

    /// <summary>The number of chunks a batch of <paramref name="n"/> items is split into.</summary>
    public static int Chunks(int n) => Math.Max(1, Math.Min(Workers, n));

    /// <summary>Runs <paramref name="body"/>(chunk, start, end) for each chunk, in parallel when there is more than one.</summary>
    public static void For(int n, Action<int, int, int> body)
    {
        int p = Chunks(n);
        if (p == 1) { body(0, 0, n); return; }
        Parallel.For(0, p, new ParallelOptions { MaxDegreeOfParallelism = p }, i => body(i, (int)((long)i * n / p), (int)((long)(i + 1) * n / p)));
    }
}
