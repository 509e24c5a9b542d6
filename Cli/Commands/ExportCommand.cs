using System.Globalization;
using Cnn.Onnx;

namespace Cnn.Cli;

/// <summary><c>cnn export</c>: a zoo network (initialised from a seed) or a checkpoint as a validated ONNX file.</summary>
internal static class ExportCommand
{
    public static readonly string Help = $"""
        usage: cnn export (--model NAME [--seed N] | --checkpoint F [--model NAME]) --out FILE.onnx [options]
               cnn export --format pytorch (--model NAME [--seed N] | --checkpoint F) --out DIR [--data SPEC ...]

        Writes the network with its parameters (and batch-norm running statistics) as an ONNX model: one node or
        a few per layer, parameters as initializers, a symbolic batch axis, inference semantics (dropout left out,
        batch normalisation with its running statistics). Before the file is written the model is checked
        structurally and loaded by ONNX Runtime with strict shape inference; the file is written whole or not at
        all. The checkpoint's metadata (network, seed, normalisation, ...) goes into the model's metadata_props.

        With --format pytorch the network leaves for PyTorch: DIR/model.py (a plain torch.nn.Module whose state_dict
        keys are the parameter paths with '/' as '.'; `python3 DIR/model.py DIR/weights.safetensors X.npy Y.npy`
        writes the eval-mode output) and DIR/weights.safetensors (a checkpoint cnn reads back). Given --data, also
        DIR/train.py with the recipe and the data, which trains under `python3 -m torch.distributed.run
        --nproc_per_node N --redirects 1 --tee 1 DIR/train.py` (gloo on CPU, nccl on GPUs) with cnn's batches,
        optimizer arithmetic and dropout masks, and writes a checkpoint that `cnn train --resume` continues.

        options:
          --model NAME       a zoo network (simple-convnet); with --checkpoint, overrides the network it names; one of:
                             {Command.ZooNames(21)}
          --seed N           its initialisation seed (1)
          --checkpoint F     a checkpoint written by cnn train or cnn run
          --out FILE.onnx    the model file (required)
          --force            replace the output file if it exists (else an existing file is an error)
          --opset N          the ai.onnx operator set, {OnnxExporter.MinOpset} to {OnnxExporter.MaxOpset} (17)
          --ir N             the ONNX IR version, {OnnxExporter.MinIrVersion} to {OnnxExporter.MaxIrVersion} (8)
          --name TEXT        the graph's name (the network's name)
          --format F         onnx | pytorch (onnx)
          --data SPEC        pytorch: also write the training script for this data ({DataSource.Help})
          --epochs N         pytorch with --data: passes over the data (1)
          --batch-size N     pytorch with --data: the global batch, split over the processes (100)
          --optimizer NAME   pytorch with --data: {OptimizerChoice.Help} (momentum)
          --lr X             pytorch with --data: the learning rate (0.05; 0.001 for adam and adamw; 0.01 for rmsprop)
          --limit N          pytorch with --data: at most N training examples

        examples:
          cnn export --model resnet18 --seed 3 --out resnet18.onnx
          cnn export --checkpoint runs/x/checkpoint.safetensors --out model.onnx --opset 21 --ir 10
          cnn export --format pytorch --model lenet5 --data mnist --epochs 2 --out lenet-torch
        """;

    public static Command Spec { get; } = new("export", Help, [Opt.Model(), Opt.Seed(), Opt.Checkpoint(), Opt.Out(), Opt.Force(), Opt.Int("opset", OnnxExporter.MinOpset, OnnxExporter.MaxOpset), Opt.Int("ir", OnnxExporter.MinIrVersion, OnnxExporter.MaxIrVersion), Opt.Text("name"), Opt.Choice("format", "onnx", "pytorch"), Opt.Data(), Opt.Epochs(), Opt.BatchSize(), Opt.Choice("optimizer", OptimizerChoice.Names), Opt.LearningRate(), Opt.Limit()], Export);

