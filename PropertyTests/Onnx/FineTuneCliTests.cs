using System.Diagnostics;
using System.Globalization;
using Cnn.Cli;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Tests.Cli;
using Xunit;
using Xunit.Abstractions;
using Model = Cnn.Cli.Model;

namespace Cnn.Tests.Onnx;

/// <summary>
/// <c>cnn train --checkpoint</c>: fine-tuning an imported torchvision network end to end (exported by torch at test time,
/// imported with <c>cnn import</c>, every layer but the head frozen, the head replaced by 10 classes, trained on a few hundred
/// digits fitted to its input), and the command's refusals.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class FineTuneCliTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("fine-tune-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// squeezenet1_1 with random weights and 1000 classes, at 32x32: the frozen tensors come out bitwise as imported, the new
    /// 1x1-convolution head (10 filters) trained, the validation loss fell below the surgery's starting point, the run's
    /// checkpoint verifies (im2col, LibTorch, ONNX Runtime), and resuming with another freeze is refused unless allowed.
    /// The accuracy is printed, not asserted: random features carry little.
    /// </summary>
    [TorchvisionTheory]
    [InlineData("squeezenet1_1")]
    public void An_imported_torchvision_network_fine_tunes_with_its_features_frozen_and_a_new_head(string network)
    {
        var clock = Stopwatch.StartNew();
        var exported = TorchvisionImportTests.Export(network, 32, 17, classes: 1000);
        var (imported, run) = (Path.Combine(_dir, "imported.safetensors"), Path.Combine(_dir, "run"));
        try
        {
            var (code, _, error) = CliRunner.Run("import", "--onnx", Path.Combine(exported, "net.onnx"), "--out", imported);
            Assert.True(code == 0, error);
        }
        finally
        {
            Directory.Delete(exported, recursive: true);
        }
        var exportSeconds = clock.Elapsed.TotalSeconds;
        string[] train = ["train", "--checkpoint", imported, "--freeze", Transfer.AllButHead, "--new-head", "10", "--limit", "300", "--epochs", "3",
            "--lr", "0.01", "--seed", "3", "--out", run, "--verbose", "2"];
        var (trainCode, trainOut, trainErr) = CliRunner.Run(train);
        Assert.True(trainCode == 0, trainOut + trainErr);
        Assert.Contains("images [1, 28, 28] fitted to the network's input [3, 32, 32]: bilinear resize, the grey channel replicated to 3", trainOut);
        var trainSeconds = clock.Elapsed.TotalSeconds - exportSeconds;

        var source = Model.Load(imported);
        var tuned = Model.Load(Path.Combine(run, TrainCommand.CheckpointFile));
        var head = Transfer.FindHead(source.Network);
        Assert.Equal(head, tuned.Metadata[FineTune.HeadKey]);
        Assert.Equal(new Shape(10), tuned.Network.OutputShape);
        Assert.Equal(new Shape(10, 512, 1, 1), tuned.Parameters[head + "/weight"].Shape);
        var frozen = source.Parameters.Paths.Where(p => !p.StartsWith(head + "/", StringComparison.Ordinal)).ToList();
        Assert.Equal(frozen.Count + 2, tuned.Parameters.Count);
        Assert.All(frozen, p => Assert.True(source.Parameters[p].Span.SequenceEqual(tuned.Parameters[p].Span), $"frozen '{p}' changed"));
        Assert.Equal(new[] { head + "/bias", head + "/weight" }, Trainer.TrainablePaths(tuned.Network).Order(StringComparer.Ordinal));

        // The starting point: the same surgery with the same seed; the same validation digits, fitted alike.
        var start = Transfer.Prepare(source.Network, source.Parameters, source.State, new TransferOptions([Transfer.AllButHead], 10, Seed: 3));
        Assert.Equal(start.Network, tuned.Network);
        Assert.False(start.Parameters[head + "/weight"].Span.SequenceEqual(tuned.Parameters[head + "/weight"].Span), "the head did not train");
        var validation = InputAdapter.Fit(DataSource.Load("mnist", 3, 300).Validation, tuned.Network.InputShape);
        var before = Trainer.Evaluate(start.Network, start.Parameters, validation, 256, start.State);
        var after = Trainer.Evaluate(tuned.Network, tuned.Parameters, validation, 256, tuned.State);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{network}: validation loss {before.Loss:F4} -> {after.Loss:F4}, accuracy {before.Accuracy:P1} -> {after.Accuracy:P1} on {validation.Count} digits " +
            $"(3 epochs of 300, random features); export and import {exportSeconds:F1} s, fine-tuning {trainSeconds:F1} s"));
        Assert.True(after.Loss < before.Loss, $"the validation loss did not fall: {before.Loss} -> {after.Loss}");

        var (verifyCode, verifyOut, verifyErr) = CliRunner.Run("verify", "--checkpoint", Path.Combine(run, TrainCommand.CheckpointFile));
        Assert.True(verifyCode == 0, verifyOut + verifyErr);

        var checkpoint = Path.Combine(run, TrainCommand.CheckpointFile);
        // Torch's module names are the imported layers' paths: squeezenet's features.0 is the first convolution.
        var (changedCode, _, changedErr) = CliRunner.Run("train", "--resume", checkpoint, "--epochs", "4", "--limit", "300", "--lr", "0.01", "--seed", "3", "--freeze", "features/0", "--verbose", "0");
        Assert.Equal(1, changedCode);
        Assert.Contains($"--freeze: recorded {Transfer.AllButHead}, given features/0", changedErr);
        var (allowedCode, allowedOut, allowedErr) = CliRunner.Run("train", "--resume", checkpoint, "--epochs", "4", "--limit", "300", "--lr", "0.01", "--seed", "3", "--freeze", "features/0",
            "--allow-changes", "--verbose", "0");
        Assert.True(allowedCode == 0, allowedOut + allowedErr);
        var resumed = Model.Load(checkpoint);
        Assert.Contains($"epoch 4: --freeze: recorded {Transfer.AllButHead}, given features/0", resumed.Metadata[ResumeOptions.ChangesKey]);
        Assert.Equal(new[] { "features/0/bias", "features/0/weight" }, resumed.Parameters.Paths.Where(p => !Trainer.TrainablePaths(resumed.Network).Contains(p)));
        Assert.True(tuned.Parameters["features/0/weight"].Span.SequenceEqual(resumed.Parameters["features/0/weight"].Span), "features.0 changed although frozen");
        Assert.False(tuned.Parameters["features/3/squeeze/weight"].Span.SequenceEqual(resumed.Parameters["features/3/squeeze/weight"].Span), "features.3.squeeze did not train once unfrozen");
        output.WriteLine($"total {clock.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>Any checkpoint fine-tunes (here a zoo network's); the surgery options need one, and mistakes are one-line errors naming what is wrong.</summary>
    [Fact]
    public void Fine_tuning_options_are_checked_before_anything_runs()
    {
        var net = Zoo.LeNet5();
        var checkpoint = Path.Combine(_dir, "lenet.safetensors");
        Checkpoint.Save(checkpoint, new TrainingCheckpoint(Initializer.Init(net, 1), Initializer.InitState(net),
            new OptimizerState(0, System.Collections.Immutable.ImmutableSortedDictionary<string, Parameters>.Empty), 1, 0,
            new Dictionary<string, string> { [Model.NetworkKey] = "lenet5" }), net);
        var run = Path.Combine(_dir, "run");

        var (code, _, error) = CliRunner.Run("train", "--freeze", "conv1", "--out", run);
        Assert.Equal(2, code);
        Assert.Contains("--freeze, --new-head and --head need --checkpoint F", error);
        (code, _, error) = CliRunner.Run("train", "--checkpoint", checkpoint, "--model", "lenet5", "--out", run);
        Assert.Equal(2, code);
        Assert.Contains("--model and --checkpoint exclude each other", error);
        (code, _, error) = CliRunner.Run("train", "--checkpoint", checkpoint, "--freeze", "conv9", "--out", run);
        Assert.Equal(1, code);
        Assert.Contains("No layer at path 'conv9'", error);
        Assert.Contains($"`cnn summary --checkpoint {checkpoint}` lists the paths", error);
        (code, _, error) = CliRunner.Run("train", "--checkpoint", checkpoint, "--new-head", "5", "--out", run);
        Assert.Equal(1, code);
        Assert.Contains("gives outputs [5] per example; the data 'mnist' has 10 classes: replace the head with --new-head 10", error);
        Assert.DoesNotContain("   at ", error);

        (code, var trained, error) = CliRunner.Run("train", "--checkpoint", checkpoint, "--freeze", Transfer.AllButHead, "--new-head", "10", "--limit", "100",
            "--epochs", "1", "--out", run, "--force", "--verbose", "0");
        Assert.True(code == 0, trained + error);
        var tuned = Model.Load(Path.Combine(run, TrainCommand.CheckpointFile));
        var original = Initializer.Init(net, 1);
        Assert.All(original.Paths.Where(p => !p.StartsWith("dense3/", StringComparison.Ordinal)),
            p => Assert.True(original[p].Span.SequenceEqual(tuned.Parameters[p].Span), $"frozen '{p}' changed"));
        Assert.Equal(checkpoint, tuned.Metadata[FineTune.SourceKey]);
    }
}
