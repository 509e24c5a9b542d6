namespace Cnn.Core.Kernels;

/// <summary>
/// Splits one product across the caller and parked pool workers, once per call, along M or N (never K,
/// so no element's sum is divided between threads). Products under <see cref="MinParallelFlops"/> run on
/// the calling thread. A worker another caller holds is not waited for: the call just uses fewer threads,
/// so concurrent callers (e.g. convolution parallel over the batch) neither deadlock nor oversubscribe.
/// </summary>
internal static class GemmParallel
{
    /// <summary>Below this, waking a worker and packing twice cost more than half the product saves.</summary>
    private const long MinParallelFlops = 3_000_000;

    private static readonly GemmWorker?[] s_workers = new GemmWorker?[Math.Max(0, Environment.ProcessorCount - 1)];
    private static readonly object s_create = new();
    private static int s_active;

    public static unsafe void Run(in GemmJob job, int threads)
    {
        int active = Interlocked.Increment(ref s_active);
        try
        {
            // Cores other in-flight calls are not already using.
            int budget = Math.Min(threads, Environment.ProcessorCount - (active - 1));
            long flops = 2L * job.M * job.N * job.K;
            if (budget < 2 || flops < MinParallelFlops)
            {
                RunRange(job, 0, job.M, 0, job.N);
                return;
            }
            var (mGrain, nGrain) = Grains(job.Isa);
            int gm = CeilDiv(job.M, mGrain), gn = CeilDiv(job.N, nGrain);
            // Splitting N makes every thread pack all of A (m x k), splitting M all of B (k x n): duplicate the smaller.
            bool alongN = job.M <= job.N ? gn >= 2 || gm < 2 : gm < 2;
            int granules = alongN ? gn : gm, grain = alongN ? nGrain : mGrain;
            int wanted = Math.Min(budget, granules) - 1;
            if (wanted < 1)
            {
                RunRange(job, 0, job.M, 0, job.N);
                return;
            }

            Span<int> claimed = stackalloc int[wanted];
            int helpers = 0;
            for (int w = 0; w < s_workers.Length && helpers < wanted; w++)
                if (Worker(w).TryClaim()) claimed[helpers++] = w;

            int parts = helpers + 1, extent = alongN ? job.N : job.M;
            try
            {
                for (int p = 1; p < parts; p++)
                {
                    var (lo, hi) = Part(p, parts, granules, grain, extent);
                    if (alongN) Worker(claimed[p - 1]).Post(job, 0, job.M, lo, hi);
                    else Worker(claimed[p - 1]).Post(job, lo, hi, 0, job.N);
                }
                var (lo0, hi0) = Part(0, parts, granules, grain, extent);
                if (alongN) RunRange(job, 0, job.M, lo0, hi0);
                else RunRange(job, lo0, hi0, 0, job.N);
            }
            finally
            {
                for (int p = 1; p < parts; p++) Worker(claimed[p - 1]).Join();
            }
        }
        finally
        {
            Interlocked.Decrement(ref s_active);
        }
    }

    /// <summary>Computes rows [m0, m1) x columns [n0, n1) of C on the calling thread with the job's kernel.</summary>
    public static void RunRange(in GemmJob job, int m0, int m1, int n0, int n1)
    {
        switch (job.Isa)
        {
            case GemmInstructionSet.Vector512: GemmDriver<GemmKernel512>.Run(job, m0, m1, n0, n1); break;
            case GemmInstructionSet.Vector256: GemmDriver<GemmKernel256>.Run(job, m0, m1, n0, n1); break;
            default: GemmDriver<GemmKernelScalar>.Run(job, m0, m1, n0, n1); break;
        }
    }

    private static (int M, int N) Grains(GemmInstructionSet isa) => isa switch
    {
        GemmInstructionSet.Vector512 => (GemmKernel512.MGrain, GemmKernel512.NGrain),
        GemmInstructionSet.Vector256 => (GemmKernel256.MGrain, GemmKernel256.NGrain),
        _ => (GemmKernelScalar.MGrain, GemmKernelScalar.NGrain),
    };

    private static (int Lo, int Hi) Part(int p, int parts, int granules, int grain, int extent) =>
        ((int)((long)granules * p / parts) * grain, Math.Min(extent, (int)((long)granules * (p + 1) / parts) * grain));

    private static GemmWorker Worker(int index)
    {
        var worker = Volatile.Read(ref s_workers[index]);
        if (worker is not null) return worker;
        lock (s_create) return s_workers[index] ??= new GemmWorker(index + 1);
    }

    private static int CeilDiv(int x, int y) => (x + y - 1) / y;
}
