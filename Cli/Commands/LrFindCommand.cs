using System.Globalization;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using ScottPlot;

namespace Cnn.Cli;

/// <summary><c>cnn lr-find</c>: the learning-rate range test of a zoo network on a data set, with its plot.</summary>
internal static class LrFindCommand
{
    public static readonly string Help = $"""
        usage: cnn lr-find [options]

        The learning-rate range test (fastai's lr_find): trains a freshly initialised network for up to --steps
        mini-batches while the rate grows exponentially from --start to --end, stops once the smoothed loss exceeds
        4 x its minimum, and suggests a rate: the steepest descent of the smoothed loss against log(rate), before
        its minimum. Use it as --lr of `cnn train --one-cycle` (the one-cycle maximum). Nothing is trained for
        good: the sweep starts from the initial weights and leaves them as they were.
        Writes the loss-versus-rate plot (log scale, raw and smoothed loss, the suggestion marked) and prints
        the suggestion, the rate at the minimum and a tenth of it.

        options:
          --model NAME        zoo network (simple-convnet), one of:
                              {Command.ZooNames(22)}
          --data SPEC         {DataSource.Help} (mnist)
          --optimizer NAME    {OptimizerChoice.Help} (adam)
          --batch-size N      examples per step, 1 to {Opt.MaxBatchSize} (100)
          --start X           the first rate, above 0 and at most 1e6 (1e-7)
          --end X             the last rate, above 0 and at most 1e6 (10)
          --steps N           mini-batches of the sweep at most, 2 to 100000 (100)
          --seed N            initialisation, split and batch order (1)
          --normalize         standardise each channel with the training set's mean and deviation
          --limit N           use at most N training examples
          --out F             the plot (lr-find.png)
          --force             replace the output file if it exists (else an existing file is an error)
          --csv F             also write the curve: step, rate, loss, smoothed_loss

        examples:
          cnn lr-find --model lenet5
          cnn lr-find --model simple-convnet --optimizer momentum --end 1 --out lr.png --csv lr.csv
          cnn train --model lenet5 --one-cycle --lr 0.01 --epochs 5
        """;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Spec { get; } = new("lr-find", Help, [Opt.Model(), Opt.Data(), Opt.Choice("optimizer", OptimizerChoice.Names), Opt.BatchSize(), Opt.Positive("start", 1e6f), Opt.Positive("end", 1e6f), Opt.Int("steps", 2, 100_000), Opt.Seed(), Opt.Flag("normalize"), Opt.Limit(), Opt.Out(), Opt.Force(), Opt.OutFile("csv")], Find);

