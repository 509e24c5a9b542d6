using System.Globalization;
using System.Text.Json;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;
using Cnn.Onnx;

namespace Cnn.Cli;

/// <summary>
/// <c>cnn verify</c>: one seeded batch through three implementations that share nothing but the weights: the im2col
/// backend, LibTorch (its kernels and its autograd) and, in inference mode, the exported ONNX model in ONNX Runtime.
/// </summary>
internal static class VerifyCommand
{
    /// <summary>The largest --batch-size: a batch of GoogLeNet's 224x224 images this size already needs gigabytes.</summary>
    public const int MaxBatch = 256;

    public static readonly string Help = $"""
        usage: cnn verify [--model NAME | --checkpoint F] [--seed N] [--batch-size N] [--mode eval|train] [--json]

        Runs a seeded batch through the im2col backend and through LibTorch with the same weights, and compares
        the output, the loss (softmax cross-entropy on seeded labels; for a network whose output is not a
        vector of class scores, the inner product of the output with a seeded output gradient), the gradient
        of every parameter and of the input, and the state after the pass (batch-norm running statistics). In
        eval mode it also exports the network to ONNX and compares ONNX Runtime's output, or reports why the
        export does not support the network. Prints one row per quantity: the largest absolute difference,
        the relative difference, the tolerance and PASS or FAIL; exits 1 if any row fails.

        Relative differences: for outputs, losses and state, the largest difference over the largest reference
        element; for gradients, ||im2col - LibTorch|| / ||LibTorch|| (a single element routed differently
        at a ReLU kink or a max-pooling tie moves it little; a wrong rule moves it much). The tolerance is on
        the same scale: a relative part (5e-4 for values; 2e-3 for gradients, 2e-2 when a batch norm runs in
        training mode) plus an absolute part, which for a gradient is 1e-3 (1e-2 with a training-mode batch
        norm) of the largest root-mean-square gradient element of the pass, so that a gradient vanishing to
        float32's rounding noise (zero in exact arithmetic, or 1e-10 at GoogLeNet's input) is not held to a
        relative bound it cannot meet.

        options:
          --model NAME       a zoo network (simple-convnet), one of:
                             {Command.ZooNames(21)}
          --checkpoint F     a safetensors checkpoint written by `cnn run` or `cnn train`; its 'network'
                             metadata names the zoo network
          --seed N           initialises a zoo network, and draws the batch, labels and dropout masks (1)
          --batch-size N     examples in the batch, 1 to {MaxBatch} (4); --batch, the older spelling, is accepted
          --mode M           eval (running statistics, no dropout) | train (batch statistics, dropout) (eval)
          --json             the same report as one JSON object

        examples:
          cnn verify
          cnn verify --model resnet18 --batch-size 2 --mode train
          cnn verify --checkpoint runs/x/checkpoint.safetensors --json
        """;

    // The tolerances of the LibTorch property tests (PropertyTests/LibTorch/RandomNetworkBridgeProperties.cs), set from
    // measurements over thousands of random networks and the zoo: outputs within 6.5e-5 of their largest element, state
    // within 5e-7, gradients within 1.2e-3 in norm, and 6.8e-3 where a batch norm runs in training mode (its backward pass
    // cancels most of what it sums; on ResNet-18 both float32 backends are 4e-3 to 7e-3 from a float64 run).
    private const double OutputAbsolute = 1e-5, OutputRelative = 5e-4;
    private const double StateAbsolute = 1e-6, StateRelative = 1e-5;
    private const double GradientScaleAbsolute = 1e-3, GradientRelative = 2e-3;
    private const double TrainingBatchNormGradientScaleAbsolute = 1e-2, TrainingBatchNormGradientRelative = 2e-2;

    public static Command Spec { get; } = new("verify", Help, [Opt.Model(), Opt.Checkpoint(), Opt.Seed(), Opt.Int("batch-size", 1, VerifyCommand.MaxBatch, "batch"), Opt.Choice("mode", "eval", "train"), Opt.Json()], Verify);

