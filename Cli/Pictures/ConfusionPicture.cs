using Cnn.Dsl.IO;
using SkiaSharp;

namespace Cnn.Cli.Pictures;

/// <summary>
/// The confusion matrix on the validation set: row = true class, column = predicted class; each cell shows its count
/// and is shaded by the count's share of its row (white 0 to dark blue 1), so the diagonal is the per-class recall.
/// </summary>
internal static class ConfusionPicture
{
    public const int Cell = 48, Margin = 110;

    /// <summary>Counts of (true, predicted) pairs.</summary>
    public static int[,] Matrix(IReadOnlyList<int> truth, IReadOnlyList<int> predicted, int classes)
    {
        var m = new int[classes, classes];
        for (int i = 0; i < truth.Count; i++) m[truth[i], predicted[i]]++;
        return m;
    }

    /// <summary>The picture's side: the margin for the labels plus one cell per class.</summary>
    public static int Side(int classes) => Margin + classes * Cell + 10;

    /// <summary>Draws the matrix and writes it atomically as PNG.</summary>
    public static void Save(string path, int[,] matrix, IReadOnlyList<string> classNames)
    {
        int k = matrix.GetLength(0), side = Side(k);
        using var bitmap = new SKBitmap(side, side, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            using var font = new SKFont(SKTypeface.Default, 13);
            using var small = new SKFont(SKTypeface.Default, 11);
            using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            using var fill = new SKPaint { Style = SKPaintStyle.Fill };
            using var line = new SKPaint { Color = new SKColor(200, 200, 200), Style = SKPaintStyle.Stroke };
            canvas.DrawText("predicted", Margin + k * Cell / 2f, Margin - 40, SKTextAlign.Center, font, ink);
            canvas.Save();
            canvas.RotateDegrees(-90);
            canvas.DrawText("true", -(Margin + k * Cell / 2f), 18, SKTextAlign.Center, font, ink);
            canvas.Restore();
            for (int r = 0; r < k; r++)
            {
                int rowSum = 0;
                for (int c = 0; c < k; c++) rowSum += matrix[r, c];
                canvas.DrawText(Label(classNames, r), Margin - 6, Margin + r * Cell + Cell / 2f + 4, SKTextAlign.Right, small, ink);
                for (int c = 0; c < k; c++)
                {
                    float share = rowSum == 0 ? 0 : (float)matrix[r, c] / rowSum;
                    fill.Color = Shade(share);
                    var rect = SKRect.Create(Margin + c * Cell, Margin + r * Cell, Cell, Cell);
                    canvas.DrawRect(rect, fill);
                    canvas.DrawRect(rect, line);
                    using var text = new SKPaint { Color = share > 0.5f ? SKColors.White : SKColors.Black, IsAntialias = true };
                    canvas.DrawText(matrix[r, c].ToString(System.Globalization.CultureInfo.InvariantCulture), rect.MidX, rect.MidY + 4, SKTextAlign.Center, small, text);
                }
            }
            for (int c = 0; c < k; c++)
            {
                canvas.Save();
                canvas.Translate(Margin + c * Cell + Cell / 2f + 4, Margin - 6);
                canvas.RotateDegrees(-90);
                canvas.DrawText(Label(classNames, c), 0, 0, SKTextAlign.Left, small, ink);
                canvas.Restore();
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(path, s => data.SaveTo(s));
    }

    /// <summary>White (0) to dark blue (1).</summary>
    public static SKColor Shade(float share) =>
        new((byte)(255 - 225 * share), (byte)(255 - 185 * share), (byte)(255 - 100 * share));

    private static string Label(IReadOnlyList<string> names, int i) => i < names.Count ? names[i] : i.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
