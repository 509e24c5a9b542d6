using System.Diagnostics;
using Cnn.Core.Kernels;
using TorchSharp;

namespace Cnn.Cli.Bench;

/// <summary>What every workload of one <c>cnn bench</c> run shares: its settings, thread count, results and progress.</summary>
internal sealed class BenchContext(MeasureSettings settings, int threads, bool quick, TextWriter log)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<IDisposable> _kept = new();

    public MeasureSettings Settings { get; } = settings;

    public int Threads { get; } = threads;

    public bool Quick { get; } = quick;

    /// <summary>The CPU, its caches, the GEMM blocking and the measured FMA peak (measured once, before the rows).</summary>
    public CpuDescription Hardware { get; } = CpuDescription.Measure(threads);

    public List<BenchRow> Rows { get; } = new();

    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>The 1-minute load average read before each row: how busy the machine was (other work competes for the cores).</summary>
    public List<double> LoadSamples { get; } = new();

    /// <summary>The 1-, 5- and 15-minute load averages (<c>/proc/loadavg</c>), or null where there is none.</summary>
    public static double[]? LoadAverage()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return parts.Take(3).Select(p => double.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    /// <summary>Sets the thread count of every engine: the batch split and the GEMM of the im2col backend, and LibTorch's.</summary>
    public static void UseThreads(int threads)
    {
        BatchParallel.Workers = threads;
        Gemm.Threads = threads;
        torch.set_num_threads(threads);
    }

    /// <summary>Times the sides against each other and records the row.</summary>
    public BenchRow Run(string group, string name, double flops, IReadOnlyList<Side> sides, Target? target = null, string? note = null, MeasureSettings? settings = null)
    {
        if (LoadAverage() is { } load) LoadSamples.Add(load[0]);
        log.Write($"  [{Elapsed.TotalSeconds,5:0}s] {group}: {name} ...");
        IReadOnlyList<Timing> timings;
        try { timings = Measure.Compare(settings ?? Settings, sides); }
        finally { ReleaseKept(); }
        var row = new BenchRow(group, name, flops, timings, target, note);
        Rows.Add(row);
        log.WriteLine(" " + string.Join(", ", timings.Select(t => $"{t.Side} {t.MedianMs:0.###} ms")));
        return row;
    }

    public void Log(string line) => log.WriteLine(line);

    /// <summary>Native resources (LibTorch tensors, modules, ONNX sessions) the next row's sides use; disposed after it.</summary>
    public T Keep<T>(T resource) where T : IDisposable
    {
        _kept.Add(resource);
        return resource;
    }

    private void ReleaseKept()
    {
        foreach (var r in _kept) r.Dispose();
        _kept.Clear();
    }

    /// <summary>Uniform floats in [-1, 1) from a seeded generator.</summary>
    public static float[] Random(int count, int seed)
    {
        var rng = new Random(seed);
        var a = new float[count];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }
}
