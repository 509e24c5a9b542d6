using System.Diagnostics;
using System.Globalization;

namespace Cnn.Tests.Reliability.Fuzz;

/// <summary>
/// Runs a program as a child process and reports its exit code and its peak resident memory as the kernel counts it
/// (wait4's ru_maxrss, the exact high-water mark of the whole process, natives included), through GNU time.
/// </summary>
/// <remarks>
/// Why not wait4 on a child of the test process itself: Linux carries the high-water mark of the memory a process had
/// before execve into the new program's ru_maxrss, and a child of the test host is spawned from a 600 MB process
/// (posix_spawn shares its memory until the exec), so every child would report at least that. GNU time is a small
/// process; its child's figure is the child's own. Sampling /proc/PID/status instead would miss a peak just before exit.
/// </remarks>
internal static class PeakMemoryProcess
{
    /// <summary>GNU time, or null where it is not installed (Debian: apt-get install time).</summary>
    public static string? Time { get; } = File.Exists("/usr/bin/time") ? "/usr/bin/time" : null;

    /// <summary>Runs <paramref name="program"/> with <paramref name="args"/> under GNU time, stdin empty.</summary>
    /// <returns>The exit code (128 + the signal if a signal ended it), what it printed, and its peak resident bytes.</returns>
    public static (int Code, string Out, string Err, long PeakBytes) Run(string program, IReadOnlyList<string> args, string scratch)
    {
        var report = Path.Combine(scratch, "time.txt");
        var psi = new ProcessStartInfo(Time ?? throw new InvalidOperationException("GNU time is not installed"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        foreach (var a in new[] { "-f", "%M", "-o", report, program }.Concat(args)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)}: still running after 2 minutes");
        }
        var lines = File.ReadAllLines(report).Where(l => l.Length > 0).ToList();
        long kb = long.Parse(lines[^1].Trim(), CultureInfo.InvariantCulture);
        return (p.ExitCode, stdout.Result, stderr.Result, kb * 1024);
    }
}