    private static int Find(Args a)
    {
        var modelName = a.String("model") ?? "simple-convnet";
        var dataSpec = a.String("data") ?? "mnist";
        var optName = Command.Choice(a, "optimizer", "adam", OptimizerChoice.Names);
        int batchSize = a.Int("batch-size", 100, 1);
        float start = a.Float("start", 1e-7f), end = a.Float("end", 10f);
        int steps = a.Int("steps", 100, 2);
        int seed = a.Int("seed", 1);
        bool normalize = a.Flag("normalize");
        int? limit = a.String("limit") is null ? null : a.Int("limit", 0, 1);
        var outPath = Command.OutputFile(a, "out", "lr-find.png")!;
        var csvPath = a.String("csv");
        if (!(end > start)) throw new UsageException($"--end must be greater than --start; found {Numbers.G(start, 6)} and {Numbers.G(end, 6)}");
        if (!outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new UsageException("--out must end in .png");
        DataSource.CheckSpec(dataSpec);
        Optimizer optimizer = OptimizerChoice.Create(optName, start);

        var net = Zoo.ByName(modelName);
        var data = DataSource.Load(dataSpec, seed, null, net.InputShape);
        var train = limit is int n ? data.Train.Batch(0, Math.Min(n, data.Train.Count)) : data.Train;
        if (normalize) train = Normalization.Fit(train.Images).Apply(train);
        Console.WriteLine(string.Create(Inv, $"lr-find: {modelName} on {train.Count} examples of {dataSpec}, {optName}, batch {batchSize}, rates {Numbers.G(start)} to {Numbers.G(end)} over at most {steps} steps, seed {seed}"));
        var options = new LearningRateFinderOptions(start, end, steps, batchSize, Seed: seed);
        var r = LearningRateFinder.Find(net, Initializer.Init(net, seed), train, optimizer, options);

        var last = r.Curve[^1];
        Console.WriteLine(r.Diverged
            ? string.Create(Inv, $"stopped at step {last.Step} (rate {Numbers.G(last.Rate)}): the loss diverged (smoothed loss > {options.DivergeFactor} x its minimum)")
            : string.Create(Inv, $"swept all {last.Step} steps up to rate {Numbers.G(last.Rate)} without divergence"));
        Console.WriteLine(string.Create(Inv, $"suggested learning rate: {Numbers.G(r.SuggestedRate)} (steepest descent of the smoothed loss)"));
        Console.WriteLine(string.Create(Inv, $"minimum of the smoothed loss at rate {Numbers.G(r.MinimumLossRate)}; a tenth of it: {Numbers.G(r.MinimumOverTen)}"));
        Plot(outPath, r, modelName);
        Console.WriteLine($"plot: {outPath}");
        if (csvPath is not null)
        {
            var lines = r.Curve.Select(p => string.Create(Inv, $"{p.Step},{p.Rate:R},{p.Loss:R},{p.SmoothedLoss:R}")).Prepend("step,rate,loss,smoothed_loss");
            AtomicFile.WriteAllBytes(csvPath, System.Text.Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n"));
            Console.WriteLine($"curve: {csvPath}");
        }
        return 0;
    }

    /// <summary>Loss against log10(rate): the raw losses faint, the smoothed loss bold, the suggestion and the minimum as vertical lines.</summary>
    internal static void Plot(string path, LearningRateFinderResult r, string title)
    {
        var plot = new Plot();
        plot.Font.Set("DejaVu Sans");
        double[] xs = r.Curve.Select(p => Math.Log10(p.Rate)).ToArray();
        var raw = plot.Add.Scatter(xs, r.Curve.Select(p => (double)p.Loss).ToArray());
        raw.LegendText = "loss";
        raw.MarkerSize = 0;
        raw.LineWidth = 1;
        raw.Color = Colors.Gray.WithAlpha(0.6);
        var smooth = plot.Add.Scatter(xs, r.Curve.Select(p => (double)p.SmoothedLoss).ToArray());
        smooth.LegendText = "smoothed loss";
        smooth.MarkerSize = 0;
        smooth.LineWidth = 2.5f;
        var s = plot.Add.VerticalLine(Math.Log10(r.SuggestedRate));
        s.LegendText = string.Create(Inv, $"suggested {Numbers.G(r.SuggestedRate)}");
        s.Color = Colors.Red;
        var m = plot.Add.VerticalLine(Math.Log10(r.MinimumLossRate));
        m.LegendText = string.Create(Inv, $"minimum {Numbers.G(r.MinimumLossRate)}");
        m.Color = Colors.Gray;
        m.LinePattern = LinePattern.Dashed;
        var ticks = new ScottPlot.TickGenerators.NumericAutomatic
        {
            LabelFormatter = v => Math.Abs(v) <= 3 ? Math.Pow(10, v).ToString("0.###", Inv) : string.Create(Inv, $"1e{Math.Round(v)}"),
            IntegerTicksOnly = true,
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        };
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Title($"Learning-rate finder: {title}");
        plot.XLabel("learning rate (log scale)");
        plot.YLabel("training loss");
        plot.ShowLegend(Alignment.LowerLeft);
        // The losses after divergence dwarf the rest: show up to 1.5 x the first smoothed loss.
        double lo = r.Curve.Min(p => Math.Min(p.Loss, p.SmoothedLoss)), hi = Math.Max(r.Curve[0].SmoothedLoss, r.Curve[0].Loss) * 1.5;
        plot.Axes.SetLimitsY(Math.Max(0, lo - 0.05 * (hi - lo)), hi);
        plot.Axes.SetLimitsX(xs[0], xs[^1] + 1e-9);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(800, 500, ImageFormat.Png));
    }
}
