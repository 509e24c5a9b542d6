using System.Globalization;
using SkiaSharp;

namespace Cnn.Cli.Pictures;

/// <summary>
/// The confusion matrix on the validation set: row = true class, column = predicted class; each cell shows its count
/// and is shaded by the count's share of its row (white 0 to dark blue 1), so the diagonal is the per-class recall.
/// A title gives the number of examples and the accuracy; the margins are as wide as the labels need.
/// </summary>
internal static class ConfusionPicture
{
    public const int Cell = 48, LabelSize = 11, AxisSize = 13;

    /// <summary>Where the cells start (<see cref="Left"/>, <see cref="Top"/>), the picture's size and the widest class label.</summary>
    internal sealed record Layout(int Left, int Top, int Width, int Height, float LabelWidth);

    /// <summary>Counts of (true, predicted) pairs.</summary>
    public static int[,] Matrix(IReadOnlyList<int> truth, IReadOnlyList<int> predicted, int classes)
    {
        var m = new int[classes, classes];
        for (int i = 0; i < truth.Count; i++) m[truth[i], predicted[i]]++;
        return m;
    }

    /// <summary>The two title lines: what the matrix counts, and the accuracy (the diagonal's share).</summary>
    public static IReadOnlyList<string> Title(int[,] matrix)
    {
        int k = matrix.GetLength(0), total = 0, right = 0;
        for (int r = 0; r < k; r++)
            for (int c = 0; c < k; c++) (total, right) = (total + matrix[r, c], right + (r == c ? matrix[r, c] : 0));
        string accuracy = total == 0 ? "no examples" : string.Create(CultureInfo.InvariantCulture, $"accuracy {100.0 * right / total:F2} % ({right} of {total})");
        return [string.Create(CultureInfo.InvariantCulture, $"Confusion matrix: {total} validation examples"), $"{accuracy}; shade = share of the row"];
    }

    /// <summary>The layout for <paramref name="classes"/> classes named by <paramref name="names"/>.</summary>
    public static Layout Place(int classes, IReadOnlyList<string> names, IReadOnlyList<string> title)
    {
        float labels = Enumerable.Range(0, classes).Select(i => Drawing.Width(Label(names, i), LabelSize)).DefaultIfEmpty(0).Max();
        float titleHeight = title.Count * Figure.LineSize * 1.4f + (Figure.TitleSize - Figure.LineSize) * 1.4f;
        float titleWidth = title.Select((t, i) => Drawing.Width(t, i == 0 ? Figure.TitleSize : Figure.LineSize, i == 0)).Max();
        int left = (int)Math.Ceiling(Figure.Pad + AxisSize * 1.4f + 6 + labels + 6);
        int top = (int)Math.Ceiling(Figure.Pad + titleHeight + 8 + AxisSize * 1.4f + labels + 6);
        int width = (int)Math.Ceiling(Math.Max(left + classes * Cell + Figure.Pad, 2 * Figure.Pad + titleWidth));
        return new Layout(left, top, width, top + classes * Cell + Figure.Pad, labels);
    }

    /// <summary>Draws the matrix with its title, axis names and class labels.</summary>
    public static Drawing Draw(int[,] matrix, IReadOnlyList<string> classNames)
    {
        int k = matrix.GetLength(0);
        var title = Title(matrix);
        var at = Place(k, classNames, title);
        var d = new Drawing(at.Width, at.Height);
        float y = Figure.Pad + Figure.TitleSize * 1.4f;
        d.Text(title[0], Figure.Pad, y - 4, Figure.TitleSize, bold: true);
        y += Figure.LineSize * 1.4f;
        d.Text(title[1], Figure.Pad, y - 3, Figure.LineSize, colour: new SKColor(60, 60, 60));
        d.Text("predicted", at.Left + k * Cell / 2f, at.Top - 6 - at.LabelWidth - 6, AxisSize, SKTextAlign.Center);
        d.Text("true", Figure.Pad + AxisSize, at.Top + k * Cell / 2f, AxisSize, SKTextAlign.Center, vertical: true);
        using var fill = new SKPaint { Style = SKPaintStyle.Fill };
        using var line = new SKPaint { Color = new SKColor(200, 200, 200), Style = SKPaintStyle.Stroke };
        for (int r = 0; r < k; r++)
        {
            int rowSum = 0;
            for (int c = 0; c < k; c++) rowSum += matrix[r, c];
            d.Text(Label(classNames, r), at.Left - 6, at.Top + r * Cell + Cell / 2f + 4, LabelSize, SKTextAlign.Right);
            for (int c = 0; c < k; c++)
            {
                float share = rowSum == 0 ? 0 : (float)matrix[r, c] / rowSum;
                fill.Color = Shade(share);
                var rect = SKRect.Create(at.Left + c * Cell, at.Top + r * Cell, Cell, Cell);
                d.Canvas.DrawRect(rect, fill);
                d.Canvas.DrawRect(rect, line);
                d.Text(matrix[r, c].ToString(CultureInfo.InvariantCulture), rect.MidX, rect.MidY + 4, LabelSize, SKTextAlign.Center, share > 0.5f ? SKColors.White : SKColors.Black);
            }
        }
        for (int c = 0; c < k; c++)
            d.Text(Label(classNames, c), at.Left + c * Cell + Cell / 2f + 4, at.Top - 6, LabelSize, vertical: true);
        return d;
    }

    /// <summary>Draws the matrix and writes it atomically as PNG.</summary>
    public static void Save(string path, int[,] matrix, IReadOnlyList<string> classNames)
    {
        using var d = Draw(matrix, classNames);
        d.Save(path);
    }

    /// <summary>White (0) to dark blue (1).</summary>
    public static SKColor Shade(float share) =>
        new((byte)(255 - 225 * share), (byte)(255 - 185 * share), (byte)(255 - 100 * share));

    private static string Label(IReadOnlyList<string> names, int i) => i < names.Count ? names[i] : i.ToString(CultureInfo.InvariantCulture);
}
