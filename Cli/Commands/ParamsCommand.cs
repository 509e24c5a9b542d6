namespace Cnn.Cli;

/// <summary><c>cnn params</c>: every parameter (and state tensor) of a network as .npy files.</summary>
internal static class ParamsCommand
{
    public static readonly string Help = $"""
        usage: cnn params (--model NAME [--seed N] | --checkpoint F) --out DIR [--force]

        Writes every parameter of a zoo network initialised from a seed, or of a checkpoint, for comparison
        with another framework; the network's state (batch-norm running statistics), if any, goes to DIR/state/.
        {TensorFiles.Naming}
        options:
          --model NAME       a zoo network (simple-convnet), one of:
                             {Command.ZooNames(21)}
          --seed N           the initialisation seed (1)
          --checkpoint F     a checkpoint instead (its metadata names the network)
          --out DIR          the folder (required); never overwritten if not empty, unless --force
          --force            write into a non-empty --out

        examples:
          cnn params --model lenet5 --seed 3 --out /tmp/lenet5
          cnn params --checkpoint runs/x/checkpoint.safetensors --out /tmp/trained
          python3 -c "import numpy as np; print(np.load('/tmp/lenet5/conv1.weight.npy').shape)"
        """;

    public static Command Spec { get; } = new("params", Help, [Opt.Model(), Opt.Seed(), Opt.Checkpoint(), Opt.Out(), Opt.Force()], Write);

    private static int Write(Args a)
    {
        var outDir = Command.Required(a, "out");
        bool force = a.Flag("force");
        var model = Model.FromArgs(a);
        Command.OutputFolder(outDir, force);
        var index = TensorFiles.Write(outDir, model.Parameters);
        if (model.State.Count > 0)
        {
            foreach (var (k, v) in TensorFiles.Write(outDir, model.State, "state/")) index["state:" + k] = v;
        }
        TensorFiles.WriteIndex(outDir, index);
        Console.WriteLine($"{model.Parameters.Count} parameter tensor(s) ({model.Parameters.ScalarCount:N0} values) and {model.State.Count} state tensor(s) of '{model.Name}' in {outDir}");
        return 0;
    }
}
