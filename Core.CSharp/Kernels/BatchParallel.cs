using System.Runtime.ExceptionServices;

namespace Cnn.Core.Kernels;

/// <summary>
/// Splits a batch into one contiguous chunk per worker. The split depends only on the batch size and the
/// worker count, so per-worker partial sums, added in worker order, give bitwise-identical results run to run.
/// </summary>
/// <remarks>
/// The chunks run on the calling thread and the persistent pool workers the GEMM also uses (<see cref="WorkerPool"/>), not
/// on the .NET thread pool: a <c>Parallel.For</c> costs 11 µs back to back and about 88 µs after a few milliseconds idle,
/// against about a microsecond to hand a chunk to a spinning worker (measured for <c>For(64, ...)</c> with a trivial body,
/// 2 cores: 2-4 µs a call against 5-10 µs back to back, 7 µs against 15-25 µs after 200 µs idle). The caller and the
/// workers it claims take chunks in turn from a shared counter, so a worker slow to wake (or whose core another process
/// holds) costs little: the caller runs the chunks it has not taken. Which thread runs a chunk never changes what the
/// chunk computes.
/// </remarks>
public static class BatchParallel
{
    /// <summary>The number of workers kernels use; defaults to the processor count.</summary>
    public static int Workers { get; set; } = Environment.ProcessorCount;

    /// <summary>The number of chunks a batch of <paramref name="n"/> items is split into.</summary>
    public static int Chunks(int n) => Math.Max(1, Math.Min(Workers, n));

    /// <summary>This thread's item, reused by its calls (<see cref="ChunkQueue.InUse"/> while one of them runs it).</summary>
    [ThreadStatic] private static ChunkQueue? t_queue;

    /// <summary>
    /// Runs <paramref name="body"/>(chunk, start, end) for each chunk, in parallel when there is more than one. Chunk
    /// <c>i</c> of <c>p</c> covers items <c>[i * n / p, (i + 1) * n / p)</c>. When chunks throw, the first exception
    /// caught is rethrown (as itself, not wrapped) once no chunk is running; chunks not started by then are skipped.
    /// </summary>
    /// <remarks>
    /// Nested calls (a kernel inside a chunk) and calls from several threads at once are safe: a call uses only pool workers
    /// no other call holds and the cores no other call is using, and otherwise runs its chunks on the calling thread.
    /// </remarks>
    public static void For(int n, Action<int, int, int> body) => For(n, Chunks(n), body);

    /// <summary>
    /// Runs <paramref name="body"/>(chunk, start, end) for <paramref name="chunks"/> chunks (clamped to 1..n) on up to
    /// <see cref="Workers"/> threads, as <see cref="For(int, Action{int, int, int})"/> does: chunk <c>i</c> of <c>p</c> covers
    /// items <c>[i * n / p, (i + 1) * n / p)</c>, and each thread takes the next chunk not yet taken. For bodies whose
    /// results do not depend on how the items are split (a convolution's forward pass, image by image): with more chunks
    /// than threads, a worker that starts late, or loses its core to another process for a while, leaves its share to the
    /// threads that are running instead of holding up the call with a fixed half of it.
    /// </summary>
    /// <param name="n">Items.</param>
    /// <param name="chunks">How many chunks to cut the items into.</param>
    /// <param name="body">The work on one chunk: its index, its first item and the item past its last.</param>
    public static void For(int n, int chunks, Action<int, int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        int p = Math.Clamp(chunks, 1, Math.Max(1, n));
        if (p == 1) { body(0, 0, n); return; }
        if (Workers <= 1)
        {
            for (int i = 0; i < p; i++) body(i, (int)((long)i * n / p), (int)((long)(i + 1) * n / p));
            return;
        }
        int budget = WorkerPool.Enter(Math.Min(p, Workers));
        try
        {
            // The thread's queue is made by its first call whichever path that call takes, not by the first call that
            // finds a worker free (a later one, when other calls held every worker until then).
            var own = t_queue ??= new ChunkQueue();
            Span<int> claimed = stackalloc int[Math.Min(budget, WorkerPool.Count + 1) - 1];
            int helpers = claimed.Length == 0 ? 0 : WorkerPool.Claim(claimed);
            if (helpers == 0)
            {
                for (int i = 0; i < p; i++) body(i, (int)((long)i * n / p), (int)((long)(i + 1) * n / p));
                return;
            }
            // A call nested in one of this thread's chunks finds its queue in use.
            var queue = own.InUse ? new ChunkQueue() : own;
            queue.Start(n, p, body);
            try
            {
                for (int h = 0; h < helpers; h++) WorkerPool.Worker(claimed[h]).Post(queue);
                queue.Run();
            }
            finally
            {
                // Every worker is done with the queue (or never started it) before it is reused or anything throws. A
                // retracted share needs no work here: the caller's Run returns only once every chunk has been taken.
                for (int h = 0; h < helpers; h++)
                {
                    var worker = WorkerPool.Worker(claimed[h]);
                    worker.Retract(out var workerError);
                    worker.Release();
                    queue.Fail(workerError);
                }
            }
            var error = queue.Error;
            queue.Clear();
            if (error is not null) ExceptionDispatchInfo.Capture(error).Throw();
        }
        finally
        {
            WorkerPool.Exit();
        }
    }

    /// <summary>The chunks of one call, taken in turn by whichever thread asks next.</summary>
    private sealed class ChunkQueue : WorkItem
    {
        private Action<int, int, int>? _body;
        private int _n, _p, _next;
        private Exception? _error;

        public Exception? Error => Volatile.Read(ref _error);

        /// <summary>Between <see cref="Start"/> and <see cref="Clear"/>.</summary>
        public bool InUse => _body is not null;

        public void Start(int n, int p, Action<int, int, int> body)
        {
            (_n, _p, _body) = (n, p, body);
            _error = null;
            _next = 0;
        }

        /// <summary>Runs chunks until none is left (or one has failed).</summary>
        public override void Run()
        {
            var body = _body!;
            int n = _n, p = _p;
            while (Volatile.Read(ref _error) is null)
            {
                int i = Interlocked.Increment(ref _next) - 1;
                if (i >= p) return;
                try { body(i, (int)((long)i * n / p), (int)((long)(i + 1) * n / p)); }
                catch (Exception e) { Fail(e); }
            }
        }

        public void Fail(Exception? e)
        {
            if (e is not null) Interlocked.CompareExchange(ref _error, e, null);
        }

        /// <summary>Drops the body (it holds the caller's tensors) once every thread is done with it.</summary>
        public void Clear()
        {
            _body = null;
            _error = null;
        }
    }
}
