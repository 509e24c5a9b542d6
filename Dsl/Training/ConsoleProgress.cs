using System.Globalization;

namespace Cnn.Dsl;

/// <summary>How <see cref="ConsoleProgress"/> prints (Keras's <c>verbose</c> 1 and 2).</summary>
public enum ProgressStyle
{
    /// <summary>A bar redrawn in place with a carriage return (verbose 1 on a terminal).</summary>
    Bar,

    /// <summary>The bar's line printed as plain lines, at the first batch and every tenth of an epoch (verbose 1 when the
    /// output is a file or a pipe, where a carriage return would leave every redraw in the log).</summary>
    Lines,

    /// <summary>One line per epoch (verbose 2).</summary>
    EpochLine,
}

/// <summary>
/// Training progress on a console, synchronously and in Keras's words (<c>fit(verbose=1)</c>):
/// <code>
/// Epoch 3/10
///  45/80 [===========>..................] - ETA: 3s - 41ms/step - loss: 0.2513 - accuracy: 0.9263
/// 80/80 [==============================] - 4s 41ms/step - loss: 0.2101 - accuracy: 0.9371 - val_loss: 0.1702 - val_accuracy: 0.9490
/// </code>
/// Pass it as <c>Trainer.Fit</c>'s progress and call <see cref="Epoch"/> from its <c>onEpoch</c>, or set
/// <see cref="TrainOptions.Verbose"/> and the trainer does both. It writes on the training thread as each report comes
/// (unlike <see cref="Progress{T}"/>, which posts to the thread pool and so can print the last batch after the epoch's line).
/// A redrawn bar never reaches the terminal's last column, where the terminal would wrap it and every redraw would
/// become a new line: it narrows the bar, then drops the time per step, the bar, and the metrics' long names, in that order.
/// </summary>
public sealed class ConsoleProgress : IProgress<TrainProgress>
{
    private const int FullBar = 30;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private readonly ProgressStyle _style;
    private readonly int _epochs;
    private readonly TextWriter _output;
    private readonly int _width;
    private int _lastLineTenth = -1;
    private int _headerEpoch;
    private int _firstBatch;
    private TrainProgress? _last;
    private bool _barOpen;
    private int _barLength;

    /// <summary>A reporter of <paramref name="style"/> for a run of <paramref name="epochs"/> epochs.</summary>
    /// <param name="style">Bar, plain lines or one line per epoch.</param>
    /// <param name="epochs">The run's epochs, for the <c>Epoch 3/10</c> headers.</param>
    /// <param name="output">Where to write (default: the console).</param>
    /// <param name="width">The terminal's width in columns for <see cref="ProgressStyle.Bar"/>; 0 (default) reads it from
    /// the console, or from the <c>COLUMNS</c> environment variable where set, else 80.</param>
    public ConsoleProgress(ProgressStyle style, int epochs, TextWriter? output = null, int width = 0)
    {
        _style = style;
        _epochs = epochs;
        _output = output ?? Console.Out;
        _width = width > 0 ? width : TerminalWidth();
    }

    /// <summary>
    /// Keras's <c>verbose</c>: null for 0 (silent); for 1 a redrawn bar when the console's output is a terminal, plain lines
    /// when it is redirected; for 2 one line per epoch.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="verbose"/> is not 0, 1 or 2.</exception>
    public static ConsoleProgress? ForVerbose(int verbose, int epochs, TextWriter? output = null) => verbose switch
    {
        0 => null,
        1 => new ConsoleProgress(Console.IsOutputRedirected || output is not null && output != Console.Out ? ProgressStyle.Lines : ProgressStyle.Bar, epochs, output),
        2 => new ConsoleProgress(ProgressStyle.EpochLine, epochs, output),
        _ => throw new ArgumentOutOfRangeException(nameof(verbose), verbose, "verbose is 0 (silent), 1 (progress bar) or 2 (one line per epoch)."),
    };

