using System.CommandLine;
using System.Globalization;

namespace Cnn.Cli;

/// <summary>A command-line mistake: reported as one line plus the command's usage line, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The values of one parsed command line, read by option name (<c>"epochs"</c> for <c>--epochs</c>). The parser
/// (System.CommandLine) has already rejected unknown options, missing values and values out of their declared range
/// (see <see cref="Opt"/>), so a command's body reads values; it does not parse them.
/// </summary>
internal sealed class Args
{
    private readonly ParseResult _result;
    private readonly Dictionary<string, Option> _options;

    public Args(ParseResult result, IEnumerable<Option> options)
    {
        _result = result;
        _options = options.ToDictionary(o => o.Name[2..], StringComparer.Ordinal);
    }

    /// <summary>Whether the flag was given.</summary>
    public bool Flag(string name) => _result.GetValue((Option<bool>)Declared(name));

    /// <summary>The option's text, or null when it was not given.</summary>
    public string? String(string name) => _result.GetValue((Option<string>)Declared(name));

    /// <summary>An integer option (its range is checked by its declaration), or <paramref name="fallback"/> when absent.</summary>
    public int Int(string name, int fallback, int min = int.MinValue)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min)
            throw new UsageException($"--{name} expects an integer >= {min}; found '{s}'");
        return v;
    }

    /// <summary>A positive number option (its range is checked by its declaration), or <paramref name="fallback"/> when absent.</summary>
    public float Float(string name, float fallback)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !float.IsFinite(v) || v <= 0)
            throw new UsageException($"--{name} expects a positive number; found '{s}'");
        return v;
    }

    // Reading an option the command does not declare is a defect of cnn, not of the command line: it ends as exit 70.
    private Option Declared(string name) =>
        _options.TryGetValue(name, out var o) ? o : throw new InvalidOperationException($"option --{name} is read but not declared by the command");
}
