using System.CommandLine;
using System.Globalization;
using Cnn.Cli;
using Cnn.Dsl;
using CliCommand = Cnn.Cli.Command;

namespace Cnn.Tests.Reliability.Fuzz;

/// <summary>One generated command line and the paths it names as outputs (the only paths it may create or change).</summary>
/// <param name="Args">The arguments after <c>cnn</c>.</param>
/// <param name="Outputs">The values given to output options (<see cref="OptionKind.Output"/>), as full paths.</param>
internal sealed record GeneratedCase(string[] Args, IReadOnlyList<string> Outputs)
{
    /// <summary>The command line as a shell would take it (single-quoted words).</summary>
    public string Line => "cnn " + string.Join(' ', Args.Select(a => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));
}

/// <summary>
/// Command lines generated from the commands' own declarations (<see cref="CommandLine.Commands"/>, each option's
/// <see cref="Opt.KindOf"/>): a new command or option is covered without being listed here. Values mix valid ones,
/// the boundaries of the declared ranges, values out of range and of the wrong type, and paths into the
/// <see cref="HostileCorpus"/>. What is listed here only keeps the property cheap and its outputs inside the case
/// folder; each entry says why.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class ArgumentGenerator(HostileCorpus corpus)
{
    /// <summary>Commands not generated, with the reason.</summary>
    public static readonly IReadOnlyDictionary<string, string> Excluded = new Dictionary<string, string>
    {
        ["internal-crash-test"] = "a hidden command that fails on purpose (exit 70) to test the last-resort handler",
    };

    /// <summary>
    /// Commands whose body is never run: only command lines with a usage error (exit 2, found before any work) are
    /// generated for them.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> UsageErrorsOnly = new Dictionary<string, string>
    {
        ["bench"] = "it times LibTorch against im2col for about a minute even with --quick, reads no file, and sets process-wide state (GC latency mode, thread counts) that would outlive an in-process case",
    };

    /// <summary>
    /// Valid values of options that set an amount of work, bounded so that a case costs at most about a second: the
    /// declared range is wider (epochs up to 100,000), and only the amount of work, not the input's hostility, grows
    /// with it. Out-of-range values are still generated for these options.
    /// </summary>
    public static readonly IReadOnlyDictionary<(string Command, string Option), (long Min, long Max)> WorkBounds = new Dictionary<(string, string), (long, long)>
    {
        [("run", "epochs")] = (1, 1), [("run", "train")] = (1, 64), [("run", "test")] = (1, 16), [("run", "batch-size")] = (1, 64),
        [("train", "epochs")] = (1, 2), [("train", "limit")] = (1, 32), [("train", "batch-size")] = (1, 64), [("train", "early-stopping")] = (1, 3),
        [("lr-find", "steps")] = (2, 6), [("lr-find", "limit")] = (1, 32), [("lr-find", "batch-size")] = (1, 32),
        [("gan", "epochs")] = (1, 1), [("gan", "limit")] = (1, 32), [("gan", "batch-size")] = (1, 32), [("gan", "classifier-epochs")] = (0, 1),
        [("verify", "batch-size")] = (1, 4), [("show", "limit")] = (1, 32), [("predict", "limit")] = (1, 64), [("predict", "batch-size")] = (1, 64),
    };

    /// <summary>
    /// Options always given, so that the command neither writes outside the case folder (an absent --out means a
    /// folder in the working directory or beside the checkpoint) nor does unbounded work (an absent --limit or
    /// --epochs means thousands of examples or several epochs).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string[]> AlwaysGiven = new Dictionary<string, string[]>
    {
        ["run"] = ["out", "epochs", "train", "test"],
        ["train"] = ["out", "data", "limit", "epochs"],
        ["gan"] = ["out", "data", "limit", "epochs", "classifier-epochs"],
        ["lr-find"] = ["out", "data", "limit", "steps"],
        ["show"] = ["out", "limit"],
        ["gradcam"] = ["out"],
        ["predict"] = ["limit"],
    };

    /// <summary>Valid values for text options by name that are not files (files come from the corpus by the same name).</summary>
    private static readonly Dictionary<string, string[]> TextHints = new(StringComparer.Ordinal)
    {
        ["kernel"] = ["laplacian", "edge-h", "edge-v", "box", "sharpen"],
        ["only"] = ["gemm", "conv,pool", ""],
        ["layer"] = ["conv1", "conv2", "pool1", "dense1", "nope"],
        ["name"] = ["graph", "a b", ""],
        ["constant"] = ["0", "1.5", "-2", "NaN", "1e39", "x"],
    };

    private static readonly string[] OddText =
        ["", " ", "-", "--", ",", "../../../../etc/passwd", "NaN", "-5", "1e39", "\u00e9\u00e8", "a\tb", "a\nb", new string('x', 5000), "~/x.npy", "C:\\x.npy", "*"];

    /// <summary>
    /// The zoo networks generated as valid values: the others (VGG-16: 138 M parameters, 553 MB; AlexNet, GoogLeNet,
    /// ResNet-18) are legitimately big, their memory is the network's and not an input's, and the zoo's own tests cover
    /// them.
    /// </summary>
    public static IReadOnlyList<string> CheapNetworks { get; } = Zoo.Names
        .Where(n => { var t = Summary.Totals(Zoo.ByName(n)); return t.Parameters <= 2_000_000 && t.ActivationBytes <= 20_000_000; })
        .ToList();

    /// <summary>The commands generated from (every declared command but <see cref="Excluded"/>).</summary>
    public static IReadOnlyList<CliCommand> Commands { get; } = CommandLine.Commands.Where(c => !Excluded.ContainsKey(c.Name)).ToList();

    /// <summary>The case for seed <paramref name="seed"/>, its outputs inside <paramref name="caseDir"/>.</summary>
    public GeneratedCase Generate(int seed, string caseDir)
    {
        var rng = new Random(seed);
        if (rng.NextDouble() < 0.03) return new GeneratedCase(TopLevel(rng), []);
        var command = Commands[rng.Next(Commands.Count)];
        bool mustFailParse = UsageErrorsOnly.ContainsKey(command.Name);
        var always = AlwaysGiven.GetValueOrDefault(command.Name) ?? [];
        var args = new List<string> { command.Name };
        var outputs = new List<string>();
        bool invalidGiven = false;
        foreach (var option in command.Options.OrderBy(_ => rng.Next()))
        {
            var name = option.Name[2..];
            if (!always.Contains(name) && rng.NextDouble() < 0.45) continue;
            var kind = Opt.KindOf(option);
            bool invalid = rng.NextDouble() < (mustFailParse ? 0.5 : 0.05);
            var spelling = option.Aliases.Count > 0 && rng.NextDouble() < 0.2 ? option.Aliases.ElementAt(rng.Next(option.Aliases.Count)) : option.Name;
            if (kind is OptionKind.Flag)
            {
                args.Add(spelling);
                if (invalid) { args.Add(rng.NextDouble() < 0.5 ? "yes" : "false"); invalidGiven = true; }
                continue;
            }
            string value;
            if (kind is OptionKind.Output)
            {
                var choices = HostileCorpus.OutputChoices(caseDir);
                value = rng.NextDouble() < 0.03 ? "" : choices[rng.Next(choices.Length)];
                if (value.Length > 0) outputs.Add(Path.GetFullPath(value));
            }
            else
            {
                (value, bool parseError) = Value(rng, command.Name, name, kind, invalid);
                invalidGiven |= parseError;
            }
            if (rng.NextDouble() < 0.15 && !value.StartsWith('-')) args.Add(spelling + "=" + value);
            else args.AddRange([spelling, value]);
        }
        if (mustFailParse && !invalidGiven) args.Insert(1 + rng.Next(args.Count), "--bogus");
        else if (rng.NextDouble() < 0.08) Mutate(rng, args, command);
        return new GeneratedCase([.. args], outputs);
    }

    private (string Value, bool ParseError) Value(Random rng, string command, string name, OptionKind kind, bool invalid)
    {
        switch (kind)
        {
            case OptionKind.Int(var min, var max):
                if (invalid)
                {
                    var bad = new[] { "", "abc", Lng(min - 1 < min ? min - 1 : min), Lng(max + 1 > max ? max + 1 : max), "1.5", "0x10", "99999999999999999999", " 7", "1e3", "\u0663" };
                    var v = Pick(rng, bad);
                    return (v, !long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min || n > max);
                }
                if (WorkBounds.TryGetValue((command, name), out var b)) return (Lng(b.Min + (long)(rng.NextDouble() * (b.Max - b.Min + 1))), false);
                var choices = new[] { min, max, Math.Min(max, min + 1), Math.Max(min, max - 1), Math.Clamp(rng.Next(0, 50), min, max), min + (long)(rng.NextDouble() * ((double)max - min)) };
                return (Lng(Math.Clamp(choices[rng.Next(choices.Length)], min, max)), false);
            case OptionKind.Positive(var maxValue):
                if (invalid) return (Pick(rng, "0", "-1", "NaN", "Infinity", "1e39", "abc", "", (maxValue * 10).ToString("R", CultureInfo.InvariantCulture)), true);
                return (Pick(rng, "1e-30", "1e-7", "0.001", "0.1", "1", maxValue.ToString("R", CultureInfo.InvariantCulture)), false);
            case OptionKind.Fraction:
                if (invalid) return (Pick(rng, "1", "-0.1", "NaN", "-Infinity", "abc", "", "1e9"), true);
                return (Pick(rng, "0", "1e-7", "0.1", "0.5", "0.999"), false);
            case OptionKind.Choice(var values):
                if (invalid) return (Pick(rng, values[0] + "x", values[0].ToUpperInvariant(), "", "none"), true);
                return (values[rng.Next(values.Count)], false);
            case OptionKind.Model:
                if (invalid) return (Pick(rng, "nope", "resnet", "", "SIMPLE-CONVNET"), true);
                return (CheapNetworks[rng.Next(CheapNetworks.Count)], false);
            case OptionKind.Data(var alsoNone):
                if (invalid) return (Pick(rng, "idx:", "mnist2", "ftp:x", "", "IDX:x"), true);
                double r = rng.NextDouble();
                if (r < 0.35) return (Pick(rng, [.. corpus.Valid["data"]]), false);
                if (r < 0.40) return ("mnist", false);
                if (r < 0.45 && alsoNone) return ("none", false);
                return (Pick(rng, "idx:", "cifar:", "folder:") + Pick(rng, [.. corpus.Hostile]), false);
            default:
                double t = rng.NextDouble();
                var valid = (corpus.Valid.GetValueOrDefault(name) ?? []).Concat(name == "input" ? corpus.Valid["image"] : []).ToArray();
                if (t < 0.35 && valid.Length > 0) return (Pick(rng, valid), false);
                if (t < 0.45 && TextHints.TryGetValue(name, out var hints)) return (Pick(rng, hints), false);
                if (t < 0.85) return (Pick(rng, [.. corpus.Hostile]), false);
                return (Pick(rng, OddText), false);
        }
    }

    /// <summary>A structural mistake: an unknown option, a stray word, a missing value, a repeated option, or a help request.</summary>
    private static void Mutate(Random rng, List<string> args, CliCommand command)
    {
        switch (rng.Next(5))
        {
            case 0: args.Insert(1 + rng.Next(args.Count), "--bogus"); break;
            case 1: args.Insert(1 + rng.Next(args.Count), "stray"); break;
            case 2:
                var valued = command.Options.Where(o => Opt.KindOf(o) is not OptionKind.Flag).ToList();
                if (valued.Count > 0) args.Add(valued[rng.Next(valued.Count)].Name);
                else args.Add("--bogus=1");
                break;
            case 3:
                var dup = command.Options.FirstOrDefault(o => Opt.KindOf(o) is not OptionKind.Flag);
                if (dup is not null) args.AddRange([dup.Name, "1", dup.Name, "2"]);
                else args.Add("stray");
                break;
            default:
                args.Insert(1 + rng.Next(args.Count), rng.NextDouble() < 0.5 ? "--help" : "-h");
                break;
        }
    }

    private static string[] TopLevel(Random rng) => rng.Next(6) switch
    {
        0 => [],
        1 => ["--version"],
        2 => ["help", Pick(rng, [.. CommandLine.Commands.Select(c => c.Name), "nope"])],
        3 => ["trian"],
        4 => ["--bogus"],
        _ => ["help", "train", "extra"],
    };

    private static string Lng(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string Pick(Random rng, params string[] values) => values[rng.Next(values.Length)];
}
