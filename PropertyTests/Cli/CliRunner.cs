using System.Buffers.Binary;
using System.Diagnostics;
using Cnn.Cli;
using Xunit;

namespace Cnn.Tests.Cli;

/// <summary>The CLI tests redirect the console, so they run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection
{
    public const string Name = "cnn command line";
}

/// <summary>Runs <c>cnn</c> in-process (its entry point, with the console captured) or as a process.</summary>
internal static class CliRunner
{
    private static readonly object Gate = new();

    /// <summary>Runs the program's entry point with <paramref name="args"/>; returns the exit code and what it printed.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        lock (Gate)
        {
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            var (o, e) = (new StringWriter(), new StringWriter());
            Console.SetOut(o);
            Console.SetError(e);
            try
            {
                var entry = typeof(TrainCommand).Assembly.EntryPoint!;
                int code = (int)entry.Invoke(null, [args])!;
                return (code, o.ToString(), e.ToString());
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
            }
        }
    }

    /// <summary>Starts <c>dotnet cnn.dll ARGS</c> from the test's output folder, output redirected.</summary>
    public static Process Start(params string[] args)
    {
        var dll = typeof(TrainCommand).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    /// <summary>
    /// Starts <c>dotnet cnn.dll ARGS</c> as a terminal starts it: SIGINT unblocked and at its default disposition. A child
    /// inherits its parent's blocked and ignored signals through exec, and the test host's threads may have SIGINT
    /// blocked or ignored by a native library it loaded (a full test run lost the Ctrl+C test's signal that way, while the
    /// test alone passed); Debian's Python resets both, then execs the command.
    /// </summary>
    public static Process StartAsFromTerminal(params string[] args)
    {
        const string Reset = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])";
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { "-c", Reset, "dotnet", typeof(TrainCommand).Assembly.Location }.Concat(args)) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    /// <summary>The SigBlk and SigIgn lines of a running process's status: which signals it blocks and ignores.</summary>
    public static string SignalMasks(int pid) =>
        string.Join("; ", File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("SigBlk", StringComparison.Ordinal) || l.StartsWith("SigIgn", StringComparison.Ordinal)));

    /// <summary>
    /// Writes a small learnable digit set as IDX files (train-* with <paramref name="train"/> images, t10k-* with
    /// <paramref name="test"/>): class k is a bright horizontal bar at row 2k + 4 over faint noise.
    /// </summary>
    public static string WriteIdxDigits(string folder, int train = 200, int test = 60)
    {
        Directory.CreateDirectory(folder);
        void Write(string prefix, int n, int seed)
        {
            var rng = new Random(seed);
            var px = new byte[n * 784];
            var labels = new byte[n];
            for (int i = 0; i < n; i++)
            {
                int k = i % 10;
                labels[i] = (byte)k;
                for (int p = 0; p < 784; p++) px[i * 784 + p] = (byte)rng.Next(0, 40);
                int row = 2 * k + 4, shift = rng.Next(-1, 2);
                for (int x = 4; x < 24; x++) px[i * 784 + (row + shift) * 28 + x] = 250;
            }
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-images-idx3-ubyte"), Idx(0x803, [n, 28, 28], px));
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte"), Idx(0x801, [n], labels));
        }
        Write("train", train, 1);
        Write("t10k", test, 2);
        return folder;
    }

    private static byte[] Idx(int magic, int[] dims, byte[] data)
    {
        var b = new byte[4 + 4 * dims.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        for (int a = 0; a < dims.Length; a++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * a), dims[a]);
        data.CopyTo(b, 4 + 4 * dims.Length);
        return b;
    }
}
