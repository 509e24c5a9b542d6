using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Cnn.Tests.Kernels;

/// <summary>
/// <see cref="BatchParallel.For(int, Action{int, int, int})"/> on the shared pool workers: every item once, the chunk split a function of n and the
/// worker count only, exceptions reaching the caller unwrapped, no deadlock when nested inside itself or around a GEMM or
/// called from many threads at once, and no allocation per call in the steady state.
/// </summary>
public sealed class BatchParallelTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    /// <summary>Calls For and records, per item, the chunk that covered it; checks the bounds against the documented split.</summary>
    /// <summary>Items <c>[0, n)</c> covered once each by the documented chunks: the default count, or <paramref name="chunks"/> asked for.</summary>
    internal static void CheckCover(int n, int? chunks = null)
    {
        int p = chunks is { } asked ? Math.Clamp(asked, 1, Math.Max(1, n)) : BatchParallel.Chunks(n);
        var owner = new int[n];
        Array.Fill(owner, -1);
        var seen = new int[p];
        Action<int, int, int> body = (chunk, start, end) =>
        {
            Assert.InRange(chunk, 0, p - 1);
            Assert.Equal((int)((long)chunk * n / p), start);
            Assert.Equal((int)((long)(chunk + 1) * n / p), end);
            Interlocked.Increment(ref seen[chunk]);
            for (int i = start; i < end; i++) Assert.Equal(-1, Interlocked.Exchange(ref owner[i], chunk));
        };
        if (chunks is { } c) BatchParallel.For(n, c, body);
        else BatchParallel.For(n, body);
        Assert.All(seen, s => Assert.Equal(1, s));
        Assert.DoesNotContain(-1, owner);
    }

    [CnnProperty]
    public Property Every_item_is_covered_once_by_the_documented_chunk() =>
        Prop.ForAll(Gen.Choose(0, 5000).ToArbitrary(), n => CheckCover(n));

    [Fact]
    public async Task Many_callers_nested_calls_and_products_inside_chunks_neither_deadlock_nor_lose_work()
    {
        var a = Enumerable.Range(0, 96 * 80).Select(i => (float)Math.Sin(i)).ToArray();
        var b = Enumerable.Range(0, 80 * 112).Select(i => (float)Math.Cos(i)).ToArray();
        var expected = new float[96 * 112];
        Gemm.Multiply(false, false, 96, 112, 80, a, b, expected, false, new GemmOptions { Threads = 1 });
        var callers = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (int r = 0; r < 40; r++)
            {
                long total = 0;
                BatchParallel.For(64 + t, (_, start, end) =>
                {
                    // A nested loop and a product big enough to want both cores, inside a chunk.
                    BatchParallel.For(end - start, (_, s, e) => Interlocked.Add(ref total, e - s));
                    var c = new float[96 * 112];
                    Gemm.Multiply(false, false, 96, 112, 80, a, b, c);
                    Assert.Equal(expected, c);
                });
                Assert.Equal(64 + t, total);
                CheckCover(1 + r * 7);
            }
        })).ToArray();
        // A deadlock surfaces as a TimeoutException rather than a hung test run.
        await Task.WhenAll(callers).WaitAsync(Deadline);
    }

    [Fact]
    public void An_exception_in_any_chunk_reaches_the_caller_unwrapped_and_the_pool_keeps_working()
    {
        int p = BatchParallel.Chunks(1000);
        for (int failing = 0; failing < p; failing++)
        {
            int f = failing;
            var e = Assert.Throws<InvalidOperationException>(() => BatchParallel.For(1000, (chunk, _, _) =>
            {
                if (chunk == f) throw new InvalidOperationException($"chunk {chunk} failed");
                Thread.SpinWait(1000);
            }));
            Assert.Equal($"chunk {f} failed", e.Message);
        }
        for (int r = 0; r < 10; r++) CheckCover(1000 + r);
    }

    [Fact]
    public void A_kernel_exception_keeps_its_type()
    {
        // Every chunk throws: whichever is caught first is rethrown as itself.
        var e = Assert.Throws<ShapeException>(() => BatchParallel.For(100, (_, _, _) => throw new ShapeException("bad")));
        Assert.Equal("bad", e.Message);
    }

    [Fact]
    public void Steady_state_calls_allocate_nothing_on_the_calling_thread()
    {
        var counts = new int[BatchParallel.Chunks(1 << 20)];
        Action<int, int, int> body = (chunk, start, end) => counts[chunk] += end - start;
        for (int i = 0; i < 100; i++) BatchParallel.For(1 << 20, body);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++) BatchParallel.For(1 << 20, body);
        Assert.Equal(0L, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(200L << 20, counts.Sum(c => (long)c));
    }
}

/// <summary>Tests that change <see cref="BatchParallel.Workers"/>, which every kernel reads: they run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class WorkerCountCollection
{
    public const string Name = "batch-parallel worker count";

    /// <summary>Runs <paramref name="action"/> with <see cref="BatchParallel.Workers"/> set to <paramref name="workers"/>.</summary>
    public static T With<T>(int workers, Func<T> action)
    {
        int saved = BatchParallel.Workers;
        BatchParallel.Workers = workers;
        try { return action(); }
        finally { BatchParallel.Workers = saved; }
    }
}

[Collection(WorkerCountCollection.Name)]
public sealed class BatchParallelWorkerCountTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    public void The_worker_count_limits_the_chunks_whatever_the_cores(int workers) => WorkerCountCollection.With(workers, () =>
    {
        foreach (int n in new[] { 0, 1, 2, 5, 64, 1001 })
        {
            Assert.Equal(Math.Max(1, Math.Min(workers, n)), BatchParallel.Chunks(n));
            BatchParallelTests.CheckCover(n);
        }
        return 0;
    });

    /// <summary>More chunks than workers (as the convolution's forward pass asks), fewer, none, and more than items.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Chunks_asked_for_cover_every_item_once_whatever_the_workers(int workers) => WorkerCountCollection.With(workers, () =>
    {
        foreach (int n in new[] { 0, 1, 2, 5, 64, 1001 })
            foreach (int chunks in new[] { -1, 0, 1, 2, 8, 13, 5000 })
                BatchParallelTests.CheckCover(n, chunks);
        return 0;
    });
}
