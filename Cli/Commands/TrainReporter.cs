using System.Globalization;
using System.Text.Json;
using Cnn.Dsl;

namespace Cnn.Cli;

/// <summary>How <c>cnn train</c> talks (Keras's <c>verbose</c>): a redrawn progress bar on a terminal
/// (<c>--verbose 1</c>), the same bar as a plain line every tenth of an epoch when the output is not a terminal,
/// one line per epoch (<c>--verbose 2</c>), nothing but errors (<c>--verbose 0</c>, <c>--quiet</c>), or one JSON
/// object per line (<c>--json</c>).</summary>
internal enum ReportStyle
{
    Bar,
    Lines,
    EpochLine,
    Quiet,
    Json,
}

/// <summary>
/// Receives the trainer's per-batch reports and prints them in the chosen style, in Keras's words:
/// <code>
/// Epoch 3/10
///  45/80 [===========>..................] - ETA: 3s - 41ms/step - loss: 0.2513 - accuracy: 0.9263
/// 80/80 [==============================] - 4s 41ms/step - loss: 0.2101 - accuracy: 0.9371 - val_loss: 0.1702 - val_accuracy: 0.9490
/// </code>
/// </summary>
internal sealed class TrainReporter(ReportStyle style, int epochs, TextWriter output) : IProgress<TrainProgress>
{
    private const int BarWidth = 30;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>NaN (an epoch resumed after its last batch has no training figures) is written as "NaN", not an error.</summary>
    private static readonly JsonSerializerOptions JsonOptions = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    private int _lastLineTenth = -1;
    private int _headerEpoch;
    private int _firstBatch;
    private TrainProgress? _last;
    private bool _barOpen;

    private int _barLength;

    public ReportStyle Style => style;

    public void Report(TrainProgress p)
    {
        if (p.Epoch != _last?.Epoch) (_firstBatch, _lastLineTenth) = (p.Batch - 1, -1);
        _last = p;
        switch (style)
        {
            case ReportStyle.Bar:
                Header(p.Epoch);
                var bar = Running(p);
                output.Write($"\r{bar.PadRight(_barLength)}");
                _barLength = bar.Length;
                _barOpen = true;
                break;
            case ReportStyle.Lines:
                Header(p.Epoch);
                // The epoch's last line comes with the validation figures (Epoch).
                if (p.Batch == p.Batches) return;
                int tenth = (int)(10L * p.Batch / p.Batches);
                if (tenth == _lastLineTenth || (tenth == 0 && p.Batch != 1)) return;
                _lastLineTenth = tenth;
                output.WriteLine(Running(p));
                break;
        }
    }

    /// <summary>The epoch's closing line with the validation figures, or its JSON object.</summary>
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
            case ReportStyle.EpochLine:
                output.WriteLine($"Epoch {e.Epoch}/{epochs} - {Closing(e)}");
                break;
            default:
                Header(e.Epoch);
                var closing = Closing(e);
                output.WriteLine(_barOpen ? $"\r{closing.PadRight(_barLength)}" : closing);
                (_barOpen, _barLength) = (false, 0);
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
        (_barOpen, _barLength) = (false, 0);
    }

    /// <summary><c>Epoch 3/10</c>, once per epoch, before its first bar.</summary>
    private void Header(int epoch)
    {
        if (_headerEpoch == epoch) return;
        EndBar();
        _headerEpoch = epoch;
        output.WriteLine($"Epoch {epoch}/{epochs}");
    }

    /// <summary>A bar during the epoch: steps done/total, time left, time per step, running means of the metrics.</summary>
    private string Running(TrainProgress p)
    {
        double perStep = StepSeconds(p);
        int width = p.Batches.ToString(Inv).Length;
        return string.Create(Inv, $"{p.Batch.ToString(Inv).PadLeft(width)}/{p.Batches} {Bar(p.Batch, p.Batches)} - ETA: {Duration(perStep * (p.Batches - p.Batch))} - {PerStep(perStep)} - loss: {p.RunningLoss:F4} - accuracy: {p.RunningAccuracy:F4}");
    }

    /// <summary>The epoch's line: the full bar (or, one line per epoch, the step count), the time, then training and validation metrics.</summary>
    private string Closing(EpochStats e)
    {
        var p = _last is { } l && l.Epoch == e.Epoch ? l : null;
        var v = e.Validation!;
        string steps = p is null ? "" : style == ReportStyle.EpochLine ? $"{p.Batches}/{p.Batches} - " : $"{p.Batches}/{p.Batches} {Bar(1, 1)} - ";
        string time = Duration(e.Elapsed.TotalSeconds) + (p is null ? "" : " " + PerStep(StepSeconds(p)));
        return string.Create(Inv, $"{steps}{time} - loss: {e.TrainLoss:F4} - accuracy: {e.TrainAccuracy:F4} - val_loss: {v.Loss:F4} - val_accuracy: {v.Accuracy:F4}");
    }

    /// <summary>Seconds per step over the steps this run has timed in the epoch (a resumed epoch starts its clock at the resumed batch).</summary>
    private double StepSeconds(TrainProgress p) => p.Elapsed.TotalSeconds / Math.Max(1, p.Batch - _firstBatch);

    /// <summary><c>[=====&gt;......]</c>: Keras's bar.</summary>
    internal static string Bar(int done, int total)
    {
        int filled = (int)((long)BarWidth * done / Math.Max(1, total));
        return done >= total ? $"[{new string('=', BarWidth)}]"
            : $"[{new string('=', Math.Max(0, filled - 1))}>{new string('.', BarWidth - Math.Max(1, filled))}]";
    }

    /// <summary>Keras's durations: <c>7s</c>, <c>1:05</c>, <c>1:02:03</c>.</summary>
    internal static string Duration(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Max(0, Math.Round(seconds)));
        return t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", Inv) : t.TotalMinutes >= 1 ? t.ToString(@"m\:ss", Inv) : string.Create(Inv, $"{(int)t.TotalSeconds}s");
    }

    /// <summary>Keras's time per step: <c>850us/step</c>, <c>41ms/step</c>, <c>2s/step</c>.</summary>
    internal static string PerStep(double seconds) => seconds switch
    {
        >= 1 => string.Create(Inv, $"{seconds:F0}s/step"),
        >= 1e-3 => string.Create(Inv, $"{seconds * 1e3:F0}ms/step"),
        _ => string.Create(Inv, $"{seconds * 1e6:F0}us/step"),
    };
}
