using System.Globalization;
using Cnn.Onnx;

namespace Cnn.Cli;

/// <summary><c>cnn export</c>: a zoo network (initialised from a seed) or a checkpoint as a validated ONNX file.</summary>
internal static class ExportCommand
{
    public static readonly string Help = $"""
        usage: cnn export (--model NAME [--seed N] | --checkpoint F [--model NAME]) --out FILE.onnx [options]

        Writes the network with its parameters (and batch-norm running statistics) as an ONNX model: one node or
        a few per layer, parameters as initializers, a symbolic batch axis, inference semantics (dropout left out,
        batch normalisation with its running statistics). Before the file is written the model is checked
        structurally and loaded by ONNX Runtime with strict shape inference; the file is written whole or not at
        all. The checkpoint's metadata (network, seed, normalisation, ...) goes into the model's metadata_props.

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

        examples:
          cnn export --model resnet18 --seed 3 --out resnet18.onnx
          cnn export --checkpoint runs/x/checkpoint.safetensors --out model.onnx --opset 21 --ir 10
        """;

    public static Command Spec { get; } = new("export", Help, [Opt.Model(), Opt.Seed(), Opt.Checkpoint(), Opt.Out(), Opt.Force(), Opt.Int("opset", OnnxExporter.MinOpset, OnnxExporter.MaxOpset), Opt.Int("ir", OnnxExporter.MinIrVersion, OnnxExporter.MaxIrVersion), Opt.Text("name")], Export);

    private static int Export(Args a)
    {
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
        return 0;
    }
}
