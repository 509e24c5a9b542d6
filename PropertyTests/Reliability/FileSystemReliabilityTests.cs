using System.Diagnostics;
using Cnn.Cli;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Tests.Cli;
using Xunit;

namespace Cnn.Tests.Reliability;

/// <summary>Issue 15, the file-system parts: what --force may replace, run folders, their lock and leftovers, resume checks.</summary>
[Collection(ConsoleCollection.Name)]
public class FileSystemReliabilityTests
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cnn-fs-").FullName;

    private string P(params string[] parts) => Path.Combine([_dir, .. parts]);

    private static (int Code, string Out, string Err) Cnn(params string[] args) => CliRunner.Run(args);

    private string Input()
    {
        var x = P("x.npy");
        if (!File.Exists(x)) Npy.Write(x, Tensor.Zeros(1, 1, 28, 28));
        return x;
    }

    private static void Sh(string command)
    {
        using var p = Process.Start(new ProcessStartInfo("sh", ["-c", command]) { RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"'{command}' failed: {p.StandardError.ReadToEnd()}");
    }

    /// <summary>A trained run folder from the small IDX digits (one epoch).</summary>
    private string Run(string name, params string[] extra)
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), 100, 20);
        var r = Cnn(["train", "--data", "idx:" + data, "--epochs", "1", "--batch-size", "25", "--quiet", "--out", P(name), .. extra]);
        Assert.True(r.Code == 0, r.Err);
        return P(name);
    }

    private string[] Train(string outDir, params string[] extra) =>
        ["train", "--data", "idx:" + P("digits"), "--epochs", "2", "--batch-size", "25", "--quiet", "--out", outDir, .. extra];

    [Fact]
    public void ForceDoesNotReplaceAFifoOrADeviceAndKeepsAFilesMode()
    {
        if (OperatingSystem.IsWindows()) return;
        Sh($"mkfifo '{P("fifo")}'");
        var (code, _, err) = Cnn("forward", "--input", Input(), "--out", P("fifo"), "--force");
        Assert.Equal(1, code);
        Assert.Contains("named pipe", err);
        Assert.Equal(FileKind.Fifo, FileKinds.OfLink(P("fifo")));
        if (Environment.UserName == "root")
        {
            Sh($"mknod -m 666 '{P("dn")}' c 1 3");
            Assert.Equal(1, Cnn("forward", "--input", Input(), "--out", P("dn"), "--force").Code);
            Assert.Equal(FileKind.CharacterDevice, FileKinds.OfLink(P("dn")));
        }
        File.WriteAllText(P("private.npy"), "x");
        File.SetUnixFileMode(P("private.npy"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal(0, Cnn("forward", "--input", Input(), "--out", P("private.npy"), "--force").Code);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(P("private.npy")));
        Assert.Equal(1, Npy.Read(P("private.npy")).Shape[0]);
    }

    [Fact]
    public void ASymbolicLinkToAFileHasItsTargetReplacedAndALinkToAFolderIsRefused()
    {
        if (OperatingSystem.IsWindows()) return;
        File.WriteAllText(P("target.npy"), "old");
        File.CreateSymbolicLink(P("link.npy"), P("target.npy"));
        Assert.Equal(0, Cnn("forward", "--input", Input(), "--out", P("link.npy"), "--force").Code);
        Assert.Equal(FileKind.SymbolicLink, FileKinds.OfLink(P("link.npy")));
        Assert.Equal(1, Npy.Read(P("target.npy")).Shape[0]);
        Directory.CreateDirectory(P("folder"));
        File.CreateSymbolicLink(P("dirlink.npy"), P("folder"));
        var ex = Assert.Throws<CnnException>(() => AtomicFile.WriteAllBytes(P("dirlink.npy"), [1]));
        Assert.Contains("symbolic link to a folder", ex.Message);
    }

    [Fact]
    public void AnOutputFolderThatCannotBeMadeIsAnErrorNamingIt()
    {
        File.WriteAllText(P("f"), "");
        var sub = P("f", "sub");
        foreach (var args in new[]
                 {
                     new[] { "params", "--out", sub },
                     new[] { "grad", "--input", Input(), "--labels", Labels(), "--out", sub },
                     new[] { "train", "--limit", "10", "--epochs", "1", "--quiet", "--out", sub },
                 })
        {
            var (code, _, err) = Cnn(args);
            Assert.True(code == 1, $"{args[0]}: exit {code}: {err}");
            Assert.Contains(sub, err);
        }
    }

    private string Labels()
    {
        Npy.Write(P("y.npy"), NpyArray.FromIntegers(NpyType.Int64, [0L], new Shape(1)));
        return P("y.npy");
    }

    [Fact]
    public void ResumingIntoAnotherNonEmptyFolderNeedsForce()
    {
        var run = Run("a");
        Directory.CreateDirectory(P("other"));
        File.WriteAllText(P("other", "note.txt"), "keep");
        var (code, _, err) = Cnn(Train(P("other"), "--resume", Path.Combine(run, "checkpoint.safetensors")));
        Assert.Equal(1, code);
        Assert.Contains("not the folder of the checkpoint", err);
        Assert.False(File.Exists(P("other", "checkpoint.safetensors")));
        Assert.Equal(0, Cnn(Train(run, "--resume", Path.Combine(run, "checkpoint.safetensors"))).Code);
    }

    [Fact]
    public void ResumeComparesEveryRecordedOptionAndRecordsDeliberateChanges()
    {
        var run = Run("a");
        var cp = Path.Combine(run, "checkpoint.safetensors");
        var (code, _, err) = Cnn(Train(run, "--resume", cp, "--lr", "0.5", "--seed", "7"));
        Assert.Equal(1, code);
        Assert.Contains("--lr: recorded 0.001, given 0.5", err);
        Assert.Contains("--seed: recorded 1, given 7", err);
        Assert.Single(err.Trim().Split('\n'));
        var (code2, _, err2) = Cnn(Train(run, "--resume", cp, "--optimizer", "momentum"));
        Assert.Equal(1, code2);
        Assert.Contains("--optimizer: recorded adam, given momentum", err2);
        // A deliberate optimizer change still cannot reuse Adam's state: an error naming the slots, not a crash.
        var (code3, _, err3) = Cnn(Train(run, "--resume", cp, "--optimizer", "momentum", "--allow-changes"));
        Assert.Equal(1, code3);
        Assert.Contains("velocity", err3);
        Assert.Equal(0, Cnn(Train(run, "--resume", cp, "--lr", "0.002", "--allow-changes")).Code);
        var meta = Checkpoint.Load(cp).Metadata;
        Assert.Equal("0.002", meta["lr"]);
        Assert.Contains("--lr: recorded 0.001, given 0.002", meta[ResumeOptions.ChangesKey]);
    }

    [Fact]
    public void DamagedOptimizerStateAndStepCountsAreErrorsNamingTheCheckpoint()
    {
        var run = Run("a");
        var cp = Checkpoint.Load(Path.Combine(run, "checkpoint.safetensors"));
        var noOpt = P("noopt.safetensors");
        Checkpoint.Save(noOpt, cp with { OptimizerState = cp.OptimizerState with { Slots = System.Collections.Immutable.ImmutableSortedDictionary<string, Parameters>.Empty } });
        var (code, _, err) = Cnn(Train(P("r1"), "--resume", noOpt));
        Assert.Equal(1, code);
        Assert.Contains("slots [none]; adam needs [m, v]", err);

        var m = cp.OptimizerState.Slots["m"];
        var first = m.Entries.First().Key;
        var badSlot = P("badslot.safetensors");
        Checkpoint.Save(badSlot, cp with { OptimizerState = cp.OptimizerState with { Slots = cp.OptimizerState.Slots.SetItem("m", m.With(first, Tensor.Zeros(1))) } });
        var (code2, _, err2) = Cnn(Train(P("r2"), "--resume", badSlot));
        Assert.Equal(1, code2);
        Assert.Contains($"optimizer slot 'm' of '{first}' has shape [1]", err2);

        var bigStep = P("bigstep.safetensors");
        Checkpoint.Save(bigStep, cp with { OptimizerState = cp.OptimizerState with { Step = long.MaxValue } });
        var ex = Assert.Throws<Cnn.Core.FormatException>(() => Checkpoint.Load(bigStep));
        Assert.Contains("metadata 'step'", ex.Message);
    }

    [Fact]
    public void ASecondRunIntoALockedFolderFailsNamingTheHolder()
    {
        Directory.CreateDirectory(P("busy"));
        using (FolderLock.Acquire(P("busy")))
        {
            var (code, _, err) = Cnn(Train(P("busy")));
            CliRunner.WriteIdxDigits(P("digits"), 100, 20);
            Assert.Equal(1, code);
            Assert.Contains($"process {Environment.ProcessId}", err);
            Assert.Contains(P("busy"), err);
        }
        CliRunner.WriteIdxDigits(P("digits"), 100, 20);
        Assert.Equal(0, Cnn(Train(P("busy"))).Code);
    }

    [Fact]
    public async Task TwoProcessesTrainingIntoOneEmptyFolderDoNotBothSucceed()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), 400, 40);
        Directory.CreateDirectory(P("shared"));
        string[] args = ["train", "--data", "idx:" + data, "--epochs", "2", "--batch-size", "25", "--quiet", "--out", P("shared")];
        using var a = CliRunner.Start(args);
        using var b = CliRunner.Start(args);
        var errs = await Task.WhenAll(a.StandardError.ReadToEndAsync(), b.StandardError.ReadToEndAsync());
        await Task.WhenAll(a.StandardOutput.ReadToEndAsync(), b.StandardOutput.ReadToEndAsync());
        await a.WaitForExitAsync();
        await b.WaitForExitAsync();
        Assert.Equal(new[] { 0, 1 }, new[] { a.ExitCode, b.ExitCode }.Order());
        var loser = a.ExitCode == 1 ? errs[0] : errs[1];
        Assert.Contains(P("shared"), loser);
    }

    [Fact]
    public void TemporariesOfDeadProcessesAreRemovedOnTheNextRunInTheFolder()
    {
        var run = Run("a");
        var dead = Path.Combine(run, ".checkpoint.safetensors.2147483646.0123456789abcdef0123456789abcdef.tmp");
        var live = Path.Combine(run, $".checkpoint.safetensors.{Environment.ProcessId}.fedcba9876543210fedcba9876543210.tmp");
        File.WriteAllText(dead, "half");
        File.WriteAllText(live, "in progress");
        Assert.Equal(0, Cnn(Train(run, "--resume", Path.Combine(run, "checkpoint.safetensors"))).Code);
        Assert.False(File.Exists(dead));
        Assert.True(File.Exists(live));
    }

    [Fact]
    public void ParamsWritesOnlyTheNetworksTensorsAndRefusesOthers()
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 1);
        var meta = new Dictionary<string, string> { ["network"] = "simple-convnet" };
        SafeTensors.Write(P("nul.safetensors"), p.With("conv1\0x", Tensor.Zeros(1)), meta);
        var (code, _, err) = Cnn("params", "--checkpoint", P("nul.safetensors"), "--out", P("pn"));
        Assert.Equal(1, code);
        Assert.Contains("conv1\\u0000x", err);
        var many = Enumerable.Range(0, 1000).Aggregate(p, (acc, i) => acc.With($"z{i}", Tensor.Zeros(0)));
        SafeTensors.Write(P("many.safetensors"), many, meta);
        Assert.Equal(1, Cnn("params", "--checkpoint", P("many.safetensors"), "--out", P("pm")).Code);
        Assert.False(Directory.Exists(P("pm")) && Directory.EnumerateFiles(P("pm")).Any());
        var ex = Assert.Throws<CnnException>(() => TensorFiles.Write(P("pc"), p.With("conv1.weight", Tensor.Zeros(1))));
        Assert.Contains("would both be written to 'conv1.weight.npy'", ex.Message);
    }

    [Fact]
    public void ShowDoesNotReadWhatTheCheckpointsMetadataNames()
    {
        var net = Zoo.SimpleConvNet();
        var cp = P("meta.safetensors");
        SafeTensors.Write(cp, Initializer.Init(net, 1), new Dictionary<string, string> { ["network"] = "simple-convnet", ["data"] = "idx:/etc" });
        var (code, stdout, err) = Cnn("show", "--checkpoint", cp, "--out", P("pictures"));
        Assert.True(code == 0, err);
        Assert.Contains("pass --data", stdout);
        Assert.Single(Directory.GetFiles(P("pictures")));
    }
}
