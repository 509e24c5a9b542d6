using Cnn.Dsl;
using Cnn.Dsl.IO;

namespace Cnn.Cli;

/// <summary><c>cnn forward</c>: a network's output for a .npy input.</summary>
internal static class ForwardCommand
{
    public static readonly string Help = $"""
        usage: cnn forward (--model NAME [--seed N] | --checkpoint F) --input X.npy --out Y.npy [options]

        Runs the network on a batch and writes its output (the logits, before any softmax) as float32 .npy.
        The input is [N, ...input shape] (or one example [...input shape], given a batch axis of 1), any
        numeric type, used as it is: a checkpoint trained with --normalize expects normalised input.

        options:
          --model NAME       a zoo network (simple-convnet), one of:
                             {Command.ZooNames(21)}
          --seed N           its initialisation seed (1)
          --checkpoint F     a checkpoint instead
          --input X.npy      the batch (required)
          --out Y.npy        the output (required)
          --force            replace the output file if it exists (else an existing file is an error)
          --mode M           eval (dropout off, batch norm with running statistics) | train (eval)
          --dropout-seed N   the dropout masks' seed in train mode (0)

        examples:
          cnn forward --model simple-convnet --seed 1 --input x.npy --out y.npy
          cnn forward --checkpoint runs/x/checkpoint.safetensors --input x.npy --out logits.npy
        """;

    public static Command Spec { get; } = new("forward", Help, [Opt.Model(), Opt.Seed(), Opt.Checkpoint(), Opt.Text("input"), Opt.Out(), Opt.Force(), Opt.Choice("mode", "eval", "train"), Opt.Int("dropout-seed", int.MinValue, int.MaxValue)], Forward);

    private static int Forward(Args a)
    {
        var input = Command.Required(a, "input");
        var output = Command.OutputFile(a, "out") ?? throw new UsageException("--out is required");
        var mode = Command.Choice(a, "mode", "eval", "eval", "train") == "train" ? Mode.Train : Mode.Eval;
        int dropoutSeed = a.Int("dropout-seed", 0);
        var model = Model.FromArgs(a);
        var x = TensorFiles.Input(input, model.Network);
        var y = Apply.ForwardInBatches(model.Network, model.Parameters, x, mode, model.State, dropoutSeed);
        Npy.Write(output, y);
        Console.WriteLine($"'{model.Name}' ({mode.ToString().ToLowerInvariant()} mode): {input} {x.Shape} -> {output} {y.Shape}");
        return 0;
    }
}