    /// <summary>The style in use.</summary>
    public ProgressStyle Style => _style;

    /// <summary>The columns a redrawn bar may use.</summary>
    public int Width => _width;

    /// <inheritdoc />
    public void Report(TrainProgress value)
    {
        var p = value;
        if (p.Epoch != _last?.Epoch) (_firstBatch, _lastLineTenth) = (p.Batch - 1, -1);
        _last = p;
        switch (_style)
        {
            case ProgressStyle.Bar:
                Header(p.Epoch);
                var bar = Fit(RunningForms(p));
                _output.Write($"\r{bar.PadRight(_barLength)}");
                _barLength = bar.Length;
                _barOpen = true;
                break;
            case ProgressStyle.Lines:
                Header(p.Epoch);
                // The epoch's last line comes with the validation figures (Epoch).
                if (p.Batch == p.Batches) return;
                int tenth = (int)(10L * p.Batch / p.Batches);
                if (tenth == _lastLineTenth || (tenth == 0 && p.Batch != 1)) return;
                _lastLineTenth = tenth;
                _output.WriteLine(RunningForms(p).First());
                break;
        }
    }

    /// <summary>The epoch's closing line: the full bar, the time, and the training (and validation) figures.</summary>
    /// <param name="stats">The epoch's figures, as <c>Trainer.Fit</c>'s <c>onEpoch</c> receives them.</param>
    public void Epoch(EpochStats stats)
    {
        if (_style == ProgressStyle.EpochLine)
        {
            _output.WriteLine($"Epoch {stats.Epoch}/{_epochs} - {ClosingForms(stats).First()}");
            return;
        }
        Header(stats.Epoch);
        var closing = _style == ProgressStyle.Bar ? Fit(ClosingForms(stats)) : ClosingForms(stats).First();
        _output.WriteLine(_barOpen ? $"\r{closing.PadRight(_barLength)}" : closing);
        (_barOpen, _barLength) = (false, 0);
    }

    /// <summary>A line of information between the bars (an open bar is closed first).</summary>
    public void Info(string line)
    {
        EndBar();
        _output.WriteLine(line);
    }

    /// <summary>Ends an open bar's line, so what follows starts on a line of its own.</summary>
    public void EndBar()
    {
        if (!_barOpen) return;
        _output.WriteLine();
        (_barOpen, _barLength) = (false, 0);
    }

    /// <summary><c>Epoch 3/10</c>, once per epoch, before its first bar.</summary>
    private void Header(int epoch)
    {
        if (_headerEpoch == epoch) return;
        EndBar();
        _headerEpoch = epoch;
        _output.WriteLine($"Epoch {epoch}/{_epochs}");
    }

    /// <summary>The first form that leaves the last column free, else the last form cut to fit.</summary>
    private string Fit(IEnumerable<string> forms)
    {
        string last = "";
        foreach (var f in forms)
        {
            if (f.Length < _width) return f;
            last = f;
        }
        return last[..Math.Max(0, _width - 1)];
    }

    /// <summary>A bar during the epoch, widest first: steps done/total, bar, time left, time per step, running means.</summary>
    private IEnumerable<string> RunningForms(TrainProgress p)
    {
        double perStep = StepSeconds(p);
        int width = p.Batches.ToString(Inv).Length;
        string steps = $"{p.Batch.ToString(Inv).PadLeft(width)}/{p.Batches}", eta = $"ETA: {Duration(perStep * (p.Batches - p.Batch))}";
        string metrics = string.Create(Inv, $"loss: {p.RunningLoss:F4}") + Accuracy("accuracy", p.RunningAccuracy);
        foreach (int bar in new[] { FullBar, 20, 10 })
            yield return $"{steps} {Bar(p.Batch, p.Batches, bar)} - {eta} - {PerStep(perStep)} - {metrics}";
        yield return $"{steps} {Bar(p.Batch, p.Batches, 10)} - {eta} - {metrics}";
        yield return $"{steps} - {eta} - {metrics}";
        yield return string.Create(Inv, $"{steps} - {eta} - loss: {p.RunningLoss:F4}") + Accuracy("acc", p.RunningAccuracy);
    }

