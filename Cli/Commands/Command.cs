using System.CommandLine;

namespace Cnn.Cli;

/// <summary>
/// One <c>cnn</c> command: its name, its help text (printed by <c>-h</c>/<c>--help</c>, exit 0), the options it
/// declares to the parser, and its body. A wrong argument prints one line and the usage line (exit 2).
/// </summary>
/// <param name="Name">The command's name (<c>train</c>).</param>
/// <param name="Help">The help text: begins with the usage line, ends with examples.</param>
/// <param name="Options">Every option the body reads.</param>
/// <param name="Body">The command's work, given the parsed values; returns the exit code.</param>
/// <param name="Hidden">Left out of the usage, the help and the suggestions (test-only commands).</param>
internal sealed record Command(string Name, string Help, IReadOnlyList<Option> Options, Func<Args, int> Body, bool Hidden = false)
{
    /// <summary>The first line of the help: <c>usage: cnn NAME ...</c>.</summary>
    public string UsageLine => Help.TrimStart().Split('\n')[0].TrimEnd();

    /// <summary>
    /// The zoo's names, from <see cref="Dsl.Zoo.Names"/> (never a copied list), wrapped for the option column of a help
    /// text: lines after the first are indented <paramref name="column"/> spaces, as that column is.
    /// </summary>
    public static string ZooNames(int column)
    {
        {
            var lines = new List<string> { "" };
            foreach (var name in Dsl.Zoo.Names)
            {
                if (lines[^1].Length > 0 && lines[^1].Length + name.Length > 80) lines.Add("");
                lines[^1] += (lines[^1].Length > 0 ? " " : "") + name + (name == Dsl.Zoo.Names[^1] ? "" : ",");
            }
            return string.Join("\n" + new string(' ', column), lines);
        }
    }

    /// <summary>A required option.</summary>
    public static string Required(Args args, string name) =>
        args.String(name) ?? throw new UsageException($"--{name} is required");

    /// <summary>One of a fixed set of words.</summary>
    public static string Choice(Args args, string name, string fallback, params string[] allowed)
    {
        var v = args.String(name) ?? fallback;
        return allowed.Contains(v) ? v : throw new UsageException($"--{name} expects one of {string.Join(", ", allowed)}; found '{v}'{Suggest.DidYouMean(v, allowed)}");
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
