using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Runtime.CompilerServices;
using Cnn.Dsl;

namespace Cnn.Cli;

/// <summary>
/// Declarations of options, one spelling per concept across the commands. Each value option is text checked by a
/// validator at parse time, so a mistake is a usage error (exit 2) that names the option, the value and the allowed
/// range, before a command loads anything; numbers are bounded so that none can overflow or ask for a huge allocation.
/// </summary>
internal static class Opt
{
    /// <summary>The largest batch any command accepts: far above what fits a step of the zoo's networks in memory
    /// with one example less, and small enough that a batch's tensor sizes cannot overflow an int.</summary>
    public const int MaxBatchSize = 65_536;

    /// <summary>The largest epoch count: years of training of the zoo on this machine; bounds the metrics' rows.</summary>
    public const int MaxEpochs = 100_000;

    /// <summary>The most threads an option may ask for: 4 x the processor count (more only adds memory and switching).</summary>
    public static int MaxThreads => 4 * Environment.ProcessorCount;

    /// <summary>A flag: <c>--name</c>, no value.</summary>
    public static Option<bool> Flag(string name, params string[] aliases) =>
        Declare(new Option<bool>("--" + name, [.. aliases.Select(a => "--" + a)]) { Arity = ArgumentArity.Zero }, new OptionKind.Flag());

    /// <summary>
    /// A text value: <c>--name VALUE</c> or <c>--name=VALUE</c>; <paramref name="aliases"/> are older spellings. An empty
    /// value (<c>--out ""</c>, as an unset shell variable gives) is a usage error: no option means anything by it, and
    /// as a path it would reach the file system's calls as an invalid argument.
    /// </summary>
    public static Option<string> Text(string name, params string[] aliases)
    {
        var o = new Option<string>("--" + name, [.. aliases.Select(a => "--" + a)]) { Arity = ArgumentArity.ExactlyOne };
        o.Validators.Add(r =>
        {
            if (Value(r) is "") r.AddError($"--{name} expects a value; found an empty string");
        });
        return Declare(o, new OptionKind.Text());
    }

    /// <summary>An integer from <paramref name="min"/> to <paramref name="max"/>.</summary>
    public static Option<string> Int(string name, long min, long max, params string[] aliases)
    {
        var o = Text(name, aliases);
        o.Validators.Add(r =>
        {
            if (Value(r) is not { } s) return;
            if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
                r.AddError($"--{name} expects an integer from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}; found '{s}'");
        });
        return Declare(o, new OptionKind.Int(min, max));
    }

    /// <summary>A finite number above 0 and at most <paramref name="max"/>.</summary>
    public static Option<string> Positive(string name, float max)
    {
        var o = Text(name);
        o.Validators.Add(r =>
        {
            if (Value(r) is not { } s) return;
            if (!float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !float.IsFinite(v) || v <= 0 || v > max)
                r.AddError($"--{name} expects a number above 0 and at most {max.ToString(CultureInfo.InvariantCulture)}; found '{s}'");
        });
        return Declare(o, new OptionKind.Positive(max));
    }

