using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;

namespace Cnn.Cli;

/// <summary><c>cnn grad</c>: the loss and every parameter's gradient for a .npy batch and .npy labels.</summary>
internal static class GradCommand
{
    public static readonly string Help = $"""
        usage: cnn grad (--model NAME [--seed N] | --checkpoint F) --input X.npy --labels Y.npy --out DIR [options]

        Computes the mean loss of a batch and the gradient of every trainable parameter, and writes them to DIR:
          loss.npy             the mean loss over the batch (a float32 scalar, shape ())
          output.npy           the network's output [N, classes]
          input-gradient.npy   dLoss/dInput, the input's shape
          PATH.npy             dLoss/dParameter for each parameter, named as `cnn params` names the parameter
        {TensorFiles.Naming}
        options:
          --model NAME       a zoo network (simple-convnet), one of:
                             {Command.ZooNames(21)}
          --seed N           its initialisation seed (1)
          --checkpoint F     a checkpoint instead
          --input X.npy      the batch [N, ...input shape] (required)
          --labels Y.npy     N integer class labels (required)
          --out DIR          the folder (required); never overwritten if not empty, unless --force
          --force            write into a non-empty --out
          --loss L           cross-entropy (softmax then negative log-likelihood, as torch.nn.CrossEntropyLoss)
                             | nll (the output is log-probabilities) | mse (against one-hot labels) (cross-entropy)
          --mode M           train (dropout on, batch norm with batch statistics) | eval (train)
          --dropout-seed N   the dropout masks' seed in train mode (0)

        examples:
          cnn grad --model simple-convnet --input x.npy --labels y.npy --out /tmp/grads
          cnn grad --checkpoint runs/x/checkpoint.safetensors --input x.npy --labels y.npy --mode eval --out g
        """;

    public static Command Spec { get; } = new("grad", Help, [Opt.Model(), Opt.Seed(), Opt.Checkpoint(), Opt.Text("input"), Opt.Text("labels"), Opt.Out(), Opt.Force(), Opt.Choice("loss", "cross-entropy", "nll", "mse"), Opt.Choice("mode", "eval", "train"), Opt.Int("dropout-seed", int.MinValue, int.MaxValue)], Grad);

    private static int Grad(Args a)
    {
        var input = Command.Required(a, "input");
        var labelsPath = Command.Required(a, "labels");
        var outDir = Command.Required(a, "out");
        bool force = a.Flag("force");
        var loss = Command.Choice(a, "loss", "cross-entropy", "cross-entropy", "nll", "mse") switch
        {
            "nll" => LossFunction.NegativeLogLikelihood,
            "mse" => LossFunction.MeanSquaredError,
            _ => LossFunction.SoftmaxCrossEntropy,
        };
        var mode = Command.Choice(a, "mode", "train", "eval", "train") == "train" ? Mode.Train : Mode.Eval;
        int dropoutSeed = a.Int("dropout-seed", 0);
        var model = Model.FromArgs(a);
        var x = TensorFiles.Input(input, model.Network);
        var labels = Npy.Read(labelsPath);
        if (labels.Shape.Rank != 1 || labels.Size != x.Shape[0])
            throw new CnnException($"The labels '{labelsPath}' have shape {labels.Shape}; expected [{x.Shape[0]}], one per example of the input.");
        var y = labels.ToInt32($"The labels '{labelsPath}'");
        Command.OutputFolder(outDir, force);
        var g = Loss.Gradient(model.Network, model.Parameters, x, y, loss, mode, model.State, dropoutSeed);
        Npy.Write(Path.Combine(outDir, "loss.npy"), Tensor.FromArray([g.Loss], Array.Empty<int>()));
        Npy.Write(Path.Combine(outDir, "output.npy"), g.Output);
        Npy.Write(Path.Combine(outDir, "input-gradient.npy"), g.InputGradient);
        var index = TensorFiles.Write(outDir, g.Gradients);
        TensorFiles.WriteIndex(outDir, index);
        Console.WriteLine($"'{model.Name}' ({mode.ToString().ToLowerInvariant()} mode, {loss}): loss {Numbers.Shortest(g.Loss)} on {x.Shape[0]} example(s); {g.Gradients.Count} gradient(s) in {outDir}");
        return 0;
    }
}
