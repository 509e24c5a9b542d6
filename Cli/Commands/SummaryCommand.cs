using System.Text.Json;
using Cnn.Dsl;

namespace Cnn.Cli;

/// <summary><c>cnn summary</c>: the Keras-style table of a zoo network or of a checkpoint's network.</summary>
internal static class SummaryCommand
{
    public static readonly string Help = $$"""
        usage: cnn summary [--model NAME | --checkpoint F | --network F.json] [--json]

        Prints a network's layer table: each layer's path and type, output shape, parameter count and
        multiply-adds per sample, and the totals.

        options:
          --model NAME       a zoo network (simple-convnet), one of:
                             {{Command.ZooNames(21)}}
          --checkpoint F     the network a checkpoint names (its metadata); its parameters are counted too
          --network F.json   a network described in JSON (the DSL's NetworkJson format)
          --json             one JSON object: network, input, layers [{path, type, output, parameters,
                             trainable, macs}], totals {parameters, trainable, non_trainable, macs, activation_bytes}

        examples:
          cnn summary
          cnn summary --model resnet18 --json
          cnn summary --checkpoint runs/x/checkpoint.safetensors
          cnn summary --network my-net.json --json
        """;

    public static Command Spec { get; } = new("summary", Help, [Opt.Model(), Opt.Checkpoint(), Opt.Text("network"), Opt.Json()], Summarise);

    private static int Summarise(Args a)
    {
        var name = a.String("model");
        var checkpoint = a.String("checkpoint");
        var networkFile = a.String("network");
        bool json = a.Flag("json");
        if (networkFile is not null && (name is not null || checkpoint is not null))
            throw new UsageException("--network excludes --model and --checkpoint");
        Model? model = checkpoint is null ? null : Model.Load(checkpoint, name);
        name = model?.Name ?? name ?? networkFile ?? "simple-convnet";
        var net = model?.Network ?? (networkFile is not null ? ReadNetwork(networkFile) : Zoo.ByName(name));
        if (json)
        {
            var t = Summary.Totals(net);
            var doc = new Dictionary<string, object?>
            {
                ["network"] = name,
                ["checkpoint"] = checkpoint,
                ["input"] = net.InputShape.ToArray(),
                ["output"] = net.OutputShape.ToArray(),
                ["layers"] = Summary.Rows(net).Select(r => new Dictionary<string, object>
                {
                    ["path"] = r.Path, ["type"] = r.Type, ["output"] = r.OutputShape.ToArray(),
                    ["parameters"] = r.Parameters, ["trainable"] = r.Trainable, ["macs"] = r.MultiplyAdds,
                }).ToList(),
                ["totals"] = new Dictionary<string, long>
                {
                    ["parameters"] = t.Parameters, ["trainable"] = t.Trainable, ["non_trainable"] = t.NonTrainable,
                    ["macs"] = t.MultiplyAdds, ["activation_bytes"] = t.ActivationBytes,
                },
            };
            if (model is not null) doc["checkpoint_parameters"] = model.Parameters.ScalarCount;
            Console.WriteLine(JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        Console.WriteLine($"Network '{name}'{(checkpoint is null ? "" : $" (checkpoint {checkpoint})")}, input (N, {string.Join(", ", net.InputShape)})");
        Console.Write(Summary.Format(net));
        return 0;
    }

    private static Network ReadNetwork(string path)
    {
        var text = Dsl.IO.InputFile.ReadAllText(path, "network file (--network)", Dsl.IO.NetworkJson.MaxBytes, $"set {Dsl.IO.NetworkJson.MaxBytesVariable} to raise it");
        return Dsl.IO.NetworkJson.Deserialize(text, path);
    }
}
