using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Tests.Cli;
using Xunit;

namespace Cnn.Tests.Reliability;

public class KillDuringCheckpointTests
{
    /// <summary>
    /// A training child process rewrites its checkpoint after every epoch (tiny epochs: a write every few tens of
    /// milliseconds). It is killed with SIGKILL many times: in odd rounds the moment a checkpoint's temporary file
    /// appears (so the kill lands inside a write), in even rounds at a random moment. Every time, the checkpoint on
    /// disk loads whole, and training resumes from it.
    /// </summary>
    [Fact]
    public void TheLatestCheckpointIsWholeAfterEverySigkill()
    {
        var root = Directory.CreateTempSubdirectory("cnn-kill-").FullName;
        var data = CliRunner.WriteIdxDigits(Path.Combine(root, "digits"), train: 100, test: 20);
        var expected = Initializer.Init(Zoo.SimpleConvNet(), 0);
        var rng = new Random(2026);
        int killedWithCheckpoint = 0, interruptedWrites = 0;
        for (int round = 0; round < 10; round++)
        {
            var dir = Path.Combine(root, $"run{round}");
            var ckpt = Path.Combine(dir, "checkpoint.safetensors");
            using var child = CliRunner.Start("train", "--model", "simple-convnet", "--data", "idx:" + data, "--epochs", "100000",
                "--batch-size", "50", "--out", dir, "--quiet");
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (!File.Exists(ckpt) && !child.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(5);
            Assert.True(File.Exists(ckpt), $"round {round}: no checkpoint appeared; the child said: {(child.HasExited ? child.StandardError.ReadToEnd() : "(still running)")}");
            if (round % 2 == 1)
            {
                // Wait for a write in progress: AtomicFile writes to a hidden temporary name beside the target.
                while (!Directory.EnumerateFiles(dir, ".checkpoint.safetensors.*.tmp").Any() && DateTime.UtcNow < deadline) { }
                child.Kill();
                child.WaitForExit();
                // The write may finish between seeing its file and the kill; count the kills that did land inside one.
                if (Directory.EnumerateFiles(dir, ".checkpoint.safetensors.*.tmp").Any()) interruptedWrites++;
            }
            else
            {
                Thread.Sleep(rng.Next(0, 300));
                child.Kill();
                child.WaitForExit();
            }
            var loaded = Checkpoint.Load(ckpt);
            Assert.Equal(expected.Paths, loaded.Parameters.Paths);
            foreach (var path in expected.Paths) Assert.Equal(expected[path].Shape, loaded.Parameters[path].Shape);
            Assert.True(loaded.Epoch >= 2, $"round {round}: checkpoint at epoch {loaded.Epoch}");
            killedWithCheckpoint++;
        }
        Assert.Equal(10, killedWithCheckpoint);
        Assert.True(interruptedWrites >= 1, "no kill landed inside a checkpoint write, so the test proved nothing about atomicity");

        // The last killed run resumes from its checkpoint and finishes.
        var last = Path.Combine(root, "run9");
        var resumedEpoch = Checkpoint.Load(Path.Combine(last, "checkpoint.safetensors")).Epoch;
        var (code, _, err) = CliRunner.Run("train", "--model", "simple-convnet", "--data", "idx:" + data, "--epochs", resumedEpoch.ToString(),
            "--batch-size", "50", "--out", last, "--force", "--resume", Path.Combine(last, "checkpoint.safetensors"), "--quiet");
        Assert.True(code == 0, err);
    }
}
