using System.Diagnostics;

namespace Cnn.Cli.Bench;

/// <summary>How long and how often one comparison runs.</summary>
/// <param name="WarmupSeconds">Calls of each side before any is timed (at least three), for the JIT (whose first tier is
/// several times slower in vector code), caches and pools.</param>
/// <param name="BlockSeconds">Consecutive calls of one side per block: sides alternate in blocks, not call by call, and
/// each block starts after an untimed pause, so one side's spinning worker threads (OpenMP's, ONNX Runtime's, the GEMM's)
/// have gone idle before the other side runs.</param>
/// <param name="BudgetSeconds">Timed seconds per comparison once every side has <paramref name="MinSamples"/> samples.</param>
/// <param name="MinSamples">Timed calls of each side at least.</param>
/// <param name="MaxSamples">Timed calls of each side at most.</param>
internal sealed record MeasureSettings(double WarmupSeconds, double BlockSeconds, double BudgetSeconds, int MinSamples, int MaxSamples)
{
    public static MeasureSettings Full { get; } = new(0.25, 0.05, 1.0, 5, 400);

    public static MeasureSettings Quick { get; } = new(0.1, 0.03, 0.25, 3, 100);
}

/// <summary>
/// One implementation of a piece of work: a name, a call that does the work once, and what to set before a block of calls
/// (such as a thread count), not timed.
/// </summary>
internal sealed record Side(string Name, Action Call, Action? Enter = null);

/// <summary>The timings of one side: the median and the spread of the timed calls, and managed bytes allocated per call.</summary>
internal sealed record Timing(string Side, double MedianMs, double MinMs, double P90Ms, int Samples, long AllocatedBytes);

/// <summary>
/// Times several implementations of the same work in one process: warm-up, then alternating blocks of calls until each has
/// enough samples; each call is timed on its own and the median reported, which a loaded machine moves less than the mean.
/// Allocation is measured in separate calls: <see cref="GC.GetTotalAllocatedBytes(bool)"/> (precise, all threads, since the
/// kernels run on pool threads) before and after each, the median over the calls.
/// </summary>
internal static class Measure
{
    /// <summary>The untimed pause before each block of a side, so the previous side's spinning threads have gone to sleep.</summary>
    private const int SwitchPauseMs = 25;

    public static IReadOnlyList<Timing> Compare(MeasureSettings settings, IReadOnlyList<Side> sides)
    {
        var estimate = new double[sides.Count];
        for (int s = 0; s < sides.Count; s++)
        {
            sides[s].Enter?.Invoke();
            estimate[s] = Warm(sides[s].Call, settings.WarmupSeconds);
        }
        var allocated = new long[sides.Count];
        for (int s = 0; s < sides.Count; s++)
        {
            sides[s].Enter?.Invoke();
            allocated[s] = Allocation(sides[s].Call, estimate[s]);
        }

        var samples = sides.Select(_ => new List<double>()).ToArray();
        var clock = Stopwatch.StartNew();
        var paused = TimeSpan.Zero;
        while (true)
        {
            for (int s = 0; s < sides.Count; s++)
            {
                int block = (int)Math.Clamp(settings.BlockSeconds * 1000 / Math.Max(estimate[s], 1e-3), 1, 1000);
                block = Math.Min(block, settings.MaxSamples - samples[s].Count);
                if (block > 0)
                {
                    // Another side's threads may still be spinning from its last call (LibTorch's OpenMP, libgomp, spins for
                    // its GOMP_SPINCOUNT before it sleeps; ONNX Runtime's pool spins too): a pause, not timed, lets them
                    // sleep, so a block of one long call does not share its cores with them.
                    if (sides.Count > 1)
                    {
                        long p0 = Stopwatch.GetTimestamp();
                        Thread.Sleep(SwitchPauseMs);
                        paused += Stopwatch.GetElapsedTime(p0);
                    }
                    sides[s].Enter?.Invoke();
                }
                for (int i = 0; i < block; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    sides[s].Call();
                    samples[s].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
            }
            bool enough = samples.All(x => x.Count >= settings.MinSamples);
            bool full = samples.All(x => x.Count >= settings.MaxSamples);
            if (full || (enough && (clock.Elapsed - paused).TotalSeconds >= settings.BudgetSeconds)) break;
        }
        return sides.Select((side, s) =>
        {
            var sorted = samples[s].Order().ToArray();
            return new Timing(side.Name, Quantile(sorted, 0.5), sorted[0], Quantile(sorted, 0.9), sorted.Length, allocated[s]);
        }).ToList();
    }

    /// <summary>Runs the call at least three times and for at least the given time; returns the last call's time in ms.</summary>
    private static double Warm(Action call, double seconds)
    {
        var clock = Stopwatch.StartNew();
        double last = 0;
        for (int i = 0; i < 3 || clock.Elapsed.TotalSeconds < seconds; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            call();
            last = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (i >= 2 && last > 1000 * seconds) break;
        }
        return last;
    }

    /// <summary>
    /// Managed bytes allocated per call in the steady state: the median over at least five calls measured one by one, so a
    /// one-off (a pool thread's first use of its GEMM packing buffer, a workspace pool growing) does not count.
    /// </summary>
    private static long Allocation(Action call, double estimateMs)
    {
        int calls = (int)Math.Clamp(100 / Math.Max(estimateMs, 1e-3), 5, 50);
        var bytes = new long[calls];
        for (int i = 0; i < calls; i++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            call();
            bytes[i] = GC.GetTotalAllocatedBytes(precise: true) - before;
        }
        Array.Sort(bytes);
        return bytes[calls / 2];
    }

    private static double Quantile(double[] sorted, double q)
    {
        if (sorted.Length == 1) return sorted[0];
        double pos = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }
}
