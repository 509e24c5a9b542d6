using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using System.Text.Json;

namespace Cnn.Cli.Bench;

/// <summary>The machine a run measured on and how loaded it was.</summary>
internal sealed record MachineInfo(string Cpu, int LogicalCores, bool Avx512, string Runtime, string Os, double[]? LoadBefore, double[]? LoadAfter,
    double LoadMin, double LoadMax, int Threads, bool Quick, double Seconds, string Gc, CpuDescription Hardware)
{
    public static MachineInfo Describe(BenchContext ctx, double[]? before)
    {
        string cpu = ctx.Hardware.Model;
        var loads = ctx.LoadSamples.Count > 0 ? ctx.LoadSamples : new List<double> { double.NaN };
        return new MachineInfo(cpu, Environment.ProcessorCount, Vector512.IsHardwareAccelerated, RuntimeInformation.FrameworkDescription,
            RuntimeInformation.OSDescription, before, BenchContext.LoadAverage(), loads.Min(), loads.Max(), ctx.Threads, ctx.Quick, ctx.Elapsed.TotalSeconds,
            System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.Batch ? "batch (no background collections)" : "concurrent (the .NET default)",
            ctx.Hardware);
    }
}

/// <summary>Prints a run as tables for people or as one JSON document for scripts.</summary>
internal static class BenchReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Table(MachineInfo m, IReadOnlyList<BenchRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"cnn bench: {m.Cpu}, {m.LogicalCores} logical cores, AVX-512 {(m.Avx512 ? "yes" : "no")}, {m.Runtime}");
        var hw = m.Hardware;
        sb.AppendLine($"caches (cpu0): {(hw.Caches.Count == 0 ? "unknown" : string.Join(", ", hw.Caches))}; GEMM blocking: {hw.Blocking}");
        sb.AppendLine($"measured FMA peak (independent FMA chains): {hw.PeakPerThread:0} GFLOP/s on one thread, {hw.PeakAllThreads:0} on {hw.PeakThreads}; " +
                      "%pk = a row's GFLOP/s over the peak on the run's threads");
        sb.AppendLine($"threads {m.Threads} (im2col batch split and GEMM, LibTorch set_num_threads, ONNX Runtime intra-op){(m.Quick ? ", quick run" : "")}; " +
                      $"{m.Seconds:0} s in all; garbage collector: {m.Gc}");
        sb.AppendLine($"machine load (1-min load average): {Load(m.LoadBefore)} before, {Load(m.LoadAfter)} after, {F(m.LoadMin, "0.0")}-{F(m.LoadMax, "0.0")} during " +
                      $"(on {m.LogicalCores} cores: above {m.LogicalCores} other processes compete for the cores and absolute figures drop; ratios are of the same run)");
        sb.AppendLine("median of timed calls after warm-up; alloc = managed bytes allocated per call (LibTorch's and ONNX Runtime's native memory not included);");
        sb.AppendLine("speed = the other side's median time over im2col's (above 1: im2col is faster); (fastest) = the same from each side's fastest call,");
        sb.AppendLine("the figure a loaded machine moves least");
        foreach (var group in rows.GroupBy(r => r.Group))
        {
            sb.AppendLine();
            sb.AppendLine(group.Key);
            var sides = group.SelectMany(r => r.Timings.Select(t => t.Side)).Distinct().ToList();
            bool flops = group.Any(r => r.Flops > 0);
            bool threads = sides.Any(s => s.EndsWith(" 1T", StringComparison.Ordinal));
            bool allocationGroup = group.All(r => r.Note is not null && r.Target is { Bytes: true });
            int nameWidth = Math.Max(24, group.Max(r => r.Name.Length));
            var header = new StringBuilder("  " + "work".PadRight(nameWidth));
            foreach (var s in sides)
            {
                header.Append($" | {s + " ms",16}");
                if (flops) header.Append($" {"GFLOP/s",7} {"%pk",4}");
                if (!threads) header.Append($" {"alloc",9}");
            }
            if (threads)
            {
                header.Append($" | {"im2col 2T/1T",12} {"LibTorch 2T/1T",14}");
            }
            else if (!allocationGroup)
            {
                if (sides.Contains(Sides.LibTorch)) header.Append($" | {"vs LibTorch",11} {"(fastest)",9}");
                if (sides.Contains(Sides.Onnx)) header.Append($" {"vs ONNX RT",10}");
            }
            if (group.Any(r => r.Target is not null)) header.Append("  target");
            sb.AppendLine(header.ToString());
            foreach (var r in group)
            {
                var line = new StringBuilder("  " + r.Name.PadRight(nameWidth));
                foreach (var s in sides)
                {
                    var t = r.Of(s);
                    line.Append($" | {(t is null ? "-" : t.MedianMs.ToString(t.MedianMs < 10 ? "0.000" : "0.0", Inv)),16}");
                    if (flops) line.Append($" {F(r.GFlops(s), "0.0"),7} {F(hw.FractionOfPeak(r.GFlops(s)) * 100, "0"),4}");
                    if (!threads) line.Append($" {(t is null ? "-" : Bytes(t.AllocatedBytes)),9}");
                }
                if (threads)
                {
                    line.Append($" | {X(r.Speed(Sides.TwoThreads(Sides.Im2col), Sides.OneThread(Sides.Im2col))),12} " +
                                $"{X(r.Speed(Sides.TwoThreads(Sides.LibTorch), Sides.OneThread(Sides.LibTorch))),14}");
                    line.Append($"  (fastest: {X(r.BestSpeed(Sides.TwoThreads(Sides.Im2col), Sides.OneThread(Sides.Im2col)))}, {X(r.BestSpeed(Sides.TwoThreads(Sides.LibTorch), Sides.OneThread(Sides.LibTorch)))})");
                }
                else if (!allocationGroup)
                {
                    if (sides.Contains(Sides.LibTorch)) line.Append($" | {X(r.Speed(Sides.Im2col, Sides.LibTorch)),11} {X(r.BestSpeed(Sides.Im2col, Sides.LibTorch)),9}");
                    if (sides.Contains(Sides.Onnx)) line.Append($" {X(r.Speed(Sides.Im2col, Sides.Onnx)),10}");
                }
                if (r.Target is { } target)
                {
                    var met = target.Met(r);
                    line.Append($"  {target.Text}: {target.Format(target.Value(r))} {(met is null ? "-" : met.Value ? "met" : "MISSED")}");
                }
                sb.AppendLine(line.ToString());
                if (r.Note is not null) sb.AppendLine($"  {"",-2}{r.Note}");
            }
        }
        sb.AppendLine();
        sb.AppendLine("targets (issue 17)");
        var targeted = rows.Where(r => r.Target is not null).ToList();
        foreach (var r in targeted)
        {
            var met = r.Target!.Met(r);
            string best = r.Target.Best is { } b ? $", fastest calls {r.Target.Format(b(r))}" : "";
            sb.AppendLine($"  {(met is null ? "-     " : met.Value ? "met   " : "MISSED")} {r.Group}: {r.Name}: {r.Target.Format(r.Target.Value(r))}{best} (target {r.Target.Text})");
        }
        int missed = targeted.Count(r => r.Target!.Met(r) == false);
        sb.AppendLine($"  {targeted.Count - missed} of {targeted.Count} met");
        return sb.ToString();
    }

    public static string Json(MachineInfo m, IReadOnlyList<BenchRow> rows)
    {
        static double? Finite(double? v) => v is { } x && double.IsFinite(x) ? Math.Round(x, 6) : null;
        var doc = new Dictionary<string, object?>
        {
            ["machine"] = new Dictionary<string, object?>
            {
                ["cpu"] = m.Cpu,
                ["cpu_class"] = CpuDescription.ClassName,
                ["logical_cores"] = m.LogicalCores,
                ["avx512"] = m.Avx512,
                ["runtime"] = m.Runtime,
                ["os"] = m.Os,
                ["load_average_before"] = m.LoadBefore,
                ["load_average_after"] = m.LoadAfter,
                ["load_1min_min_during"] = Finite(m.LoadMin),
                ["load_1min_max_during"] = Finite(m.LoadMax),
                ["caches"] = m.Hardware.Caches.Select(c => new Dictionary<string, object?> { ["level"] = c.Level, ["type"] = c.Type, ["bytes"] = c.Bytes }).ToList(),
                ["gemm_blocking"] = new Dictionary<string, object?>
                {
                    ["instruction_set"] = m.Hardware.Blocking.InstructionSet.ToString(),
                    ["mr"] = m.Hardware.Blocking.MR,
                    ["nr"] = m.Hardware.Blocking.NR,
                    ["mc"] = m.Hardware.Blocking.MC,
                    ["kc"] = m.Hardware.Blocking.KC,
                    ["nc"] = m.Hardware.Blocking.NC,
                    ["a_panel_resident"] = m.Hardware.Blocking.APanelResident,
                },
                ["fma_peak_gflops_per_thread"] = Finite(m.Hardware.PeakPerThread),
                ["fma_peak_gflops_all_threads"] = Finite(m.Hardware.PeakAllThreads),
                ["fma_peak_threads"] = m.Hardware.PeakThreads,
            },
            ["threads"] = m.Threads,
            ["gc"] = m.Gc,
            ["quick"] = m.Quick,
            ["seconds"] = Math.Round(m.Seconds, 1),
            ["rows"] = rows.Select(r => new Dictionary<string, object?>
            {
                ["group"] = r.Group,
                ["name"] = r.Name,
                ["flops"] = r.Flops > 0 ? r.Flops : null,
                ["sides"] = r.Timings.Select(t => new Dictionary<string, object?>
                {
                    ["side"] = t.Side,
                    ["median_ms"] = Finite(t.MedianMs),
                    ["min_ms"] = Finite(t.MinMs),
                    ["p90_ms"] = Finite(t.P90Ms),
                    ["samples"] = t.Samples,
                    ["gflops"] = Finite(r.GFlops(t.Side)),
                    ["fraction_of_fma_peak"] = Finite(m.Hardware.FractionOfPeak(r.GFlops(t.Side))),
                    ["allocated_bytes_per_call"] = t.AllocatedBytes,
                }).ToList(),
                ["speed_vs_libtorch"] = Finite(r.Speed(Sides.Im2col, Sides.LibTorch)),
                ["speed_vs_libtorch_fastest_calls"] = Finite(r.BestSpeed(Sides.Im2col, Sides.LibTorch)),
                ["speed_vs_onnx_runtime"] = Finite(r.Speed(Sides.Im2col, Sides.Onnx)),
                ["im2col_speedup_1_to_2_threads"] = Finite(r.Speed(Sides.TwoThreads(Sides.Im2col), Sides.OneThread(Sides.Im2col))),
                ["libtorch_speedup_1_to_2_threads"] = Finite(r.Speed(Sides.TwoThreads(Sides.LibTorch), Sides.OneThread(Sides.LibTorch))),
                ["target"] = r.Target is null ? null : new Dictionary<string, object?>
                {
                    ["text"] = r.Target.Text,
                    ["threshold"] = r.Target.Threshold,
                    ["value"] = Finite(r.Target.Value(r)),
                    ["met"] = r.Target.Met(r),
                    ["value_fastest_calls"] = r.Target.Best is { } best ? Finite(best(r)) : null,
                },
                ["note"] = r.Note,
            }).ToList(),
        };
        return JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true });
    }

    private static string Load(double[]? l) => l is null ? "unknown" : string.Join(" / ", l.Select(v => v.ToString("0.0", Inv)));

    private static string F(double? v, string format) => v is { } x && double.IsFinite(x) ? x.ToString(format, Inv) : "-";

    private static string X(double? v) => v is { } x && double.IsFinite(x) ? x.ToString("0.00", Inv) + "x" : "-";

    private static string Bytes(long b) =>
        b < 10_000 ? b.ToString(Inv) + " B" : b < 10_000_000 ? (b / 1024.0).ToString("0", Inv) + " KB" : (b / 1048576.0).ToString("0.0", Inv) + " MB";
}
