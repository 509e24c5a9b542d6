namespace Cnn.Cli.Bench;

/// <summary>
/// A target of issue 17 that a row is held to: a figure computed from the row (a speed ratio, or bytes), a threshold, and
/// whether the figure must reach it (at least) or stay under it (at most).
/// </summary>
internal sealed record Target(string Text, double Threshold, Func<BenchRow, double?> Value, bool AtMost = false, bool Bytes = false,
    Func<BenchRow, double?>? Best = null)
{
    /// <summary>The im2col backend's speed as a multiple of LibTorch's (LibTorch's median time over ours) at least <paramref name="min"/>.</summary>
    public static Target SpeedVsLibTorch(double min) =>
        new($">= {min:0.0#}x LibTorch", min, r => r.Speed(Sides.Im2col, Sides.LibTorch), Best: r => r.BestSpeed(Sides.Im2col, Sides.LibTorch));

    /// <summary>The compiled inference model's speed as a multiple of ONNX Runtime's at least <paramref name="min"/>.</summary>
    public static Target SpeedVsOnnxRuntime(double min) =>
        new($">= {min:0.0#}x ONNX Runtime", min, r => r.Speed(Sides.Im2col, Sides.Onnx), Best: r => r.BestSpeed(Sides.Im2col, Sides.Onnx));

    /// <summary>The im2col backend at two threads at least <paramref name="min"/> times as fast as at one.</summary>
    public static Target ThreadSpeedUp(double min) =>
        new($">= {min:0.0#}x from 1 to 2 threads", min, r => r.Speed(Sides.TwoThreads(Sides.Im2col), Sides.OneThread(Sides.Im2col)),
            Best: r => r.BestSpeed(Sides.TwoThreads(Sides.Im2col), Sides.OneThread(Sides.Im2col)));

    /// <summary>The im2col side's allocation per call, less <paramref name="returned"/> bytes, at most <paramref name="limit"/>.</summary>
    public static Target AllocationBeyond(long returned, long limit) =>
        new($"<= {limit / 1024} KB beyond the returned tensors", limit, r => r.Of(Sides.Im2col) is { } t ? t.AllocatedBytes - returned : null, AtMost: true, Bytes: true);

    public bool? Met(BenchRow row) => Value(row) is { } v ? (AtMost ? v <= Threshold : v >= Threshold) : null;

    public string Format(double? v) => v is not { } x ? "-" : Bytes ? $"{x / 1024:0.0} KB" : $"{x:0.00}x";
}

/// <summary>
/// One measured piece of work: its group (a section of the table), its name, the FLOPs of one call (0 where GFLOP/s do not
/// apply), the timings of each side, and the target it is held to, if any.
/// </summary>
internal sealed record BenchRow(string Group, string Name, double Flops, IReadOnlyList<Timing> Timings, Target? Target = null, string? Note = null)
{
    public Timing? Of(string side) => Timings.FirstOrDefault(t => t.Side == side);

    /// <summary>How many times faster <paramref name="side"/> is than <paramref name="baseline"/> (baseline's median over side's).</summary>
    public double? Speed(string side, string baseline)
    {
        var a = Of(side);
        var b = Of(baseline);
        return a is null || b is null || a.MedianMs <= 0 ? null : b.MedianMs / a.MedianMs;
    }

    /// <summary>As <see cref="Speed"/> from the fastest calls: the figure least moved by other processes on a loaded machine.</summary>
    public double? BestSpeed(string side, string baseline)
    {
        var a = Of(side);
        var b = Of(baseline);
        return a is null || b is null || a.MinMs <= 0 ? null : b.MinMs / a.MinMs;
    }

    public double? GFlops(string side)
    {
        var t = Of(side);
        return t is null || Flops <= 0 ? null : Flops / (t.MedianMs * 1e6);
    }
}

/// <summary>The names of the sides.</summary>
internal static class Sides
{
    public const string Im2col = "im2col";
    public const string LibTorch = "LibTorch";
    public const string Onnx = "ONNX Runtime";

    public static string OneThread(string side) => side + " 1T";

    public static string TwoThreads(string side) => side + " 2T";
}
