using System.Diagnostics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// A piece of work a <see cref="PoolWorker"/> runs once: a range of a product (<see cref="GemmParallel"/>) or a share of the
/// chunks of a batch (<see cref="BatchParallel"/>). Items are reused from call to call, so posting allocates nothing.
/// </summary>
internal abstract class WorkItem
{
    public abstract void Run();
}

/// <summary>
/// The persistent threads the GEMM and the batch-parallel kernels share: one per core beyond the first, each running a
/// posted <see cref="WorkItem"/> while the caller does its own part. Posting costs about a microsecond while a worker
/// spins (<c>Parallel.For</c> measured 11 µs back to back, 88 µs after 5 ms idle); after <see cref="PoolWorker.SpinTime"/>
/// idle it blocks, so it does not hold one of the cores between training steps.
/// <para>
/// Oversubscription: every parallel call counts itself in (<see cref="Enter"/>) while it runs and gets only the cores other
/// calls are not already using; a worker another call holds is never waited for (<see cref="PoolWorker.TryClaim"/> fails,
/// the call uses fewer threads). So nested use (a product inside a batch chunk) and concurrent callers (many threads serving
/// one model) neither deadlock nor start more threads than there are cores.
/// </para>
/// </summary>
internal static class WorkerPool
{
    /// <remarks>
    /// Started together when the pool is first used, whatever path that call takes: a worker made by the first call that
    /// claims one would allocate its thread there, and that call can come long after a model's first (it depends on
    /// whether another call held the cores until then), where a steady state promises no allocation.
    /// </remarks>
    private static readonly PoolWorker[] s_workers = Enumerable.Range(0, Math.Max(0, Environment.ProcessorCount - 1)).Select(i => new PoolWorker(i + 1)).ToArray();
    private static int s_active;

    /// <summary>Set while <see cref="Alone"/>'s scope is open on this thread.</summary>
    [ThreadStatic] private static bool t_alone;

    /// <summary>The number of pool workers: the processor count minus the caller's core.</summary>
    public static int Count => s_workers.Length;

    /// <summary>
    /// Counts a parallel call in until <see cref="Exit"/> and returns how many threads it may use, itself included: at most
    /// <paramref name="wanted"/>, and no more than the cores other in-flight calls leave (at least 1); 1 inside
    /// <see cref="Alone"/>.
    /// </summary>
    public static int Enter(int wanted)
    {
        int active = Interlocked.Increment(ref s_active);
        return t_alone ? 1 : Math.Max(1, Math.Min(wanted, Environment.ProcessorCount - (active - 1)));
    }

    public static void Exit() => Interlocked.Decrement(ref s_active);

    /// <summary>
    /// Until the returned scope is disposed, every parallel call made on this thread runs all its parts on this thread, as
    /// when other calls hold every worker. A plan's first run does so (see <c>InferenceCaller</c>): it then meets the
    /// largest share of the work its thread can ever be left with, so the thread's workspaces (<see cref="GemmPackBuffers"/>,
    /// <see cref="ConvBuffers"/>, ...) reach their final sizes then and not in a later call that finds the workers busy.
    /// </summary>
    public static AloneScope Alone()
    {
        bool outer = !t_alone;
        t_alone = true;
        return new AloneScope(outer);
    }

    /// <summary>The scope of <see cref="Alone"/>; disposing the outermost one gives the thread its workers back.</summary>
    public readonly struct AloneScope(bool outer) : IDisposable
    {
        public void Dispose()
        {
            if (outer) t_alone = false;
        }
    }

    /// <summary>Claims idle workers, up to <paramref name="claimed"/>'s length, writing their indexes; returns how many it got.</summary>
    public static int Claim(Span<int> claimed)
    {
        int got = 0;
        for (int w = 0; w < s_workers.Length && got < claimed.Length; w++)
            if (s_workers[w].TryClaim()) claimed[got++] = w;
        return got;
    }

    public static PoolWorker Worker(int index) => s_workers[index];
}

/// <summary>
/// A persistent thread that runs one posted <see cref="WorkItem"/> at a time. Protocol for a caller: win
/// <see cref="TryClaim"/>, <see cref="Post"/>, do its own part, then always <see cref="Retract"/> and <see cref="Release"/>,
/// even on error, because an item may point into memory the caller has pinned or into buffers it is about to reuse.
/// </summary>
/// <remarks>
/// Waiting yields rather than only pausing: on a loaded machine the worker and its caller can share one core, and a pure
/// spin then starves the thread it waits for (measured: with a 50 µs pause-only spin in the worker and a blocking wait in
/// the caller, LeNet-5 training steps 7 % slower when the cores were contended, no faster when they were free).
/// </remarks>
internal sealed class PoolWorker
{
    /// <summary>How long an idle worker spins before it blocks: 50 µs.</summary>
    public static readonly long SpinTime = Stopwatch.Frequency / 20_000;

    private readonly object _gate = new();
    private int _claimed, _pending, _sleeping, _done;
    private WorkItem? _item;
    private Exception? _error;

    public PoolWorker(int index)
    {
        var thread = new Thread(Loop) { IsBackground = true, Name = $"Cnn worker {index}" };
        thread.Start();
    }

    public bool TryClaim() => Interlocked.CompareExchange(ref _claimed, 1, 0) == 0;

    public void Post(WorkItem item)
    {
        _item = item;
        _error = null;
        _done = 0;
        // Full fences on both sides (here and where the worker announces sleep): one of the two
        // always sees the other's write, so a job is never posted to a worker that sleeps through it.
        Interlocked.Exchange(ref _pending, 1);
        if (Volatile.Read(ref _sleeping) == 1)
            lock (_gate) Monitor.Pulse(_gate);
    }

    /// <summary>
    /// Takes the posted item back if the worker has not started it (it is still waking up, or another thread holds its
    /// core): returns true, and the item never runs here. Otherwise waits for the worker to finish it and returns false,
    /// with the exception the item threw, if any.
    /// </summary>
    public bool Retract(out Exception? error)
    {
        error = null;
        if (Interlocked.CompareExchange(ref _pending, 0, 1) == 1)
        {
            _item = null;
            return true;
        }
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
            try { _item!.Run(); }
            catch (Exception e) { _error = e; }
            // Not kept alive until the next post: a batch item's body holds the caller's tensors.
            _item = null;
            Volatile.Write(ref _done, 1);
        }
    }

    /// <summary>Returns once this thread has taken a posted item (a caller may retract it first).</summary>
    private void WaitForJob()
    {
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 1; ; i++)
            {
                if (Volatile.Read(ref _pending) == 1 && Interlocked.CompareExchange(ref _pending, 0, 1) == 1) return;
                // Pause at first for the fastest hand-off between back-to-back calls; then yield, so a thread of the
                // caller's (or another process's) gets the core.
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
