using System.Collections.Immutable;
using System.Security.Cryptography;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Onnx;

namespace Cnn.Cli;

/// <summary><c>cnn import</c>: an ONNX model (ours or another exporter's, such as torch.onnx) as a checkpoint of a trainable layer tree.</summary>
internal static class ImportCommand
{
    public static readonly string Help = """
        usage: cnn import --onnx MODEL.onnx --out CHECKPOINT.safetensors [--force]

        Reads an ONNX model into a layer tree with its parameters and batch-norm statistics, and writes it as a
        checkpoint: the network as JSON, its parameters and state, and metadata naming the source file and its
        SHA-256. Every command that takes --checkpoint accepts it (summary, forward, export, verify, show, grad,
        params). What real exporters write is read: Identity aliases and shared initializers (each layer gets its
        own copy, listed in the report), shape subgraphs folded to constants, a dynamic batch axis, constant scales
        and shifts folded into the layer before. An operation the tree cannot express is an error naming the node,
        the operation and the reason; nothing is dropped silently.

        options:
          --onnx MODEL.onnx      the model (required)
          --out F.safetensors    the checkpoint (required)
          --force                replace the output file if it exists (else an existing file is an error)

        examples:
          python3 -c "import torch, torchvision; m = torchvision.models.resnet18().eval(); torch.onnx.export(m, torch.randn(1, 3, 64, 64), 'resnet18.onnx', opset_version=17, dynamic_axes={'input': {0: 'batch'}}, input_names=['input'])"
          cnn import --onnx resnet18.onnx --out resnet18.safetensors
          cnn summary --checkpoint resnet18.safetensors
          cnn verify --checkpoint resnet18.safetensors
        """;

    public static Command Spec { get; } = new("import", Help, [Opt.Text("onnx"), Opt.Out(), Opt.Force()], Import);

    /// <summary>The metadata keys of the source file's name and SHA-256.</summary>
    public const string SourceKey = "source", SourceHashKey = "source_sha256";

    private static int Import(Args a)
    {
        var source = Command.Required(a, "onnx");
        var output = Command.OutputFile(a, "out") ?? throw new UsageException("--out is required");
        var imported = OnnxImporter.Import(source);
        string hash;
        using (var stream = File.OpenRead(source)) hash = Convert.ToHexStringLower(SHA256.HashData(stream));
        var name = Path.GetFileNameWithoutExtension(source);
        var metadata = new Dictionary<string, string>(imported.Metadata, StringComparer.Ordinal)
        {
            [Model.NetworkKey] = name,
            [SourceKey] = Path.GetFileName(source),
            [SourceHashKey] = hash,
        };
        var empty = new OptimizerState(0, ImmutableSortedDictionary<string, Parameters>.Empty);
        Checkpoint.Save(output, new TrainingCheckpoint(imported.Parameters, imported.State, empty, 1, 0, metadata), imported.Network);

        var r = imported.Report;
        var net = imported.Network;
        Console.WriteLine($"{source} -> {output}: {net.RootNode.Leaves().Count()} layers, {imported.Parameters.ScalarCount:N0} parameters, " +
            $"input [batch, {string.Join(", ", net.InputShape)}], output [batch, {string.Join(", ", net.OutputShape)}]");
        Console.WriteLine($"read: {r.Aliases.Count} Identity aliases, {r.SharedWeights.Count} shared initializers (one copy per layer), " +
            $"{r.FoldedNodes.Count} nodes folded to constants, {r.Rewrites.Count} rewrites");
        foreach (var (initializer, users) in r.SharedWeights) Console.WriteLine($"  shared '{initializer}': {string.Join(", ", users)}");
        foreach (var rewrite in r.Rewrites.Take(20)) Console.WriteLine($"  {rewrite}");
        if (r.Rewrites.Count > 20) Console.WriteLine($"  ... and {r.Rewrites.Count - 20} more rewrites");
        return 0;
    }
}
