using System.Diagnostics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// A persistent thread that computes one rectangle of a product while the caller computes the rest.
/// Posting costs about a microsecond while the worker spins; after <see cref="SpinTime"/> idle it blocks,
/// so it does not hold one of the cores between training steps. Protocol for a caller: win
/// <see cref="TryClaim"/>, <see cref="Post"/>, compute its own part, then always <see cref="Retract"/> and
/// <see cref="Release"/>, even on error, because the job holds pointers into memory the caller has pinned.
/// </summary>
internal sealed class GemmWorker
{
    private static readonly long SpinTime = Stopwatch.Frequency / 20_000; // 50 µs

    private readonly object _gate = new();
    private int _claimed, _pending, _sleeping, _done;
    private GemmJob _job;
    private int _m0, _m1, _n0, _n1;
    private Exception? _error;

    public GemmWorker(int index)
    {
        var thread = new Thread(Loop) { IsBackground = true, Name = $"Gemm worker {index}" };
        thread.Start();
    }

    public bool TryClaim() => Interlocked.CompareExchange(ref _claimed, 1, 0) == 0;

    public void Post(in GemmJob job, int m0, int m1, int n0, int n1)
    {
        _job = job;
        (_m0, _m1, _n0, _n1) = (m0, m1, n0, n1);
        _error = null;
        _done = 0;
        // Full fences on both sides (here and where the worker announces sleep): one of the two
        // always sees the other's write, so a job is never posted to a worker that sleeps through it.
        Interlocked.Exchange(ref _pending, 1);
        if (Volatile.Read(ref _sleeping) == 1)
            lock (_gate) Monitor.Pulse(_gate);
    }

    /// <summary>
    /// Takes the posted rectangle back if the worker has not started it (it is still waking up, or another
    /// thread holds its core): returns true and the caller must compute it. Otherwise waits for the worker
    /// to finish and returns false, with the worker's exception if it failed.
    /// </summary>
    public bool Retract(out Exception? error)
    {
        error = null;
        if (Interlocked.CompareExchange(ref _pending, 0, 1) == 1) return true;
        var spinner = new SpinWait();
        while (Volatile.Read(ref _done) == 0) spinner.SpinOnce(sleep1Threshold: -1);
        error = _error;
        return false;
    }

    public void Release() => Volatile.Write(ref _claimed, 0);

    private void Loop()
    {
        while (true)
        {
            WaitForJob();
            try { GemmParallel.RunRange(_job, _m0, _m1, _n0, _n1); }
            catch (Exception e) { _error = e; }
            Volatile.Write(ref _done, 1);
        }
    }

    /// <summary>Returns once this thread has taken a posted job (a caller may retract it first).</summary>
    private void WaitForJob()
    {
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 1; ; i++)
            {
                if (Volatile.Read(ref _pending) == 1 && Interlocked.CompareExchange(ref _pending, 0, 1) == 1) return;
                // Pause at first for the fastest hand-off between back-to-back products; then yield, so a
                // thread of the caller's (e.g. the other half of a batch-parallel convolution) gets the core.
                if (i >= 1024) Thread.Yield();
                else if (X86Base.IsSupported) X86Base.Pause();
                else Thread.SpinWait(1);
                if ((i & 63) == 0 && Stopwatch.GetTimestamp() - start > SpinTime) break;
            }
            lock (_gate)
            {
                Interlocked.Exchange(ref _sleeping, 1);
                while (Volatile.Read(ref _pending) == 0) Monitor.Wait(_gate);
                _sleeping = 0;
            }
        }
    }
}
