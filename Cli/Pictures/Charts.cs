using System.Globalization;
using Cnn.Dsl.IO;
using ScottPlot;

namespace Cnn.Cli.Pictures;

/// <summary>
/// Training curves: loss and accuracy per epoch, training and validation (ScottPlot, rendered headless). Epochs are
/// whole numbers, so the epoch axis has ticks at whole epochs only; the legend sits in a panel right of the data,
/// where it cannot hide the last points.
/// </summary>
internal static class Charts
{
    public const int Width = 800, Height = 500;

    /// <summary>The most labelled ticks on the epoch axis; above that, every 2nd, 5th, 10th ... epoch is labelled.</summary>
    public const int MaxEpochTicks = 12;

    /// <summary>Writes <c>loss.png</c> and <c>accuracy.png</c> into <paramref name="folder"/>; returns their paths.</summary>
    public static IReadOnlyList<string> Write(string folder, IReadOnlyList<EpochRow> rows)
    {
        var loss = Path.Combine(folder, "loss.png");
        var acc = Path.Combine(folder, "accuracy.png");
        AtomicFile.WriteAllBytes(loss, Loss(rows).GetImageBytes(Width, Height, ImageFormat.Png));
        AtomicFile.WriteAllBytes(acc, Accuracy(rows).GetImageBytes(Width, Height, ImageFormat.Png));
        return [loss, acc];
    }

    /// <summary>The loss chart's plot.</summary>
    public static Plot Loss(IReadOnlyList<EpochRow> rows) => Build("Loss per epoch", "loss (cross-entropy)", rows, r => r.TrainLoss, r => r.ValidationLoss);

    /// <summary>The accuracy chart's plot.</summary>
    public static Plot Accuracy(IReadOnlyList<EpochRow> rows) => Build("Accuracy per epoch", "accuracy (%)", rows, r => 100 * r.TrainAccuracy, r => 100 * r.ValidationAccuracy);

    /// <summary>The epochs that get a labelled tick: every <c>step</c>-th (1, 2, 5, 10, 20, 50 ...), so that at most <see cref="MaxEpochTicks"/> are labelled.</summary>
    public static IReadOnlyList<int> EpochTicks(int first, int last)
    {
        int step = 1;
        for (int i = 0; (last - first) / step + 1 > MaxEpochTicks; i++) step = (i % 3) switch { 0 => 2, 1 => 5, _ => 10 } * (int)Math.Pow(10, i / 3);
        int start = (first + step - 1) / step * step;
        return Enumerable.Range(0, (last - start) / step + 1).Select(i => start + i * step).Where(e => e >= first).ToList();
    }

    private static Plot Build(string title, string yLabel, IReadOnlyList<EpochRow> rows, Func<EpochRow, double> train, Func<EpochRow, double> validation)
    {
        var plot = new Plot();
        // The face of the other pictures (Drawing); ScottPlot falls back to its default where it is not installed.
        plot.Font.Set("DejaVu Sans");
        double[] xs = rows.Select(r => (double)r.Epoch).ToArray();
        var t = plot.Add.Scatter(xs, rows.Select(train).ToArray());
        t.LegendText = "training";
        t.MarkerSize = 7;
        var v = plot.Add.Scatter(xs, rows.Select(validation).ToArray());
        v.LegendText = "validation";
        v.MarkerSize = 7;
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel(yLabel);
        plot.ShowLegend(Edge.Right);
        int first = rows.Min(r => r.Epoch), last = rows.Max(r => r.Epoch);
        var ticks = EpochTicks(first, last);
        plot.Axes.Bottom.SetTicks(ticks.Select(e => (double)e).ToArray(), ticks.Select(e => e.ToString(CultureInfo.InvariantCulture)).ToArray());
        double margin = Math.Max(0.3, 0.03 * (last - first));
        plot.Axes.SetLimitsX(first - margin, last + margin);
        return plot;
    }
}
