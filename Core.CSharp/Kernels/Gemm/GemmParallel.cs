using System.Runtime.ExceptionServices;
using System.Runtime.Intrinsics;

namespace Cnn.Core.Kernels;

/// <summary>
/// Splits one product across the caller and parked pool workers, once per call, along M or N (never K,
/// so no element's sum is divided between threads). Products under <see cref="MinParallelFlops"/> run on
/// the calling thread. A worker another caller holds is not waited for: the call just uses fewer threads,
/// so concurrent callers (e.g. convolution parallel over the batch) neither deadlock nor oversubscribe.
/// A part a worker has not started by the time the caller finishes its own is taken back and computed by
/// the caller, so a worker slow to wake (or whose core is busy) costs little more than running single-threaded.
/// </summary>
internal static class GemmParallel
{
    /// <summary>
    /// Below this, halving the product saves a microsecond or less, not worth waking a core (measured: with the
    /// worker spinning, a 1.6 MFLOP product ran 1.8x faster on two threads; 0.5 MFLOP ones about 1 µs faster).
    /// </summary>
    private const long MinParallelFlops = 1_500_000;

    /// <summary>Products with at most this many rows read B in place on the vector paths (<see cref="GemmSmallM{TOps, TV}"/>).</summary>
    public const int SmallRows = 4;

    /// <summary>One reusable item per pool worker: a claimed worker's item belongs to its claimer, so posting allocates nothing.</summary>
    private static readonly GemmRange[] s_ranges = Enumerable.Range(0, WorkerPool.Count).Select(_ => new GemmRange()).ToArray();

    public static void Run(in GemmJob job, int threads)
    {
        // Read on every path, so the first product made (not the first one that finds a worker free) makes the items.
        var ranges = s_ranges;
        // Only the cores other in-flight calls (products, batch-parallel loops) are not already using.
        int budget = WorkerPool.Enter(threads);
        try
        {
            if (budget < 2 || 2L * job.M * job.N * job.K < MinParallelFlops)
            {
                RunRange(job, 0, job.M, 0, job.N);
                return;
            }
            var split = Split.Plan(job);
            int wanted = Math.Min(budget, split.Granules) - 1;
            if (wanted < 1)
            {
                RunRange(job, 0, job.M, 0, job.N);
                return;
            }
            Span<int> claimed = stackalloc int[wanted];
            int helpers = WorkerPool.Claim(claimed);
            int parts = helpers + 1;

            for (int p = 1; p < parts; p++)
            {
                var range = ranges[claimed[p - 1]];
                range.Job = job;
                (range.M0, range.M1, range.N0, range.N1) = split.Bounds(job, p, parts);
                WorkerPool.Worker(claimed[p - 1]).Post(range);
            }
            Exception? error = null;
            try { RunPart(job, split, 0, parts); }
            catch (Exception e) { error = e; }

            // Every worker is done with the job (or never started it) before anything else can throw,
            // since the job points into memory that is pinned only until this call returns.
            Span<bool> retracted = stackalloc bool[helpers];
            for (int p = 1; p < parts; p++)
            {
                var worker = WorkerPool.Worker(claimed[p - 1]);
                retracted[p - 1] = worker.Retract(out var workerError);
                worker.Release();
                error ??= workerError;
            }
            if (error is not null) ExceptionDispatchInfo.Capture(error).Throw();
            for (int p = 1; p < parts; p++)
                if (retracted[p - 1]) RunPart(job, split, p, parts);
        }
        finally
        {
            WorkerPool.Exit();
        }
    }

    /// <summary>Computes rows [m0, m1) x columns [n0, n1) of C on the calling thread with the job's kernel.</summary>
    public static void RunRange(in GemmJob job, int m0, int m1, int n0, int n1)
    {
        if (job.M <= SmallRows && job.Isa != GemmInstructionSet.Scalar && !job.HasPackedB)
        {
            // Split plans never divide M this small, so [m0, m1) is all of it.
            if (job.Isa == GemmInstructionSet.Vector512) GemmSmallM<VectorOps512, Vector512<float>>.Run(job, n0, n1);
            else GemmSmallM<VectorOps256, Vector256<float>>.Run(job, n0, n1);
            return;
        }
        switch (job.Isa)
        {
            case GemmInstructionSet.Vector512: GemmDriver<GemmKernel512>.Run(job, m0, m1, n0, n1); break;
            case GemmInstructionSet.Vector256: GemmDriver<GemmKernel256>.Run(job, m0, m1, n0, n1); break;
            default: GemmDriver<GemmKernelScalar>.Run(job, m0, m1, n0, n1); break;
        }
    }

    private static void RunPart(in GemmJob job, Split split, int p, int parts)
    {
        var (m0, m1, n0, n1) = split.Bounds(job, p, parts);
        RunRange(job, m0, m1, n0, n1);
    }

    /// <summary>A rectangle of one product, as a pool worker's item.</summary>
    private sealed class GemmRange : WorkItem
    {
        public GemmJob Job;
        public int M0, M1, N0, N1;

        public override void Run() => RunRange(Job, M0, M1, N0, N1);
    }

    /// <summary>Which dimension is divided, in whole granules of the kernel so no part adds padding waste.</summary>
    private readonly record struct Split(bool AlongN, int Granules, int Grain)
    {
        public static Split Plan(in GemmJob job)
        {
            var (mGrain, nGrain) = job.Isa switch
            {
                GemmInstructionSet.Vector512 => (GemmKernel512.MGrain, GemmKernel512.NGrain),
                GemmInstructionSet.Vector256 => (GemmKernel256.MGrain, GemmKernel256.NGrain),
                _ => (GemmKernelScalar.MGrain, GemmKernelScalar.NGrain),
            };
            // B packed beforehand is indexed by whole panels: a part must start on one.
            if (job.HasPackedB)
                nGrain = job.Isa switch { GemmInstructionSet.Vector512 => GemmKernel512.NR, GemmInstructionSet.Vector256 => GemmKernel256.NR, _ => GemmKernelScalar.NR };
            int gm = (job.M + mGrain - 1) / mGrain, gn = (job.N + nGrain - 1) / nGrain;
            // Splitting N makes every thread pack all of A (m x k), splitting M all of B (k x n): duplicate the smaller.
            bool alongN = job.M <= SmallRows || (job.M <= job.N ? gn >= 2 || gm < 2 : gm < 2);
            return alongN ? new Split(true, gn, nGrain) : new Split(false, gm, mGrain);
        }

        public (int M0, int M1, int N0, int N1) Bounds(in GemmJob job, int p, int parts)
        {
            int extent = AlongN ? job.N : job.M;
            int lo = (int)((long)Granules * p / parts) * Grain;
            int hi = Math.Min(extent, (int)((long)Granules * (p + 1) / parts) * Grain);
            return AlongN ? (0, job.M, lo, hi) : (lo, hi, 0, job.N);
        }
    }
}
