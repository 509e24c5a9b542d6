using System.Globalization;
using Cnn.Dsl.IO;

namespace Cnn.Cli;

/// <summary>One epoch's figures, as <c>metrics.csv</c> holds them.</summary>
internal sealed record EpochRow(int Epoch, double TrainLoss, double TrainAccuracy, double ValidationLoss, double ValidationAccuracy, double Seconds)
{
    public const string CsvHeader = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds";

    public string ToCsv() => string.Join(",", new[] { Epoch.ToString(Inv) }.Concat(new[] { TrainLoss, TrainAccuracy, ValidationLoss, ValidationAccuracy, Seconds }.Select(v => v.ToString("R", Inv))));

    /// <summary>Reads <c>metrics.csv</c>.</summary>
    /// <exception cref="Core.FormatException">A line is not six numbers.</exception>
    public static IReadOnlyList<EpochRow> ReadCsv(string path)
    {
        // 16 MiB: a hundred thousand epochs' rows.
        var lines = Dsl.IO.InputFile.ReadAllText(path, "metrics file", 16L << 20).Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        if (lines.Length > 0 && lines[^1].Length == 0) lines = lines[..^1];
        if (lines.Length == 0 || lines[0] != CsvHeader) throw new Core.FormatException($"'{path}' does not begin with the header '{CsvHeader}'.");
        return lines.Skip(1).Where(l => l.Length > 0).Select((l, i) =>
        {
            var f = l.Split(',');
            double D(int k) => double.TryParse(f[k], NumberStyles.Float, Inv, out var d) ? d
                : throw new Core.FormatException($"'{path}' line {i + 2}: '{f[k]}' is not a number.");
            if (f.Length != 6 || !int.TryParse(f[0], NumberStyles.Integer, Inv, out var e))
                throw new Core.FormatException($"'{path}' line {i + 2}: expected 6 comma-separated numbers.");
            return new EpochRow(e, D(1), D(2), D(3), D(4), D(5));
        }).ToList();
    }

    /// <summary>Writes <c>metrics.csv</c> atomically.</summary>
    public static void WriteCsv(string path, IEnumerable<EpochRow> rows) =>
        AtomicFile.WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(string.Join("\n", new[] { CsvHeader }.Concat(rows.Select(r => r.ToCsv()))) + "\n"));

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
}
