using System.Diagnostics;
using System.Text.RegularExpressions;
using Cnn.Cli;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Xunit;
using Model = Cnn.Cli.Model;

namespace Cnn.Tests.Cli;

/// <summary>
/// The command line itself: help on every command, the version, suggestions for mistyped options and commands,
/// bounded numbers, one spelling per concept, resume from a checkpoint's network, and the last-resort handler.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed partial class CommandLineTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-cmdline");

    public void Dispose() => _dir.Delete(true);

    private string P(params string[] parts) => Path.Combine([_dir.FullName, .. parts]);

    private static (int Code, string Out, string Err) Cnn(string line) => CliRunner.Run(line.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    public static TheoryData<string> CommandNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in CommandLine.Commands.Where(c => !c.Hidden)) data.Add(c.Name);
        return data;
    }

    private static Command Named(string name) => CommandLine.Commands.Single(c => c.Name == name);

    [Theory]
    [MemberData(nameof(CommandNames))]
    public void DashHAndDashDashHelpPrintTheCommandsUsageWithExamples(string command)
    {
        var rootHelp = CliRunner.Run("--help");
        Assert.Equal(0, rootHelp.Code);
        Assert.Contains($"\n  {command} ", rootHelp.Out);
        foreach (var flag in new[] { "-h", "--help" })
        {
            var (code, output, err) = CliRunner.Run(command, flag);
            Assert.True(code == 0, $"cnn {command} {flag}: exit {code}: {err}");
            Assert.StartsWith($"usage: cnn {command}", output);
            Assert.Contains("\noptions:\n", output);
            Assert.Contains("\nexamples:\n", output);
            Assert.Contains($"\n  cnn {command}", output);
            Assert.Equal("", err);
        }
        Assert.Equal(CliRunner.Run(command, "--help").Out, CliRunner.Run("help", command).Out);
    }

    /// <summary>
    /// An empty value (an unset shell variable: <c>--out "$DIR"</c>) is a usage error for every option that takes a value;
    /// it reached File and Path calls as an ArgumentException (exit 70) until the generated-argument property found it.
    /// </summary>
    [Theory]
    [MemberData(nameof(CommandNames))]
    public void AnEmptyValueIsAUsageErrorForEveryOption(string command)
    {
        foreach (var option in Named(command).Options.Where(o => Opt.KindOf(o) is not OptionKind.Flag))
        {
            var (code, _, err) = CliRunner.Run(command, option.Name, "");
            Assert.True(code == 2, $"cnn {command} {option.Name} '': exit {code}: {err}");
            Assert.Contains($"{option.Name} expects a value; found an empty string", err);
        }
    }

    /// <summary>predict --onnx on a FIFO blocked for ever in ONNX Runtime's open (found by the generated-argument property); now exit 1 at once.</summary>
    [Fact]
    public async Task PredictRefusesAFifoAsItsModel()
    {
        var fifo = P("model.onnx");
        Reliability.Fuzz.Libc.MakeFifo(fifo);
        var run = Task.Run(() => CliRunner.Run("predict", "--onnx", fifo, "--input", P("x.npy"), "--out", P("y.npy")));
        if (await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(30))) != run)
        {
            Reliability.Fuzz.Libc.ReleaseFifoReader(fifo);
            Assert.Fail("predict blocked on a FIFO given as --onnx");
        }
        var (code, _, err) = await run;
        Assert.Equal(1, code);
        Assert.Contains("expected a regular file", err);
    }

    [Fact]
    public void HelpWinsOverAWrongArgument()
    {
        var (code, output, _) = Cnn("run --epochs zero --bogus --help");
        Assert.Equal(0, code);
        Assert.StartsWith("usage: cnn run", output);
    }

    [Theory]
    [MemberData(nameof(CommandNames))]
    public void EveryDeclaredOptionIsInTheHelpAndEveryOptionInTheHelpIsDeclared(string command)
    {
        var c = Named(command);
        var help = c.Help;
        var section = help[help.IndexOf("\noptions:\n", StringComparison.Ordinal)..help.IndexOf("\nexamples:\n", StringComparison.Ordinal)];
        var documented = OptionName().Matches(section).Select(m => m.Groups[1].Value).ToHashSet();
        var declared = c.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).ToHashSet();
        Assert.Empty(declared.Except(documented));
        Assert.Empty(documented.Except(declared));
    }

    [Theory]
    [MemberData(nameof(CommandNames))]
    public void EveryCommandWithModelListsTheWholeZooFromOneSource(string command)
    {
        var c = Named(command);
        if (!c.Options.Any(o => o.Name == "--model")) return;
        var help = Regex.Replace(c.Help, @"\s+", " ");
        foreach (var name in Zoo.Names) Assert.Contains($" {name}", help);
    }

    [Fact]
    public void VersionPrintsTheVersion()
    {
        var (code, output, _) = CliRunner.Run("--version");
        Assert.Equal(0, code);
        Assert.Equal($"cnn {CommandLine.Version}", output.TrimEnd());
        Assert.StartsWith(typeof(Zoo).Assembly.GetName().Version!.ToString(3), CommandLine.Version);
        Assert.Equal(2, CliRunner.Run("--version", "train").Code);
    }

    [Theory]
    [InlineData("train --epocs 3", "cnn train: unknown option '--epocs'; did you mean '--epochs'?")]
    [InlineData("train --batchsize 3", "cnn train: unknown option '--batchsize'; did you mean '--batch-size'?")]
    [InlineData("summary --jsno", "cnn summary: unknown option '--jsno'; did you mean '--json'?")]
    [InlineData("predict --ouput y.npy", "cnn predict: unknown option '--ouput'; did you mean '--output'?")]
    [InlineData("verify --seeds=2", "cnn verify: unknown option '--seeds'; did you mean '--seed'?")]
    [InlineData("train --early 2", "cnn train: unknown option '--early'; did you mean '--early-stopping'?")]
    [InlineData("trian --epochs 3", "cnn: unknown command 'trian'; did you mean 'train'?")]
    [InlineData("lr-fnd", "cnn: unknown command 'lr-fnd'; did you mean 'lr-find'?")]
    [InlineData("sumary", "cnn: unknown command 'sumary'; did you mean 'summary'?")]
    [InlineData("train --model lenet", "cnn train: --model: unknown network 'lenet'; did you mean 'lenet5'? known: simple-convnet, lenet5,")]
    [InlineData("forward --mode evl", "cnn forward: --mode expects one of eval, train; found 'evl'; did you mean 'eval'?")]
    public void AMistypedNameSuggestsTheRightOne(string line, string message)
    {
        var (code, output, err) = Cnn(line);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var lines = err.TrimEnd().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith(message, lines[0]);
        Assert.Contains("--help", lines[1]);
    }

    [Fact]
    public void NothingCloseIsNotSuggestedAndTheTestCommandIsNeverSuggested()
    {
        var far = Cnn("train --zzzzzzzz 1");
        Assert.Equal(2, far.Code);
        Assert.StartsWith("cnn train: unknown option '--zzzzzzzz'\n", far.Err);
        var hidden = Cnn("internal-crash-tst");
        Assert.Equal(2, hidden.Code);
        Assert.DoesNotContain("did you mean", hidden.Err);
        Assert.DoesNotContain("internal-crash-test", CliRunner.Run("--help").Out);
    }

    [Theory]
    [MemberData(nameof(CommandNames))]
    public void AnUnknownOptionExitsWith2OnEveryCommand(string command)
    {
        var (code, output, err) = CliRunner.Run(command, "--no-such-option", "1");
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith($"cnn {command}: unknown option '--no-such-option'", err);
        Assert.Equal(2, err.TrimEnd().Split('\n').Length);
    }

    [Fact]
    public void ThreadCountsAreBoundedTo4xTheProcessors()
    {
        int max = 4 * Environment.ProcessorCount;
        foreach (var (line, range) in new[]
        {
            ($"predict --onnx m.onnx --data mnist --threads {max + 1}", $"0 to {max}"),
            ("predict --onnx m.onnx --data mnist --threads 100000", $"0 to {max}"),
            ("predict --onnx m.onnx --data mnist --threads -1", $"0 to {max}"),
            ($"bench --quick --threads {max + 1}", $"1 to {max}"),
            ("bench --quick --threads 0", $"1 to {max}"),
        })
        {
            var (code, _, err) = Cnn(line);
            Assert.True(code == 2, $"{line}: exit {code}: {err}");
            var value = line.Split(' ')[^1];
            Assert.StartsWith($"--threads expects an integer from {range}; found '{value}'", err[(err.IndexOf(": ", StringComparison.Ordinal) + 2)..]);
        }
        // The bound itself is allowed: the parse passes and the command fails later, on the missing model (exit 1).
        var atBound = Cnn($"predict --onnx {P("missing.onnx")} --data mnist --threads {max}");
        Assert.Equal(1, atBound.Code);
        Assert.StartsWith("cnn: error:", atBound.Err);
    }

    [Theory]
    [InlineData("train --batch-size 2000000000", "--batch-size expects an integer from 1 to 65536; found '2000000000'")]
    [InlineData("train --epochs 99999999999999999999", "--epochs expects an integer from 1 to 100000")]
    [InlineData("train --limit 0", "--limit expects an integer from 1 to 2147483647; found '0'")]
    [InlineData("train --seed 2147483648", "--seed expects an integer from -2147483648 to 2147483647; found '2147483648'")]
    [InlineData("train --lr 1e30", "--lr expects a number above 0 and at most 1000; found '1e30'")]
    [InlineData("train --lr NaN", "--lr expects a number above 0 and at most 1000; found 'NaN'")]
    [InlineData("run --train 70000", "--train expects an integer from 1 to 60000; found '70000'")]
    [InlineData("run --batch-size 0", "--batch-size expects an integer from 1 to 65536; found '0'")]
    [InlineData("lr-find --steps 1", "--steps expects an integer from 2 to 100000; found '1'")]
    [InlineData("lr-find --end 1e9", "--end expects a number above 0 and at most 1000000; found '1e9'")]
    [InlineData("verify --batch-size 100000", "--batch-size expects an integer from 1 to 256; found '100000'")]
    [InlineData("predict --onnx m.onnx --data mnist --batch-size 2000000000", "--batch-size expects an integer from 1 to 65536")]
    [InlineData("export --model lenet5 --out x.onnx --opset 99", "--opset expects an integer from")]
    [InlineData("gradcam --index -1", "--index expects an integer from 0 to 2147483647; found '-1'")]
    public void NumbersOutsideTheirRangeAreUsageErrorsNamingTheRange(string line, string message)
    {
        var (code, output, err) = Cnn(line);
        Assert.True(code == 2, $"{line}: exit {code}: {err}");
        Assert.Equal("", output);
        Assert.Contains(message, err.Split('\n')[0]);
    }

    [Fact]
    public void OlderSpellingsAreAliasesOfTheUnifiedNames()
    {
        Assert.Contains(Named("predict").Options, o => o.Name == "--onnx" && o.Aliases.Contains("--model"));
        Assert.Contains(Named("predict").Options, o => o.Name == "--out" && o.Aliases.Contains("--output"));
        Assert.Contains(Named("verify").Options, o => o.Name == "--batch-size" && o.Aliases.Contains("--batch"));
        // One spelling per concept: no command declares a second name for these.
        foreach (var c in CommandLine.Commands)
        foreach (var o in c.Options.Where(o => o.Name is "--out" or "--seed" or "--force" or "--checkpoint" or "--batch-size" or "--model"))
            Assert.True(o.Name != "--model" || !o.Aliases.Any(), $"{c.Name}: {o.Name}");
        var spellings = CommandLine.Commands.SelectMany(c => c.Options).SelectMany(o => o.Aliases.Prepend(o.Name)).ToHashSet();
        Assert.DoesNotContain("--output-dir", spellings);
        Assert.DoesNotContain("--outdir", spellings);
    }

    [Fact]
    public void ResumeTakesTheNetworkFromTheCheckpointAndRefusesAConflictingModel()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), 60, 20);
        var first = Cnn($"train --model lenet5 --data idx:{data} --epochs 1 --batch-size 20 --quiet --out {P("run")}");
        Assert.True(first.Code == 0, first.Err);
        var cp = P("run", TrainCommand.CheckpointFile);
        var resumed = Cnn($"train --resume {cp} --epochs 2 --batch-size 20 --quiet");
        Assert.True(resumed.Code == 0, resumed.Err);
        var saved = Checkpoint.Load(cp);
        Assert.Equal("lenet5", saved.Metadata[Model.NetworkKey]);
        Assert.Equal(3, saved.Epoch);
        var conflict = Cnn($"train --resume {cp} --model simple-convnet --epochs 3 --quiet");
        Assert.Equal(1, conflict.Code);
        Assert.Contains("is of network 'lenet5'; --model is 'simple-convnet'", conflict.Err);
    }

    [Fact]
    public void AnUnexpectedExceptionIsOneLineSayingItIsABugWithExit70()
    {
        var (code, output, err) = CliRunner.Run("internal-crash-test", "--kind", "bug");
        Assert.Equal(70, code);
        Assert.Equal("", output);
        var lines = err.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("cnn: internal error (a bug in cnn, please report it): System.InvalidOperationException: a test failure in a command", lines[0]);
        Assert.DoesNotContain(" at ", err);

        var debug = CliRunner.Run("internal-crash-test", "--kind", "bug", "--debug");
        Assert.Equal(70, debug.Code);
        Assert.Contains("   at Cnn.Cli.CrashTestCommand", debug.Err);
    }

    [Theory]
    [InlineData("io", "cnn: error: The disk is full while writing '/tmp/cnn-crash-test/out.npy'.")]
    [InlineData("denied", "cnn: error: Access to the path '/root/cnn-crash-test' is denied.")]
    public void AnIOErrorThatEscapesIsAUserErrorNamingThePath(string kind, string message)
    {
        var (code, _, err) = CliRunner.Run("internal-crash-test", "--kind", kind);
        Assert.Equal(1, code);
        Assert.Equal(message, err.TrimEnd());
    }

    [Fact]
    public void AnUnwritableOutputIsExit1NotACrash()
    {
        // A real path a user reaches: the output folder's parent is a file, so creating it fails with an IOException.
        File.WriteAllText(P("file"), "x");
        var (code, _, err) = Cnn($"params --model lenet5 --out {P("file", "sub")}");
        Assert.Equal(1, code);
        Assert.StartsWith("cnn: error:", err);
        Assert.Contains(P("file"), err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Theory]
    [InlineData("bug", false, false)]
    [InlineData("bug", true, false)]
    [InlineData("bug", false, true)]
    [InlineData("thread", false, false)]
    [InlineData("thread", true, false)]
    public async Task InAProcessEveryUnexpectedExceptionEndsWithExit70NeverAnAbort(string kind, bool debugFlag, bool debugVariable)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(typeof(TrainCommand).Assembly.Location);
        foreach (var a in new[] { "internal-crash-test", "--kind", kind }.Concat(debugFlag ? ["--debug"] : [])) psi.ArgumentList.Add(a);
        if (debugVariable) psi.Environment[CommandLine.DebugVariable] = "1";
        else psi.Environment.Remove(CommandLine.DebugVariable);
        using var p = Process.Start(psi)!;
        var errTask = p.StandardError.ReadToEndAsync();
        var output = await p.StandardOutput.ReadToEndAsync();
        var err = await errTask;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(timeout.Token);
        Assert.Equal(70, p.ExitCode);
        Assert.Equal("", output);
        var lines = err.TrimEnd().Split('\n');
        Assert.StartsWith("cnn: internal error (a bug in cnn, please report it): System.InvalidOperationException: a test failure", lines[0]);
        if (debugFlag || debugVariable) Assert.Contains("   at Cnn.Cli.CrashTestCommand", err);
        else Assert.Single(lines);
    }

    [GeneratedRegex(@"(?<![\w-])(--[a-z][a-z0-9-]*)")]
    private static partial Regex OptionName();
}
