using Cnn.Dsl.IO;
using ScottPlot;

namespace Cnn.Cli.Pictures;

/// <summary>Training curves: loss and accuracy per epoch, training and validation (ScottPlot, rendered headless).</summary>
internal static class Charts
{
    public const int Width = 800, Height = 500;

    /// <summary>Writes <c>loss.png</c> and <c>accuracy.png</c> into <paramref name="folder"/>; returns their paths.</summary>
    public static IReadOnlyList<string> Write(string folder, IReadOnlyList<EpochRow> rows)
    {
        var loss = Path.Combine(folder, "loss.png");
        var acc = Path.Combine(folder, "accuracy.png");
        Save(loss, "Loss per epoch", "loss (cross-entropy)", rows, r => r.TrainLoss, r => r.ValidationLoss);
        Save(acc, "Accuracy per epoch", "accuracy (%)", rows, r => 100 * r.TrainAccuracy, r => 100 * r.ValidationAccuracy);
        return [loss, acc];
    }

    private static void Save(string path, string title, string yLabel, IReadOnlyList<EpochRow> rows, Func<EpochRow, double> train, Func<EpochRow, double> validation)
    {
        var plot = new Plot();
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
        plot.ShowLegend();
        if (rows.Count == 1) plot.Axes.SetLimitsX(0, 2);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(Width, Height, ImageFormat.Png));
    }
}
