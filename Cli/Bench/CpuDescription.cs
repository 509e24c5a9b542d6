using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Cnn.Core.Kernels;

namespace Cnn.Cli.Bench;

/// <summary>One cache level as the kernel describes it (<c>/sys/devices/system/cpu/cpu0/cache/index*</c>).</summary>
internal sealed record CacheLevel(int Level, string Type, long Bytes)
{
    public override string ToString() => $"L{Level}{(Type switch { "Data" => "d", "Instruction" => "i", _ => "" })} {Kb(Bytes)}";

    private static string Kb(long b) => b >= 1 << 20 ? $"{b / (1 << 20)} MB" : $"{b / 1024} KB";
}

/// <summary>
/// The CPU a run measured on: its model, caches, the GEMM blocking chosen for it, and its measured FMA peak (independent
/// FMA chains, per thread and on the run's threads), the ceiling each row's GFLOP/s is a fraction of.
/// </summary>
internal sealed record CpuDescription(string Model, IReadOnlyList<CacheLevel> Caches, GemmBlocking Blocking, double PeakPerThread, double PeakAllThreads, int PeakThreads)
{
    public static CpuDescription Measure(int threads)
    {
        double one = FmaPeak.GFlops(1), all = threads == 1 ? one : FmaPeak.GFlops(threads);
        return new CpuDescription(ModelName(), ReadCaches(), GemmBlocking.Current, one, all, threads);
    }

    public static string ModelName()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unknown";
        }
    }

    /// <summary>The caches of cpu0 from sysfs (empty where there is no sysfs).</summary>
    public static IReadOnlyList<CacheLevel> ReadCaches()
    {
        var list = new List<CacheLevel>();
        const string root = "/sys/devices/system/cpu/cpu0/cache";
        try
        {
            if (!Directory.Exists(root)) return list;
            foreach (var dir in Directory.GetDirectories(root, "index*").Order(StringComparer.Ordinal))
            {
                int level = int.Parse(File.ReadAllText(Path.Combine(dir, "level")).Trim(), CultureInfo.InvariantCulture);
                string type = File.ReadAllText(Path.Combine(dir, "type")).Trim();
                list.Add(new CacheLevel(level, type, ParseSize(File.ReadAllText(Path.Combine(dir, "size")).Trim())));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return list;
    }

    private static long ParseSize(string s)
    {
        long unit = s.EndsWith('K') ? 1024 : s.EndsWith('M') ? 1 << 20 : 1;
        return long.Parse(unit == 1 ? s : s[..^1], CultureInfo.InvariantCulture) * unit;
    }

    /// <summary>A row's GFLOP/s as a fraction of the peak on the run's threads.</summary>
    public double? FractionOfPeak(double? gflops) => gflops is { } g && PeakAllThreads > 0 ? g / PeakAllThreads : null;

    /// <summary>The microarchitecture class the kernels' blocking is chosen for (CPUID's family and model), in words.</summary>
    public static string ClassName => CpuCaches.Class switch
    {
        CpuClass.AmdZen3 => "AMD Zen 3",
        CpuClass.AmdZen4Or5 => "AMD Zen 4/5",
        CpuClass.IntelRapids => "Intel Sapphire/Emerald/Granite Rapids",
        _ => "other",
    };

    public override string ToString() =>
        $"{Model} (class: {ClassName}); caches {(Caches.Count == 0 ? "unknown" : string.Join(", ", Caches))}; GEMM {Blocking}; " +
        $"FMA peak {PeakPerThread:0} GFLOP/s per thread, {PeakAllThreads:0} on {PeakThreads} threads";
}

/// <summary>
/// The FMA throughput a core reaches in C#: twelve independent chains of the widest FMA (enough to cover its latency on
/// two FMA units), operands in registers, no memory traffic; the best of several runs.
/// </summary>
internal static class FmaPeak
{
    private const int Chains = 12;
    private const long Iterations = 4_000_000;

    public static double GFlops(int threads)
    {
        int lanes = Avx512F.IsSupported ? 16 : Fma.IsSupported ? 8 : 1;
        double flopsPerThread = 2.0 * Chains * lanes * Iterations;
        double best = 0;
        for (int run = 0; run < 5; run++)
        {
            using var start = new Barrier(threads + 1);
            var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() => { start.SignalAndWait(); Sink(Run(Iterations)); }) { IsBackground = true }).ToList();
            workers.ForEach(t => t.Start());
            // The clock starts before the threads are released, so a late start of this thread cannot shorten the time.
            var clock = Stopwatch.StartNew();
            start.SignalAndWait();
            workers.ForEach(t => t.Join());
            best = Math.Max(best, flopsPerThread * threads / clock.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    private static float _sink;

    private static void Sink(float v) => _sink += v;

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float Run(long iterations)
    {
        if (Avx512F.IsSupported)
        {
            var m = Vector512.Create(0.999999f);
            var c = Vector512.Create(1e-7f);
            Vector512<float> a0 = Vector512.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
            for (long i = 0; i < iterations; i++)
            {
                a0 = Avx512F.FusedMultiplyAdd(a0, m, c); a1 = Avx512F.FusedMultiplyAdd(a1, m, c); a2 = Avx512F.FusedMultiplyAdd(a2, m, c);
                a3 = Avx512F.FusedMultiplyAdd(a3, m, c); a4 = Avx512F.FusedMultiplyAdd(a4, m, c); a5 = Avx512F.FusedMultiplyAdd(a5, m, c);
                a6 = Avx512F.FusedMultiplyAdd(a6, m, c); a7 = Avx512F.FusedMultiplyAdd(a7, m, c); a8 = Avx512F.FusedMultiplyAdd(a8, m, c);
                a9 = Avx512F.FusedMultiplyAdd(a9, m, c); a10 = Avx512F.FusedMultiplyAdd(a10, m, c); a11 = Avx512F.FusedMultiplyAdd(a11, m, c);
            }
            return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }
        if (Fma.IsSupported)
        {
            var m = Vector256.Create(0.999999f);
            var c = Vector256.Create(1e-7f);
            Vector256<float> a0 = Vector256.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
            for (long i = 0; i < iterations; i++)
            {
                a0 = Fma.MultiplyAdd(a0, m, c); a1 = Fma.MultiplyAdd(a1, m, c); a2 = Fma.MultiplyAdd(a2, m, c);
                a3 = Fma.MultiplyAdd(a3, m, c); a4 = Fma.MultiplyAdd(a4, m, c); a5 = Fma.MultiplyAdd(a5, m, c);
                a6 = Fma.MultiplyAdd(a6, m, c); a7 = Fma.MultiplyAdd(a7, m, c); a8 = Fma.MultiplyAdd(a8, m, c);
                a9 = Fma.MultiplyAdd(a9, m, c); a10 = Fma.MultiplyAdd(a10, m, c); a11 = Fma.MultiplyAdd(a11, m, c);
            }
            return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }
        float s = 1f;
        for (long i = 0; i < iterations * Chains; i++) s = MathF.FusedMultiplyAdd(s, 0.999999f, 1e-7f);
        return s;
    }
}
