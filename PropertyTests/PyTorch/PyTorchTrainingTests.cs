using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Dsl.PyTorch;
using Cnn.Tests.Cli;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.PyTorch;

/// <summary>
/// The generated training script, run by python3-torch on one process and under <c>torch.distributed.run</c> on two (gloo,
/// on the loopback interface), against <c>Trainer.Fit</c> over the same global batches: the checkpoint it writes holds
/// our parameters, optimizer slots and batch-norm statistics to float32 rounding, sits at the same position, and is resumed
/// by the trainer and checked by <c>cnn verify</c>. The script shares nothing with the trainer but the recipe (orders, rates,
/// dropout keys) the writer computed: gradients come from PyTorch's autograd, batch-norm statistics from all processes;
/// auxiliary heads add their weighted losses to the total in both.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class PyTorchTrainingTests(ITestOutputHelper output)
{
    /// <summary>Largest difference over the largest element, per tensor: the bound for 20 steps.</summary>
    private const double Tolerance = 1e-5;

    [PyTorchFact]
    public void Torchrun_on_two_processes_trains_lenet5_as_our_trainer_does_and_cnn_resumes_and_verifies_it()
    {
        var net = Zoo.LeNet5();
        var data = Digits(net.InputShape, 10, 320, seed: 1);
        // 320 samples in batches of 32: two epochs of ten steps.
        var options = new TrainOptions(Epochs: 2, BatchSize: 32, new Sgd(0.05f, 0.9f), Seed: 5);
        var p0 = Initializer.Init(net, 3);
        var dir = Directory.CreateTempSubdirectory("pytorch-lenet5");
        try
        {
            var torchPath = Path.Combine(dir.FullName, "trained.safetensors");
            var theirs = TrainInPyTorch(net, p0, data, options, dir.FullName, processes: 2, extraArgs: [], new Dictionary<string, string> { ["network"] = "lenet5" });
            var ours = Trainer.Fit(net, p0, data, options);
            Assert.Equal((3, 0, 20L), (theirs.Epoch, theirs.Batch, theirs.Step));
            Assert.Equal("lenet5", theirs.Metadata["network"]);
            AssertSame(ours.Checkpoint, theirs, Tolerance);

            // The trainer continues the PyTorch run for a third epoch as it continues its own.
            var longer = options with { Epochs = 3 };
            var resumed = Trainer.Fit(net, p0, data, longer, resume: theirs);
            var uninterrupted = Trainer.Fit(net, p0, data, longer);
            Assert.Equal(30L, resumed.Checkpoint.Step);
            AssertSame(uninterrupted.Checkpoint, resumed.Checkpoint, 2 * Tolerance);

            var (code, text, err) = CliRunner.Run("verify", "--checkpoint", torchPath);
            output.WriteLine(text);
            Assert.True(code == 0, text + err);
        }
        finally { dir.Delete(true); }
    }

    [PyTorchFact]
    public void Torchrun_shares_batch_norm_statistics_dropout_masks_and_the_mean_squared_error_across_processes()
    {
        var net = Network.Create(new Serial(
            new Conv2d(4, 3, 3, PadH: 1, PadW: 1), new BatchNorm(), new Relu(), new MaxPool2d(2, 2, 2, 2), new Flatten(),
            new Dropout(0.3f), new Dense(12), new BatchNorm(0.2f), new Relu(), new Dropout(0.2f), new Dense(4)), new Shape(1, 8, 8));
        // 61 samples in batches of 16: the last batch of 13 splits 7 and 6 between the processes.
        var data = Digits(net.InputShape, 4, 61, seed: 2);
        // Mean squared error on one-hot labels: its mean runs over the classes too, which the processes' shares must respect.
        var options = new TrainOptions(Epochs: 2, BatchSize: 16, new Sgd(0.1f, 0.9f, Nesterov: true) { WeightDecay = 1e-3f }, Seed: 7,
            Loss: LossFunction.MeanSquaredError, Schedule: Schedule.OneCycle());
        var p0 = Initializer.Init(net, 4);
        var dir = Directory.CreateTempSubdirectory("pytorch-bn");
        try
        {
            var theirs = TrainInPyTorch(net, p0, data, options, dir.FullName, processes: 2, extraArgs: [], null);
            var ours = Trainer.Fit(net, p0, data, options);
            Assert.Equal((3, 0, 8L), (theirs.Epoch, theirs.Batch, theirs.Step));
            AssertSame(ours.Checkpoint, theirs, Tolerance, BiasesBeforeBatchNorm(net));
        }
        finally { dir.Delete(true); }
    }

    [PyTorchFact]
    public void One_process_trains_with_adam_a_frozen_stem_and_nll_and_continues_its_own_checkpoint()
    {
        var net = Network.Create(new Serial(
            new Freeze(new Serial(new Conv2d(3, 3, 3), new Relu()).Named("stem")), new Flatten(),
            new Dense(8), new Elu(), new Dropout(0.5f), new Dense(4), new LogSoftmax()), new Shape(1, 6, 6));
        var data = Digits(net.InputShape, 4, 40, seed: 3);
        var options = new TrainOptions(Epochs: 2, BatchSize: 8, new Adam(1e-2f) { WeightDecay = 1e-3f }, Seed: 9, Loss: LossFunction.NegativeLogLikelihood);
        var p0 = Initializer.Init(net, 5);
        var dir = Directory.CreateTempSubdirectory("pytorch-adam");
        try
        {
            // Three steps, then the rest from the checkpoint of those three.
            var first = TrainInPyTorch(net, p0, data, options, dir.FullName, processes: 1, extraArgs: ["--steps", "3", "--out", Path.Combine(dir.FullName, "three.safetensors")], null);
            Assert.Equal((1, 3, 3L), (first.Epoch, first.Batch, first.Step));
            var theirs = RunScript(dir.FullName, 1, ["--weights", Path.Combine(dir.FullName, "three.safetensors")]);
            var ours = Trainer.Fit(net, p0, data, options);
            Assert.Equal((3, 0, 10L), (theirs.Epoch, theirs.Batch, theirs.Step));
            AssertSame(ours.Checkpoint, theirs, Tolerance);
            foreach (var path in net.Leaves.Where(l => l.Frozen).SelectMany(l => l.ParameterSpecs()).Select(s => s.Path))
                Assert.Equal(p0[path].ToArray(), theirs.Parameters[path].ToArray());
        }
        finally { dir.Delete(true); }
    }

    [PyTorchFact]
    public void One_process_trains_a_network_with_auxiliary_heads_adding_their_weighted_losses_as_our_trainer_does()
    {
        var net = Network.Create(new Serial(
            new Conv2d(4, 3, 3), new Relu(),
            new AuxiliaryHead(new Serial(new Flatten(), new Dense(4)), 0.3f).Named("aux1"),
            new MaxPool2d(2, 2, 2, 2),
            new AuxiliaryHead(new Serial(new Flatten(), new Dense(6), new Relu(), new Dense(4)), 0.5f).Named("aux2"),
            new Flatten(), new Dense(4)), new Shape(1, 8, 8));
        var data = Digits(net.InputShape, 4, 48, seed: 5);
        var options = new TrainOptions(Epochs: 2, BatchSize: 16, new Sgd(0.05f, 0.9f), Seed: 11);
        var p0 = Initializer.Init(net, 6);
        var dir = Directory.CreateTempSubdirectory("pytorch-aux");
        try
        {
            var theirs = TrainInPyTorch(net, p0, data, options, dir.FullName, processes: 1, extraArgs: [], null);
            var ours = Trainer.Fit(net, p0, data, options);
            Assert.Equal((3, 0, 6L), (theirs.Epoch, theirs.Batch, theirs.Step));
            AssertSame(ours.Checkpoint, theirs, Tolerance);
            // The heads' own weights moved: their weighted losses reached them, as they reach ours.
            foreach (var path in new[] { "aux1/head/dense1/weight", "aux2/head/dense2/weight" })
                Assert.NotEqual(p0[path].ToArray(), theirs.Parameters[path].ToArray());
        }
        finally { dir.Delete(true); }
    }

    private TrainingCheckpoint TrainInPyTorch(Network net, Parameters p0, LabeledData data, TrainOptions options, string dir, int processes,
        string[] extraArgs, IReadOnlyDictionary<string, string>? metadata)
    {
        PyTorchExport.Write(net, p0, Initializer.InitState(net), dir,
            new PyTorchExportOptions { Training = options, TrainingData = data, Metadata = metadata });
        return RunScript(dir, processes, extraArgs);
    }

    /// <summary>Runs train.py (under torch.distributed.run for several processes) and loads the checkpoint it wrote.</summary>
    private TrainingCheckpoint RunScript(string dir, int processes, string[] extraArgs)
    {
        var python = PythonTorch.Require();
        var script = Path.Combine(dir, PyTorchExport.TrainingScriptFile);
        string outPath = extraArgs.Contains("--out") ? extraArgs[Array.IndexOf(extraArgs, "--out") + 1] : Path.Combine(dir, "trained.safetensors");
        var args = processes == 1
            ? new List<string> { script }
            : new List<string> { "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", processes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--master_addr", "127.0.0.1", "--master_port", FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
                // torch 1.13's launcher cannot parse its own defaults ('0') for these under Python 3.11 (Debian 12): ask for
                // each process's standard output in a log file and on the console.
                "--redirects", "1", "--tee", "1", "--log_dir", Path.Combine(dir, "logs"),
                // The launcher looks at its workers every 5 s by default: up to 5 s of waiting after they are done.
                "--monitor_interval", "0.5", script };
        args.AddRange(extraArgs);
        if (!extraArgs.Contains("--out")) args.AddRange(["--out", outPath]);
        var clock = Stopwatch.StartNew();
        var environment = new Dictionary<string, string> { ["GLOO_SOCKET_IFNAME"] = "lo", ["OMP_NUM_THREADS"] = "1" };
        var (code, text) = PythonTorch.Run(python, args, environment, TimeSpan.FromMinutes(5));
        output.WriteLine($"{processes} process(es), {clock.Elapsed.TotalSeconds:F1} s:\n{text}");
        Assert.True(code == 0, text);
        return Checkpoint.Load(outPath);
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>
    /// The biases that feed a training-mode batch norm: their gradient is zero in exact arithmetic (the normalisation
    /// subtracts them again), so what both sides compute, and accumulate in the optimizer's slots, is rounding noise.
    /// </summary>
    private static HashSet<string> BiasesBeforeBatchNorm(Network net) =>
        net.Leaves.Zip(net.Leaves.Skip(1)).Where(pair => pair.Second.Layer is BatchNorm && !pair.Second.Frozen)
            .SelectMany(pair => pair.First.ParameterSpecs()).Where(s => s.Spec.IsBias).Select(s => s.Path).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Parameters, optimizer slots and state of two checkpoints, tensor by tensor, within a relative tolerance. The slots of
    /// <paramref name="noise"/> parameters (whose gradient is zero in exact arithmetic) are compared with the largest element
    /// of their slot over the whole network instead of their own.
    /// </summary>
    private void AssertSame(TrainingCheckpoint expected, TrainingCheckpoint actual, double tolerance, IReadOnlySet<string>? noise = null)
    {
        var rows = new List<(string What, double Relative)>();
        Assert.Equal(expected.Parameters.Paths, actual.Parameters.Paths);
        Assert.Equal(expected.State.Paths, actual.State.Paths);
        Assert.Equal(expected.OptimizerState.Slots.Keys, actual.OptimizerState.Slots.Keys);
        rows.AddRange(expected.Parameters.Paths.Select(p => ("param " + p, PythonTorch.Relative(actual.Parameters[p], expected.Parameters[p]))));
        rows.AddRange(expected.State.Paths.Select(p => ("state " + p, PythonTorch.Relative(actual.State[p], expected.State[p]))));
        foreach (var (slot, values) in expected.OptimizerState.Slots)
        {
            Assert.Equal(values.Paths, actual.OptimizerState.Slots[slot].Paths);
            double largest = values.Entries.Max(kv => kv.Value.Span.ToArray().Max(MathF.Abs));
            rows.AddRange(values.Paths.Select(p => noise?.Contains(p) == true
                ? ($"opt {slot} {p} (noise)", PythonTorch.MaxDifference(actual.OptimizerState.Slots[slot][p], values[p]) / largest)
                : ($"opt {slot} {p}", PythonTorch.Relative(actual.OptimizerState.Slots[slot][p], values[p]))));
        }
        foreach (var (what, relative) in rows) output.WriteLine($"  {what,-36} {relative:E2}");
        var worst = rows.MaxBy(r => r.Relative);
        output.WriteLine($"worst: {worst.What} {worst.Relative:E2}");
        Assert.True(rows.All(r => r.Relative <= tolerance), $"beyond {tolerance:E0}: " + string.Join("; ", rows.Where(r => !(r.Relative <= tolerance)).Select(r => $"{r.What} {r.Relative:E2}")));
    }

    /// <summary>A learnable task: noise, plus a bright pixel at every position whose index is the label modulo the classes.</summary>
    internal static LabeledData Digits(Shape sample, int classes, int count, int seed)
    {
        var rng = new Random(seed);
        var images = new float[count * sample.Size];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = rng.Next(classes);
            for (int j = 0; j < sample.Size; j++)
                images[i * sample.Size + j] = 0.3f * rng.NextSingle() + (j % classes == labels[i] ? 1f : 0f);
        }
        return new LabeledData(Tensor.FromArray(images, sample.PrependBatch(count)), labels, classes);
    }
}