    /// <summary>An accuracy figure, or nothing where accuracy is not defined (NaN: training on float targets).</summary>
    private static string Accuracy(string name, float value) => float.IsNaN(value) ? "" : string.Create(Inv, $" - {name}: {value:F4}");

    /// <summary>The epoch's line, widest first: the full bar (or, one line per epoch, the step count), the time, the metrics.</summary>
    private IEnumerable<string> ClosingForms(EpochStats e)
    {
        var p = _last is { } l && l.Epoch == e.Epoch ? l : null;
        string time = Duration(e.Elapsed.TotalSeconds), perStep = p is null ? "" : " " + PerStep(StepSeconds(p));
        string Metrics(bool shortNames) => string.Create(Inv, $"loss: {e.TrainLoss:F4}") + Accuracy(shortNames ? "acc" : "accuracy", e.TrainAccuracy)
            + (e.Validation is { } v ? string.Create(Inv, $" - val_loss: {v.Loss:F4}") + Accuracy(shortNames ? "val_acc" : "val_accuracy", v.Accuracy) : "");
        string count = p is null ? "" : $"{p.Batches}/{p.Batches} - ";
        if (_style != ProgressStyle.EpochLine && p is not null)
            foreach (int bar in new[] { FullBar, 20, 10 })
                yield return $"{p.Batches}/{p.Batches} {Bar(1, 1, bar)} - {time}{perStep} - {Metrics(false)}";
        yield return $"{count}{time}{perStep} - {Metrics(false)}";
        yield return $"{count}{time} - {Metrics(true)}";
    }

    /// <summary>Seconds per step over the steps this run has timed in the epoch (a resumed epoch starts its clock at the resumed batch).</summary>
    private double StepSeconds(TrainProgress p) => p.Elapsed.TotalSeconds / Math.Max(1, p.Batch - _firstBatch);

    /// <summary><c>[=====&gt;......]</c>: Keras's bar, <paramref name="width"/> characters between the brackets.</summary>
    internal static string Bar(int done, int total, int width = FullBar)
    {
        int filled = (int)((long)width * done / Math.Max(1, total));
        return done >= total ? $"[{new string('=', width)}]"
            : $"[{new string('=', Math.Max(0, filled - 1))}>{new string('.', width - Math.Max(1, filled))}]";
    }

    /// <summary>Keras's durations: <c>7s</c>, <c>1:05</c>, <c>1:02:03</c>.</summary>
    public static string Duration(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Max(0, Math.Round(seconds)));
        return t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", Inv) : t.TotalMinutes >= 1 ? t.ToString(@"m\:ss", Inv) : string.Create(Inv, $"{(int)t.TotalSeconds}s");
    }

    /// <summary>Keras's time per step: <c>850us/step</c>, <c>41ms/step</c>, <c>2s/step</c>.</summary>
    public static string PerStep(double seconds) => seconds switch
    {
        >= 1 => string.Create(Inv, $"{seconds:F0}s/step"),
        >= 1e-3 => string.Create(Inv, $"{seconds * 1e3:F0}ms/step"),
        _ => string.Create(Inv, $"{seconds * 1e6:F0}us/step"),
    };

    /// <summary>The console's columns; <c>COLUMNS</c> where set (as Python's <c>shutil.get_terminal_size</c>), 80 when unknown.</summary>
    private static int TerminalWidth()
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), NumberStyles.Integer, Inv, out int columns) && columns > 0) return columns;
        try
        {
            if (!Console.IsOutputRedirected && Console.WindowWidth > 0) return Console.WindowWidth;
        }
        catch (IOException)
        {
        }
        return 80;
    }
}