    private static int Verify(Args a)
    {
        int seed = a.Int("seed", 1);
        int batch = a.Int("batch-size", 4);
        var mode = Command.Choice(a, "mode", "eval", "eval", "train") == "train" ? Mode.Train : Mode.Eval;
        bool json = a.Flag("json");
        var checkpoint = a.String("checkpoint");
        var model = Model.FromArgs(a);
        var net = model.Network;
        LibTorchRuntime.EnsureLoaded();

        var rng = new Random(seed);
        var x = Uniform(rng, net.InputShape.PrependBatch(batch), 0, 1);
        GradientResult ours, theirs;
        string lossName;
        if (net.OutputShape.Rank == 1)
        {
            var labels = Enumerable.Range(0, batch).Select(_ => rng.Next(net.OutputShape[0])).ToArray();
            ours = Loss.Gradient(net, model.Parameters, x, labels, LossFunction.SoftmaxCrossEntropy, mode, model.State, seed);
            theirs = TorchNetwork.Gradient(net, model.Parameters, x, labels, LossFunction.SoftmaxCrossEntropy, mode, model.State, seed);
            lossName = "softmax cross-entropy";
        }
        else
        {
            var dy = Uniform(rng, net.OutputShape.PrependBatch(batch), -0.5, 0.5);
            var forward = Apply.WithPullback(net, model.Parameters, x, mode, model.State, seed);
            var pulled = forward.Pullback(dy);
            double inner = 0;
            for (int i = 0; i < dy.Size; i++) inner += (double)forward.Output[i] * dy[i];
            ours = new GradientResult((float)inner, forward.Output, pulled.Parameters, pulled.Input, forward.State);
            theirs = TorchNetwork.Pullback(net, model.Parameters, x, dy, mode, model.State, seed);
            lossName = "<output, seeded output gradient>";
        }

        bool trainingBatchNorm = mode == Mode.Train && net.RootNode.Leaves().Any(l => l.Layer is BatchNorm && !l.Frozen);
        double gradientRelative = trainingBatchNorm ? TrainingBatchNormGradientRelative : GradientRelative;
        double gradientAbsolute = trainingBatchNorm ? TrainingBatchNormGradientScaleAbsolute : GradientScaleAbsolute;
        double scale = theirs.Gradients.Entries.Select(kv => kv.Value).Append(theirs.InputGradient).Max(Rms);
        var rows = new List<Row>
        {
            Value("LibTorch", "output", ours.Output, theirs.Output, OutputAbsolute, OutputRelative),
            Value("LibTorch", "loss", Tensor.FromArray(new[] { ours.Loss }, 1), Tensor.FromArray(new[] { theirs.Loss }, 1), OutputAbsolute, OutputRelative),
        };
        rows.AddRange(ours.Gradients.Paths.Select(p => Gradient("LibTorch", "gradient " + p, ours.Gradients[p], theirs.Gradients[p], gradientAbsolute * scale, gradientRelative)));
        rows.Add(Gradient("LibTorch", "input gradient", ours.InputGradient, theirs.InputGradient, gradientAbsolute * scale, gradientRelative));
        rows.AddRange(ours.State.Paths.Select(p => Value("LibTorch", "state " + p, ours.State[p], theirs.State[p], StateAbsolute, StateRelative)));

        string onnx = "skipped";
        if (mode == Mode.Train)
        {
            onnx = "skipped: an ONNX model computes inference only (run with --mode eval)";
        }
        else
        {
            byte[]? bytes = null;
            try
            {
                bytes = OnnxExporter.ToBytes(net, model.Parameters, model.State, new OnnxExportOptions { ModelName = model.Name });
            }
            catch (CnnException e)
            {
                onnx = "skipped: " + e.Message;
            }
            if (bytes is not null)
            {
                // A failure after a successful export is a real disagreement, not an unsupported network: it fails the row.
                Tensor? ortOut = null;
                string? failure = null;
                try
                {
                    using var predictor = new OnnxPredictor(bytes);
                    ortOut = predictor.Run(x);
                }
                catch (CnnException e)
                {
                    failure = e.Message;
                }
                rows.Add(ortOut is not null && ortOut.Shape == ours.Output.Shape
                    ? Value("ONNX Runtime", "output", ortOut, ours.Output, OutputAbsolute, OutputRelative)
                    : new Row("ONNX Runtime", "output", double.NaN, double.NaN, OutputRelative, false,
                        failure ?? $"output shape {ortOut?.Shape} differs from the im2col backend's {ours.Output.Shape}"));
                onnx = failure is null ? "compared" : "failed: " + failure;
            }
        }

        bool passed = rows.All(r => r.Passed);
        if (json) PrintJson(model, checkpoint, mode, batch, seed, lossName, ours.Loss, theirs.Loss, onnx, rows, passed);
        else PrintTable(model, checkpoint, mode, batch, seed, lossName, ours.Loss, theirs.Loss, onnx, rows, passed);
        return passed ? 0 : 1;
    }

    /// <summary>
    /// One compared quantity of the report. <see cref="Tolerance"/> is the allowed difference on the scale of
    /// <see cref="Relative"/> (both absolute when the reference is zero), so a row passes exactly when Relative &lt;= Tolerance.
    /// </summary>
    private sealed record Row(string Against, string What, double MaxAbs, double Relative, double Tolerance, bool Passed, string? Note = null);

    /// <summary>Element-wise: passes when <c>max|a-b| &lt;= atol + rtol * max|b|</c>.</summary>
    private static Row Value(string against, string what, Tensor ours, Tensor reference, double atol, double rtol)
    {
        if (ours.Shape != reference.Shape)
            return new Row(against, what, double.NaN, double.NaN, rtol, false, $"shape {ours.Shape} against {reference.Shape}");
        double maxAbs = 0, maxRef = 0;
        for (int i = 0; i < ours.Size; i++)
        {
            double d = Math.Abs((double)ours[i] - reference[i]);
            maxAbs = double.IsNaN(d) ? double.PositiveInfinity : Math.Max(maxAbs, d);
            maxRef = Math.Max(maxRef, Math.Abs((double)reference[i]));
        }
        double allowed = atol + rtol * maxRef;
        return new Row(against, what, maxAbs, maxRef > 0 ? maxAbs / maxRef : maxAbs, maxRef > 0 ? allowed / maxRef : allowed, maxAbs <= allowed);
    }

