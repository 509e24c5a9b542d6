namespace Cnn.Cli;

/// <summary>What every command shares: <c>--help</c> prints its help (exit 0); a wrong argument prints one line and its usage (exit 2).</summary>
internal static class Command
{
    public static int Run(string name, string help, IEnumerable<string> args, IReadOnlySet<string> flags, Func<Args, int> body)
    {
        var list = args.ToList();
        if (list.Contains("--help") || list.Contains("-h"))
        {
            Console.WriteLine(help.TrimEnd());
            return 0;
        }
        try
        {
            return body(new Args(list, flags));
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"cnn {name}: {e.Message}");
            Console.Error.WriteLine(help.TrimEnd());
            return 2;
        }
    }

    /// <summary>A required option.</summary>
    public static string Required(Args args, string name) =>
        args.String(name) ?? throw new UsageException($"--{name} is required");

    /// <summary>One of a fixed set of words.</summary>
    public static string Choice(Args args, string name, string fallback, params string[] allowed)
    {
        var v = args.String(name) ?? fallback;
        return allowed.Contains(v) ? v : throw new UsageException($"--{name} expects one of {string.Join(", ", allowed)}; found '{v}'");
    }

    /// <summary>
    /// An output file named by option <paramref name="name"/> (or <paramref name="fallback"/>): refused when it exists,
    /// unless <c>--force</c> is given, so no command silently replaces a user's file. Null when the option is absent and
    /// there is no fallback.
    /// </summary>
    public static string? OutputFile(Args args, string name, string? fallback = null)
    {
        var path = args.String(name) ?? fallback;
        bool force = args.Flag("force");
        if (path is not null && File.Exists(path) && !force)
            throw new Core.CnnException($"The output file '{path}' exists; choose another --{name} or pass --force to replace it.");
        if (path is not null) Dsl.IO.AtomicFile.CheckWritable(path);
        return path;
    }

    /// <summary>An output folder: created; refused when it exists and is not empty, unless <paramref name="force"/>.</summary>
    public static string OutputFolder(string path, bool force) => RunFolder.Prepare(path, force);
}
