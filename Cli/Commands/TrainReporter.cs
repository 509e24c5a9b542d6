using System.Globalization;
using System.Text.Json;
using Cnn.Dsl;

namespace Cnn.Cli;

/// <summary>How <c>cnn train</c> talks: a redrawn progress bar on a terminal, a plain line every tenth of an epoch
/// otherwise, nothing but errors with <c>--quiet</c>, and one JSON object per line with <c>--json</c>.</summary>
internal enum ReportStyle
{
    Bar,
    Lines,
    Quiet,
    Json,
}

/// <summary>Receives the trainer's per-batch reports and prints them in the chosen style.</summary>
internal sealed class TrainReporter(ReportStyle style, int epochs, int batchSize, TextWriter output) : IProgress<TrainProgress>
{
    private const int BarWidth = 28;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>NaN (an epoch resumed after its last batch has no training figures) is written as "NaN", not an error.</summary>
    private static readonly JsonSerializerOptions JsonOptions = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    private int _lastLineTenth = -1;
    private int _lastEpoch;
    private bool _barOpen;

    public ReportStyle Style => style;

    public void Report(TrainProgress p)
    {
        if (p.Epoch != _lastEpoch) (_lastEpoch, _lastLineTenth) = (p.Epoch, -1);
        double seconds = Math.Max(p.Elapsed.TotalSeconds, 1e-9);
        double perSecond = p.Batch * batchSize / seconds;
        var left = TimeSpan.FromSeconds(seconds / p.Batch * (p.Batches - p.Batch));
        string figures = string.Create(Inv, $"{p.Batch}/{p.Batches} loss {p.RunningLoss:F4} acc {p.RunningAccuracy * 100:F2}% {perSecond:F0} samples/s left {Clock(left)}");
        switch (style)
        {
            case ReportStyle.Bar:
                int filled = (int)((long)BarWidth * p.Batch / p.Batches);
                output.Write($"\repoch {p.Epoch}/{epochs} [{new string('#', filled)}{new string('.', BarWidth - filled)}] {figures}  ");
                _barOpen = true;
                break;
            case ReportStyle.Lines:
                int tenth = (int)(10L * p.Batch / p.Batches);
                if (tenth == _lastLineTenth || (tenth == 0 && p.Batch != 1)) return;
                _lastLineTenth = tenth;
                output.WriteLine($"epoch {p.Epoch}/{epochs} batch {figures}");
                break;
        }
    }

    /// <summary>The epoch's closing line (validation figures), or its JSON object.</summary>
    public void Epoch(EpochStats e, string checkpoint)
    {
        var v = e.Validation!;
        switch (style)
        {
            case ReportStyle.Json:
                output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["event"] = "epoch", ["epoch"] = e.Epoch, ["epochs"] = epochs,
                    ["train_loss"] = e.TrainLoss, ["train_accuracy"] = e.TrainAccuracy,
                    ["val_loss"] = v.Loss, ["val_accuracy"] = v.Accuracy, ["seconds"] = e.Elapsed.TotalSeconds, ["checkpoint"] = checkpoint,
                }, JsonOptions));
                break;
            case ReportStyle.Quiet:
                break;
            default:
                EndBar();
                output.WriteLine(string.Create(Inv,
                    $"epoch {e.Epoch}/{epochs}: train loss {e.TrainLoss:F4} acc {e.TrainAccuracy * 100:F2}% | validation loss {v.Loss:F4} acc {v.Accuracy * 100:F2}% ({v.Count} examples) | {e.Elapsed.TotalSeconds:F1} s"));
                break;
        }
    }

    /// <summary>A line of information (not in quiet or JSON mode).</summary>
    public void Info(string line)
    {
        if (style is ReportStyle.Quiet or ReportStyle.Json) return;
        EndBar();
        output.WriteLine(line);
    }

    /// <summary>The final JSON object (JSON mode only).</summary>
    public void Done(IReadOnlyDictionary<string, object?> figures)
    {
        if (style == ReportStyle.Json) output.WriteLine(JsonSerializer.Serialize(figures, JsonOptions));
    }

    public void EndBar()
    {
        if (!_barOpen) return;
        output.WriteLine();
        _barOpen = false;
    }

    private static string Clock(TimeSpan t) => t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", Inv) : t.ToString(@"m\:ss", Inv);
}