    /// <summary>
    /// In norm: passes when <c>||a-b|| &lt;= atol * sqrt(n) + rtol * ||b||</c>, atol a fraction of the largest root-mean-square
    /// element among LibTorch's gradients; the absolute part accepts gradients that are zero in exact arithmetic (a bias
    /// before a training-mode batch norm) or vanish to rounding, and come out of both backends as the noise of their sums.
    /// </summary>
    private static Row Gradient(string against, string what, Tensor ours, Tensor reference, double atol, double rtol)
    {
        if (ours.Shape != reference.Shape)
            return new Row(against, what, double.NaN, double.NaN, rtol, false, $"shape {ours.Shape} against {reference.Shape}");
        double maxAbs = 0, diff = 0, norm = 0;
        for (int i = 0; i < ours.Size; i++)
        {
            double d = (double)ours[i] - reference[i];
            maxAbs = double.IsNaN(d) ? double.PositiveInfinity : Math.Max(maxAbs, Math.Abs(d));
            diff += d * d;
            norm += (double)reference[i] * reference[i];
        }
        diff = Math.Sqrt(diff);
        norm = Math.Sqrt(norm);
        double allowed = atol * Math.Sqrt(ours.Size) + rtol * norm;
        return new Row(against, what, maxAbs, norm > 0 ? diff / norm : diff, norm > 0 ? allowed / norm : allowed, diff <= allowed);
    }

    private static double Rms(Tensor t)
    {
        double s = 0;
        foreach (var v in t.Span) s += (double)v * v;
        return t.Size == 0 ? 0 : Math.Sqrt(s / t.Size);
    }

    private static Tensor Uniform(Random rng, Shape shape, double lo, double hi) =>
        Tensor.FromArray(Enumerable.Range(0, shape.Size).Select(_ => (float)(lo + (hi - lo) * rng.NextDouble())).ToArray(), shape);

    private static void PrintTable(Model model, string? checkpoint, Mode mode, int batch, int seed, string lossName, float ourLoss, float theirLoss,
        string onnx, List<Row> rows, bool passed)
    {
        Console.WriteLine($"verify '{model.Name}'{(checkpoint is null ? $" (seed {seed})" : $" (checkpoint {checkpoint})")}: {mode.ToString().ToLowerInvariant()} mode, " +
                          $"batch {batch} of [{string.Join(", ", model.Network.InputShape)}], loss {lossName}");
        Console.WriteLine($"  loss: im2col {Numbers.Shortest(ourLoss)}, LibTorch {Numbers.Shortest(theirLoss)}");
        Console.WriteLine($"  ONNX Runtime: {onnx}");
        int width = Math.Max(30, rows.Max(r => r.What.Length));
        Console.WriteLine();
        Console.WriteLine($"  {"against",-13} {"quantity".PadRight(width)} {"max |diff|",11} {"relative",10} {"tolerance",10}  result");
        foreach (var r in rows)
        {
            Console.WriteLine($"  {r.Against,-13} {r.What.PadRight(width)} {Figure(r.MaxAbs),11} {Figure(r.Relative),10} {Figure(r.Tolerance),10}  {(r.Passed ? "PASS" : "FAIL")}" +
                              (r.Note is null ? "" : $"  ({r.Note})"));
        }
        int failed = rows.Count(r => !r.Passed);
        Console.WriteLine();
        Console.WriteLine(passed ? $"PASS: {rows.Count} quantities agree" : $"FAIL: {failed} of {rows.Count} quantities disagree");
    }

    private static string Figure(double v) => double.IsNaN(v) ? "-" : Numbers.G(v);

    private static void PrintJson(Model model, string? checkpoint, Mode mode, int batch, int seed, string lossName, float ourLoss, float theirLoss,
        string onnx, List<Row> rows, bool passed)
    {
        static double? Finite(double v) => double.IsFinite(v) ? v : null;
        var doc = new Dictionary<string, object?>
        {
            ["network"] = model.Name,
            ["checkpoint"] = checkpoint,
            ["seed"] = seed,
            ["mode"] = mode.ToString().ToLowerInvariant(),
            ["batch"] = batch,
            ["loss_function"] = lossName,
            ["loss"] = new Dictionary<string, float> { ["im2col"] = ourLoss, ["libtorch"] = theirLoss },
            ["onnx"] = onnx,
            ["passed"] = passed,
            ["rows"] = rows.Select(r => new Dictionary<string, object?>
            {
                ["against"] = r.Against,
                ["quantity"] = r.What,
                ["max_abs_diff"] = Finite(r.MaxAbs),
                ["relative_diff"] = Finite(r.Relative),
                ["tolerance"] = r.Tolerance,
                ["passed"] = r.Passed,
                ["note"] = r.Note,
            }).ToList(),
        };
        Console.WriteLine(JsonSerializer.Serialize(doc, new JsonSerializerOptions(Numbers.JsonOptions) { WriteIndented = true }));
    }
}
