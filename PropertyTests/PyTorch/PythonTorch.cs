using System.Diagnostics;
using Cnn.Core;
using Xunit;

namespace Cnn.Tests.PyTorch;

/// <summary>
/// Runs only where python3 can import torch and numpy (Debian's <c>python3-torch</c>), or in CI (<c>CI=true</c>), where
/// their absence is a failure rather than a skip.
/// </summary>
public sealed class PyTorchFactAttribute : FactAttribute
{
    public PyTorchFactAttribute()
    {
        if (PythonTorch.Python is null && !PythonTorch.InCi)
            Skip = "PyTorch tests skipped: no python3 here imports torch and numpy; install them with " +
                   "'sudo apt-get install -y python3-torch python3-numpy' (in CI, where CI=true, their absence fails the test).";
    }
}

/// <summary>Finds a Python with torch and numpy, and runs it.</summary>
internal static class PythonTorch
{
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>The first Python that imports torch and numpy: the one on the PATH, else Debian's (a pyenv shim may shadow it).</summary>
    public static string? Python => Found.Value;

    private static readonly Lazy<string?> Found = new(() =>
        new[] { "python3", "/usr/bin/python3" }.FirstOrDefault(p => Run(p, ["-c", "import torch, numpy"], null, TimeSpan.FromMinutes(2)).Code == 0));

    /// <summary>The Python to use; fails the test (in CI) with what to install when there is none.</summary>
    public static string Require()
    {
        Assert.True(Python is not null,
            "python3 with torch and numpy is missing: CI must install python3-torch and python3-numpy ('sudo apt-get install -y python3-torch python3-numpy', see .ci/run).");
        return Python!;
    }

    /// <summary>Runs <c>python ARGS</c>; returns the exit code and everything it printed.</summary>
    public static (int Code, string Output) Run(string python, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment, TimeSpan timeout)
    {
        try
        {
            var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
            using var p = Process.Start(psi)!;
            p.StandardInput.Close();
            var err = p.StandardError.ReadToEndAsync();
            var outText = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                return (-1, $"timed out after {timeout}:\n{outText.Result}{err.Result}");
            }
            return (p.ExitCode, outText.Result + err.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }

    /// <summary>The largest difference between two tensors of one shape.</summary>
    public static double MaxDifference(Tensor actual, Tensor reference)
    {
        Assert.Equal(reference.Shape, actual.Shape);
        double maxDiff = 0;
        for (int i = 0; i < reference.Size; i++)
        {
            double d = Math.Abs((double)actual[i] - reference[i]);
            maxDiff = double.IsNaN(d) ? double.PositiveInfinity : Math.Max(maxDiff, d);
        }
        return maxDiff;
    }

    /// <summary>The largest difference over the largest reference element (absolute when the reference is zero).</summary>
    public static double Relative(Tensor actual, Tensor reference)
    {
        Assert.Equal(reference.Shape, actual.Shape);
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < reference.Size; i++)
        {
            double d = Math.Abs((double)actual[i] - reference[i]);
            maxDiff = double.IsNaN(d) ? double.PositiveInfinity : Math.Max(maxDiff, d);
            maxRef = Math.Max(maxRef, Math.Abs((double)reference[i]));
        }
        return maxRef > 0 ? maxDiff / maxRef : maxDiff;
    }
}