    private static int Export(Args a)
    {
        if (Command.Choice(a, "format", "onnx", "onnx", "pytorch") == "pytorch") return PyTorch(a);
        foreach (var option in new[] { "data", "epochs", "batch-size", "optimizer", "lr", "limit" })
            if (a.String(option) is not null) throw new UsageException($"--{option} is an option of --format pytorch");
        var output = Command.OutputFile(a, "out") ?? throw new UsageException("--out is required");
        // The ranges (what ONNX Runtime 1.31 implements and loads) are checked by the options' declarations.
        int opset = a.Int("opset", 17);
        int ir = a.Int("ir", 8);
        var graphName = a.String("name");
        bool fromZoo = a.String("checkpoint") is null;
        int seed = a.Int("seed", 1);
        var model = Model.FromArgs(a);

        var metadata = new Dictionary<string, string>(model.Metadata, StringComparer.Ordinal) { [Model.NetworkKey] = model.Name };
        if (fromZoo) metadata["seed"] = seed.ToString(CultureInfo.InvariantCulture);
        var options = new OnnxExportOptions { ModelName = graphName ?? model.Name, Opset = opset, IrVersion = ir, Metadata = metadata };
        OnnxExporter.Export(model.Network, model.Parameters, model.State, output, options);

        long bytes = new FileInfo(output).Length;
        Console.WriteLine(
            $"'{model.Name}' ({model.Parameters.ScalarCount:N0} parameters) -> {output} ({bytes / 1e6:F1} MB): opset {opset}, IR {ir}, " +
            $"input [batch, {string.Join(", ", model.Network.InputShape)}], output [batch, {string.Join(", ", model.Network.OutputShape)}]; " +
            "loaded by ONNX Runtime with strict shape inference");
        int heads = model.Network.Heads.Count;
        if (heads > 0)
            Console.WriteLine($"{heads} auxiliary head{(heads == 1 ? "" : "s")} left out: inference uses the main head (the heads' parameters are not in the file)");
        return 0;
    }

    /// <summary>The network, its weights and, given data, a torchrun training script, for PyTorch.</summary>
    private static int PyTorch(Args a)
    {
        foreach (var option in new[] { "opset", "ir", "name" })
            if (a.String(option) is not null) throw new UsageException($"--{option} is an option of --format onnx");
        var folder = Command.Required(a, "out");
        bool force = a.Flag("force");
        int seed = a.Int("seed", 1);
        var dataSpec = a.String("data");
        int epochs = a.Int("epochs", 1), batchSize = a.Int("batch-size", 100);
        var optName = Command.Choice(a, "optimizer", "momentum", OptimizerChoice.Names);
        float lr = a.Float("lr", OptimizerChoice.DefaultRate(optName));
        int? limit = a.String("limit") is null ? null : a.Int("limit", 0, 1);
        if (dataSpec is null && new[] { "epochs", "batch-size", "optimizer", "lr", "limit" }.FirstOrDefault(o => a.String(o) is not null) is { } stray)
            throw new UsageException($"--{stray} sets the training script's recipe; give --data too");
        if (dataSpec is not null) DataSource.CheckSpec(dataSpec);
        var model = Model.FromArgs(a);
        var options = new Dsl.PyTorch.PyTorchExportOptions { ModelName = model.Name };
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { [Model.NetworkKey] = model.Name };
        if (dataSpec is not null)
        {
            var data = DataSource.Load(dataSpec, seed, limit, model.Network.InputShape);
            if (data.Train.Images.Shape.DropBatch() != model.Network.InputShape)
                throw new Core.CnnException($"The data '{dataSpec}' has examples of shape {data.Train.Images.Shape.DropBatch()}; network '{model.Name}' takes {model.Network.InputShape}.");
            // The keys cnn train records, so that `cnn train --resume` takes the script's checkpoint as one of its own.
            foreach (var (key, value) in ResumeOptions.Recorded(dataSpec, seed, optName, lr, batchSize, augment: false)) metadata[key] = value;
            options = options with
            {
                Training = new Dsl.TrainOptions(epochs, batchSize, OptimizerChoice.Create(optName, lr), seed),
                TrainingData = data.Train,
            };
        }
        Command.OutputFolder(folder, force);
        var written = Dsl.PyTorch.PyTorchExport.Write(model.Network, model.Parameters, model.State, folder, options with { Metadata = metadata });
        Console.WriteLine($"'{model.Name}' ({model.Parameters.ScalarCount:N0} parameters) -> {string.Join(", ", written.Select(Path.GetFileName))} in {folder}");
        return 0;
    }
}
