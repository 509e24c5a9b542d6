using System.Globalization;
using Cnn.Cli.Pictures;
using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;

namespace Cnn.Cli;

/// <summary><c>cnn train</c>: trains a zoo network on a data set and fills a run folder with checkpoints, metrics and pictures.</summary>
internal static class TrainCommand
{
    /// <summary>The exit code after Ctrl+C: 128 + SIGINT, as shells report it.</summary>
    public const int InterruptedExitCode = 130;

    public const string CheckpointFile = "checkpoint.safetensors";
    public const string MetricsFile = "metrics.csv";

    public static readonly string Help = $"""
        usage: cnn train [options]

        Trains a zoo network (or fine-tunes a checkpoint's, with --checkpoint) and writes everything into a run folder:
          {CheckpointFile}   parameters, network state and optimizer state (safetensors; metadata names the
                                   network, data, seed, optimizer and normalisation), rewritten after every epoch
          {MetricsFile}              epoch, train_loss, train_accuracy, val_loss, val_accuracy, seconds
          loss.png, accuracy.png   training and validation curves
          filters-initial.png, filters-final.png   the first convolution's filters, numbered, one scale
          input.png, features-LAYER.png            one validation input and its maps at every convolution, titled
          confusion.png            the confusion matrix on the validation set, with the accuracy
          summary.txt              the network's layer table
        Keras-style output: "Epoch 3/10", then a bar with steps done/total, time left, time per step and the
        running means of loss and accuracy, closed by the epoch's time and its validation loss and accuracy. The bar
        is redrawn on a terminal; otherwise it is printed as a plain line every tenth of an epoch.
        Ctrl+C stops after the current batch, saves a checkpoint that --resume continues exactly, draws the
        pictures and exits with code 130.

        options:
          --model NAME           zoo network (simple-convnet), one of:
                                 {Command.ZooNames(25)}
          --data SPEC            {DataSource.Help} (mnist)
          --epochs N             passes over the training data, 1 to {Opt.MaxEpochs} (5)
          --batch-size N         examples per step, 1 to {Opt.MaxBatchSize} (100)
          --optimizer NAME       {OptimizerChoice.Help} (adam)
          --lr X                 learning rate (0.001 for adam and adamw, 0.01 for rmsprop, 0.05 otherwise)
          --seed N               initialisation, split, shuffling, dropout and augmentation (1)
        {AugmentChoice.Help}
          --normalize            standardise each channel with the training set's mean and deviation
          --limit N              use at most N training and N validation examples (quick runs)
          --out DIR              the run folder (runs/MODEL-TIME); never overwritten if not empty, unless --force;
                                 locked while the run lasts (a second run into it fails, naming the holder)
          --force                write into a non-empty --out
          --resume F             continue from a checkpoint of this command: its network (a different --model is an
                                 error) and its data (unless --data is given); every other option it records (seed,
                                 optimizer, lr, batch size, augmentation, normalize) must be given the same; into its own
                                 folder, or an empty --out (another non-empty one needs --force)
          --allow-changes        with --resume: accept changed options; the changes are recorded in the checkpoint
          --one-cycle            one-cycle schedule: warm-up to --lr over the first 25 % of the steps, then cosine
                                 annealing (use the rate `cnn lr-find` suggests as --lr)
          --early-stopping N     stop when the validation loss has not improved for N epochs, keeping the best
                                 epoch's weights
          --verbose 0|1|2        0: nothing but errors; 1: the progress bar (default); 2: one line per epoch
          --quiet                print nothing but errors (--verbose 0)
          --json                 print one JSON object per line: an "epoch" event per epoch, a "done" event at the end
        {FineTune.Help}
        {TrainBackendOptions.Help}

        examples:
          cnn train --epochs 3
          cnn train --model lenet5 --one-cycle --lr 0.01 --early-stopping 2 --verbose 2
          cnn train --model lenet5 --optimizer momentum --lr 0.05 --augment --out runs/lenet
          cnn train --model keras-cifar --data cifar:/data/cifar-10-batches-bin --normalize --augment
          cnn train --data idx:/data/fashion --epochs 10 --json > log.jsonl
          cnn train --model vgg-small --data folder:photos --normalize --epochs 20
          cnn train --resume runs/lenet/{CheckpointFile} --out runs/lenet --epochs 6
          cnn train --checkpoint resnet18.safetensors --freeze {Transfer.AllButHead} --new-head 10 --limit 500 --epochs 3
          cnn train --checkpoint squeezenet.safetensors --freeze features --new-head 10 --out runs/squeeze
        """;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Spec { get; } = new("train", Help, [Opt.Model(), Opt.Data(), Opt.Epochs(), Opt.BatchSize(), Opt.Choice("optimizer", OptimizerChoice.Names), Opt.LearningRate(), Opt.Seed(), .. AugmentChoice.Options, Opt.Flag("normalize"), Opt.Limit(), Opt.Out(), Opt.Force(), Opt.Text("resume"), Opt.Flag("one-cycle"), Opt.Int("early-stopping", 1, Opt.MaxEpochs), Opt.Int("verbose", 0, 2), Opt.Flag("quiet"), Opt.Json(), Opt.Flag("allow-changes"), .. FineTune.Options(), .. TrainBackendOptions.Options], Train);