    /// <summary>A number from 0 up to but not including 1 (a probability mass such as label smoothing).</summary>
    public static Option<string> Fraction(string name)
    {
        var o = Text(name);
        o.Validators.Add(r =>
        {
            if (Value(r) is not { } s) return;
            if (!float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v >= 0 && v < 1))
                r.AddError($"--{name} expects a number from 0 up to but not including 1; found '{s}'");
        });
        return Declare(o, new OptionKind.Fraction());
    }

    /// <summary>One of the words <paramref name="allowed"/>; a near miss is suggested.</summary>
    public static Option<string> Choice(string name, params string[] allowed)
    {
        var o = Text(name);
        o.Validators.Add(r =>
        {
            if (Value(r) is { } s && !allowed.Contains(s))
                r.AddError($"--{name} expects one of {string.Join(", ", allowed)}; found '{s}'{Suggest.DidYouMean(s, allowed)}");
        });
        return Declare(o, new OptionKind.Choice(allowed));
    }

    /// <summary>A thread count from <paramref name="min"/> to <see cref="MaxThreads"/>.</summary>
    public static Option<string> Threads(int min) => Int("threads", min, MaxThreads);

    /// <summary><c>--seed N</c>: any 32-bit integer.</summary>
    public static Option<string> Seed() => Int("seed", int.MinValue, int.MaxValue);

    /// <summary><c>--batch-size N</c>, 1 to <see cref="MaxBatchSize"/>; <paramref name="aliases"/> are older spellings.</summary>
    public static Option<string> BatchSize(params string[] aliases) => Int("batch-size", 1, MaxBatchSize, aliases);

    /// <summary><c>--epochs N</c>, 1 to <see cref="MaxEpochs"/>.</summary>
    public static Option<string> Epochs() => Int("epochs", 1, MaxEpochs);

    /// <summary><c>--limit N</c>: at most N examples.</summary>
    public static Option<string> Limit() => Int("limit", 1, int.MaxValue);

    /// <summary><c>--lr X</c>, a learning rate above 0 and at most 1000.</summary>
    public static Option<string> LearningRate() => Positive("lr", 1000);

    /// <summary><c>--out PATH</c>: where a command writes (a file or a folder); <paramref name="aliases"/> are older spellings.</summary>
    public static Option<string> Out(params string[] aliases) => Declare(Text("out", aliases), new OptionKind.Output());

    /// <summary><c>--NAME PATH</c>: another file a command writes (<c>--csv</c> of lr-find).</summary>
    public static Option<string> OutFile(string name) => Declare(Text(name), new OptionKind.Output());

    /// <summary><c>--force</c>: replace an existing output file or write into a non-empty output folder.</summary>
    public static Option<bool> Force() => Flag("force");

    /// <summary><c>--checkpoint F</c>: a checkpoint written by <c>cnn train</c> or <c>cnn run</c>.</summary>
    public static Option<string> Checkpoint() => Text("checkpoint");

    /// <summary><c>--json</c>: the report as JSON.</summary>
    public static Option<bool> Json() => Flag("json");

    /// <summary><c>--data SPEC</c>: one of the forms of <see cref="DataSource.Help"/>; <paramref name="alsoNone"/> admits <c>none</c>.</summary>
    public static Option<string> Data(bool alsoNone = false)
    {
        var o = Text("data");
        o.Validators.Add(r =>
        {
            if (Value(r) is not { } s || (alsoNone && s == "none")) return;
            try { DataSource.CheckSpec(s); }
            catch (UsageException e) { r.AddError(e.Message); }
        });
        return Declare(o, new OptionKind.Data(alsoNone));
    }

    /// <summary><c>--model NAME</c>: a zoo network; an unknown name is a usage error with the closest names and the list from <see cref="Zoo.Names"/>.</summary>
    public static Option<string> Model()
    {
        var o = Text("model");
        o.Validators.Add(r =>
        {
            if (Value(r) is { } s && !Zoo.Names.Contains(s)) r.AddError(UnknownNetwork(s));
        });
        return Declare(o, new OptionKind.Model());
    }

    /// <summary>The message for a network name the zoo does not know: the closest names, then every name.</summary>
    public static string UnknownNetwork(string name)
    {
        var near = Suggest.DidYouMean(name, Zoo.Names);
        return $"--model: unknown network '{name}'{(near.Length > 0 ? near + " known" : "; known")}: {string.Join(", ", Zoo.Names)}";
    }

    /// <summary>
    /// What <paramref name="option"/> takes, as its declaration here says: a flag, a bounded integer or number, a choice,
    /// a data spec, a zoo name, an output path, or text. Tests generate command lines from it, so an option added to a
    /// command is exercised without being listed anywhere else.
    /// </summary>
    public static OptionKind KindOf(Option option) => Kinds.TryGetValue(option, out var kind) ? kind : new OptionKind.Text();

    private static readonly ConditionalWeakTable<Option, OptionKind> Kinds = new();

    private static T Declare<T>(T option, OptionKind kind) where T : Option
    {
        Kinds.AddOrUpdate(option, kind);
        return option;
    }

    private static string? Value(OptionResult r) => r.Tokens.Count > 0 ? r.Tokens[0].Value : null;
}
