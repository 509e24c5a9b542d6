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
/// Receives the trainer's per-batch reports: the library's <see cref="ConsoleProgress"/> prints the bars and lines (the
/// same output a library user gets from <see cref="TrainOptions.Verbose"/>); this adds the command's quiet and JSON modes.
/// </summary>
internal sealed class TrainReporter : IProgress<TrainProgress>
{
    /// <summary>Every figure by <see cref="Numbers.Json"/>: the same digits in every event; NaN (an epoch resumed after its
    /// last batch has no training figures) is written as "NaN", not an error.</summary>
    private static JsonSerializerOptions JsonOptions => Numbers.JsonOptions;

    private readonly int _epochs;
    private readonly TextWriter _output;
    private readonly ConsoleProgress? _console;

    public TrainReporter(ReportStyle style, int epochs, TextWriter output, int width = 0)
    {
        (Style, _epochs, _output) = (style, epochs, output);
        _console = style switch
        {
            ReportStyle.Bar => new ConsoleProgress(ProgressStyle.Bar, epochs, output, width),
            ReportStyle.Lines => new ConsoleProgress(ProgressStyle.Lines, epochs, output),
            ReportStyle.EpochLine => new ConsoleProgress(ProgressStyle.EpochLine, epochs, output),
            _ => null,
        };
    }

    public ReportStyle Style { get; }

    public void Report(TrainProgress p) => _console?.Report(p);

    /// <summary>The epoch's closing line with the validation figures, or its JSON object.</summary>
    public void Epoch(EpochStats e, string checkpoint)
    {
        if (Style == ReportStyle.Json)
        {
            var v = e.Validation!;
            _output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["event"] = "epoch", ["epoch"] = e.Epoch, ["epochs"] = _epochs,
                ["train_loss"] = e.TrainLoss, ["train_accuracy"] = e.TrainAccuracy,
                ["val_loss"] = v.Loss, ["val_accuracy"] = v.Accuracy, ["seconds"] = e.Elapsed.TotalSeconds, ["checkpoint"] = checkpoint,
            }, JsonOptions));
        }
        else _console?.Epoch(e);
    }

    /// <summary>A line of information (not in quiet or JSON mode).</summary>
    public void Info(string line) => _console?.Info(line);

    /// <summary>The final JSON object (JSON mode only).</summary>
    public void Done(IReadOnlyDictionary<string, object?> figures)
    {
        if (Style == ReportStyle.Json) _output.WriteLine(JsonSerializer.Serialize(figures, JsonOptions));
    }

    public void EndBar() => _console?.EndBar();
}