    private static int Train(Args a)
    {
        var modelOption = a.String("model");
        var modelName = modelOption ?? (a.String("checkpoint") is { } tuned ? Path.GetFileNameWithoutExtension(tuned) : "simple-convnet");
        var dataOption = a.String("data");
        var dataSpec = dataOption ?? "mnist";
        int epochs = a.Int("epochs", 5, 1);
        int batchSize = a.Int("batch-size", 100, 1);
        var optName = Command.Choice(a, "optimizer", "adam", OptimizerChoice.Names);
        float lr = a.Float("lr", OptimizerChoice.DefaultRate(optName));
        int seed = a.Int("seed", 1);
        bool augment = a.Flag("augment"), normalize = a.Flag("normalize"), force = a.Flag("force"), quiet = a.Flag("quiet"), json = a.Flag("json");
        bool oneCycle = a.Flag("one-cycle"), allowChanges = a.Flag("allow-changes");
        int? patience = a.String("early-stopping") is null ? null : a.Int("early-stopping", 0, 1);
        int? verbose = a.String("verbose") is null ? null : a.Int("verbose", 1, 0);
        int? limit = a.String("limit") is null ? null : a.Int("limit", 0, 1);
        var resumePath = a.String("resume");
        var outDir = a.String("out") ?? (resumePath is not null ? Path.GetDirectoryName(Path.GetFullPath(resumePath))!
            : Path.Combine("runs", $"{modelName}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", Inv)}"));
        if (quiet && json) throw new UsageException("--quiet and --json exclude each other");
        if (verbose is not null && json) throw new UsageException("--verbose and --json exclude each other");
        if (quiet && verbose is > 0) throw new UsageException("--quiet and --verbose 1|2 exclude each other");
        DataSource.CheckSpec(dataSpec);
        Optimizer optimizer = OptimizerChoice.Create(optName, lr);
        var backend = TrainBackendOptions.Create(a);

        var style = json ? ReportStyle.Json : (quiet ? 0 : verbose ?? 1) switch
        {
            0 => ReportStyle.Quiet,
            2 => ReportStyle.EpochLine,
            _ => Console.IsOutputRedirected ? ReportStyle.Lines : ReportStyle.Bar,
        };
        var report = new TrainReporter(style, epochs, Console.Out);
        TrainingCheckpoint? resume = resumePath is null ? null : Checkpoint.Load(resumePath);
        // A resumed run takes its network (and, unless --data is given, its data) from the checkpoint; a --model
        // that names another network is an error, not a silent choice between the two.
        if (resume is not null)
        {
            var savedNetwork = resume.Metadata.GetValueOrDefault(Model.NetworkKey);
            if (savedNetwork is null && modelOption is null)
                throw new CnnException($"The checkpoint '{resumePath}' does not name its network (metadata '{Model.NetworkKey}'); pass --model NAME.");
            if (savedNetwork is not null && modelOption is not null && Canonical(modelOption) != Canonical(savedNetwork))
                throw new CnnException($"The checkpoint '{resumePath}' is of network '{savedNetwork}'; --model is '{modelOption}'. Leave --model out to resume: the network comes from the checkpoint.");
            modelName = savedNetwork ?? modelName;
            if (dataOption is null && resume.Metadata.GetValueOrDefault("data") is { } savedData) dataSpec = savedData;
        }
        var tune = FineTune.Open(a, seed, resumePath, resume, optimizer);
        if (tune is not null) (modelName, resume) = (tune.Name, tune.Resume);
        var net = tune?.Network ?? Zoo.ByName(modelName);
        // A resumed one-cycle run stays on its schedule (the rate of every step is a function of the step).
        if (resume?.Metadata.GetValueOrDefault("schedule") == "one-cycle") oneCycle = true;
        var recorded = ResumeOptions.Recorded(dataSpec, seed, optName, lr, batchSize, augment, tune?.Recorded);
        recorded[AugmentChoice.RecordedKey] = AugmentChoice.Recorded(a);
        var changes = resume is null ? null : ResumeOptions.Check(resumePath!, resume.Metadata,
            new Dictionary<string, string>(recorded) { ["normalize"] = normalize ? "true" : "false" }, resume.Epoch, allowChanges);
        using var runLock = RunFolder.PrepareAndLock(outDir, force, resumePath);

        report.Info($"data: {dataSpec}");
        var data = DataSource.Load(dataSpec, seed, limit, net.InputShape);
        if (tune is not null) data = tune.Fit(data, net, report);
        // A network that adapts to its input (resnet-mini on 1x28x28 digits) is built for the data's shape.
        else if (data.Train.Images.Shape.DropBatch() is var sample && sample != net.InputShape) net = Zoo.ForInput(modelName, sample);
        if (data.Train.Images.Shape.DropBatch() != net.InputShape)
            throw new CnnException($"The data '{dataSpec}' has examples of shape {data.Train.Images.Shape.DropBatch()}; network '{modelName}' takes {net.InputShape}. " +
                $"Zoo networks that take {data.Train.Images.Shape.DropBatch()}: {string.Join(", ", NetworksTaking(data.Train.Images.Shape.DropBatch()))}.");
        if (resume is not null) ResumeOptions.CheckOptimizerState(resumePath!, resume, optimizer, net);
        var (train, validation) = (data.Train, data.Validation);
        Normalization? norm = null;
        if (resume?.Metadata.TryGetValue("normalization", out var saved) == true) norm = Normalization.Parse(saved);
        else if (normalize) norm = Normalization.Fit(train.Images);
        // The pipeline normalises the batches (after augmenting them, before erasing); the pictures see normalised images.
        var augmentation = AugmentChoice.Create(a, data.Augmentation);
        var shownValidation = norm is null ? validation : norm.Apply(validation);

        var checkpointPath = Path.Combine(outDir, CheckpointFile);
        var metricsPath = Path.Combine(outDir, MetricsFile);
        AtomicFile.WriteAllBytes(Path.Combine(outDir, "summary.txt"),
            System.Text.Encoding.UTF8.GetBytes($"Network '{modelName}', input (N, {string.Join(", ", net.InputShape)})\n{Summary.Format(net)}"));
        var meta = new Dictionary<string, string>(recorded, StringComparer.Ordinal)
        {
            [Model.NetworkKey] = modelName, [Checkpoint.NetworkKey] = NetworkJson.Serialize(net), ["classes"] = string.Join(",", data.ClassNames),
        };
        if (norm is not null) meta["normalization"] = norm.Format();
        if (oneCycle) meta["schedule"] = "one-cycle";
        if (patience is not null) meta["early_stopping"] = patience.Value.ToString(Inv);
        if (changes is not null) meta[ResumeOptions.ChangesKey] = changes;

        var init = tune?.Parameters ?? Initializer.Init(net, seed);
        if (resume is null) PictureSet.WriteFilters(outDir, net, init, "initial");
        var rows = resume is not null && File.Exists(metricsPath)
            ? EpochRow.ReadCsv(metricsPath).Where(r => r.Epoch < resume.Epoch).ToList()
            : new List<EpochRow>();
        report.Info(string.Create(Inv, $"training {modelName} on {train.Count} examples ({validation.Count} for validation): {optName} lr {Numbers.G(lr, 6)}, batch {batchSize}, " +
            $"{epochs} epoch(s), seed {seed}{(augmentation is not null ? ", augmented" : "")}{(norm is not null ? ", normalised" : "")}{(oneCycle ? ", one-cycle" : "")}" +
            $"{(patience is not null ? $", early stopping after {patience} epoch(s) without improvement" : "")}, {BatchParallel.Workers} thread(s), backend {backend.Name}; run folder {outDir}"));

        void OnEpoch(EpochStats e)
        {
            rows.Add(new EpochRow(e.Epoch, e.TrainLoss, e.TrainAccuracy, e.Validation!.Loss, e.Validation.Accuracy, e.Elapsed.TotalSeconds));
            EpochRow.WriteCsv(metricsPath, rows);
            report.Epoch(e, checkpointPath);
        }
        void OnCheckpoint(TrainingCheckpoint cp) => Checkpoint.Save(checkpointPath, cp with { Metadata = meta });

        using var stop = new CancellationTokenSource();
        void OnCtrlC(object? sender, ConsoleCancelEventArgs e)
        {
            e.Cancel = true;
            stop.Cancel();
            report.Info("Ctrl+C: stopping after the current batch and saving a checkpoint…");
        }
        Console.CancelKeyPress += OnCtrlC;
        TrainResult result;
        bool earlyStopped = false;
        try
        {
            // Early stopping is wrapped to learn whether it stopped the run; a resumed run starts its count afresh.
            var earlyStopping = patience is null ? null : Callback.EarlyStopping("val_loss", patience: patience.Value, restoreBest: true).Start();
            var callbacks = new List<Callback>();
            if (earlyStopping is not null)
                callbacks.Add(Callback.Custom(ctx =>
                {
                    var d = earlyStopping(ctx);
                    earlyStopped |= d.Stop;
                    return d;
                }));
            var options = new TrainOptions(epochs, batchSize, optimizer, seed, Schedule: oneCycle ? Schedule.OneCycle() : null, Callbacks: callbacks)
            {
                Backend = backend, Pipeline = new PipelineOptions(augmentation, norm),
            };
            var progress = style is ReportStyle.Bar or ReportStyle.Lines or ReportStyle.EpochLine ? report : null;
            result = Trainer.Fit(net, init, train, options, validation, progress, OnEpoch, tune?.State, stop.Token, resume, OnCheckpoint);
        }
        finally
        {
            Console.CancelKeyPress -= OnCtrlC;
        }
        report.EndBar();
        bool interrupted = result.Checkpoint.Epoch <= epochs && !earlyStopped;

        var model = new Model(modelName, net, result.Parameters, result.State, meta);
        var pictures = PictureSet.Write(outDir, model, "final", shownValidation, data.ClassNames, rows);
        var last = rows.LastOrDefault();
        var best = earlyStopped ? Trainer.Evaluate(net, result.Parameters, shownValidation, 256, result.State) : null;
        report.Info(interrupted
            ? $"interrupted at epoch {result.Checkpoint.Epoch}, batch {result.Checkpoint.Batch}: checkpoint {checkpointPath} (continue with --resume)"
            : best is not null
            ? string.Create(Inv, $"early stopping after epoch {rows.Count}: kept the best epoch's weights, validation accuracy {best.Accuracy * 100:F2}%; checkpoint {checkpointPath}")
            : string.Create(Inv, $"done: validation accuracy {last?.ValidationAccuracy * 100:F2}%; checkpoint {checkpointPath}"));
        report.Info($"pictures: {string.Join(", ", pictures.Select(Path.GetFileName))}");
        report.Done(new Dictionary<string, object?>
        {
            ["event"] = "done", ["interrupted"] = interrupted, ["early_stopped"] = earlyStopped, ["epochs_completed"] = rows.Count,
            ["val_accuracy"] = best?.Accuracy ?? last?.ValidationAccuracy, ["val_loss"] = best?.Loss ?? last?.ValidationLoss,
            ["checkpoint"] = checkpointPath, ["metrics"] = metricsPath, ["pictures"] = pictures,
        });
        return interrupted ? InterruptedExitCode : 0;
    }

    private static string Canonical(string name) => Zoo.Aliases.GetValueOrDefault(name, name);

    /// <summary>The zoo's networks (from <see cref="Zoo.Names"/>, aliases left out) whose input is <paramref name="shape"/>.</summary>
    private static IEnumerable<string> NetworksTaking(Shape shape)
    {
        var names = Zoo.Names.Where(n => !Zoo.Aliases.ContainsKey(n) && Zoo.ByName(n).InputShape == shape).ToList();
        return names.Count > 0 ? names : ["none"];
    }
}
