using SkiaSharp;

namespace Cnn.Cli.Pictures;

/// <summary>
/// A colour scale drawn as a bar beside a picture: the colour of a value in [0, 1] (0 the bottom of the bar, 1 its
/// top), the values the ends stand for, and what the values are.
/// </summary>
internal sealed record ColourScale(Func<float, (byte R, byte G, byte B)> Colour, string Low, string High, string Caption)
{
    /// <summary>Black at <paramref name="min"/>, white at <paramref name="max"/>.</summary>
    public static ColourScale Grey(float min, float max, string caption) => new(Raster.Grey, Numbers.G(min), Numbers.G(max), caption);
}

/// <summary>
/// A picture a person reads without the source: a title of one or more lines, the body (a raster drawn pixel for
/// pixel, so a magnified tile stays sharp), small labels placed on the body's coordinates, and a colour bar at the
/// body's right with the values of its ends.
/// </summary>
internal static class Figure
{
    public const int Pad = 12, BarWidth = 16, TitleSize = 15, LineSize = 12, LabelSize = 11;

    /// <summary>The bar's height at least, so that its two end labels never meet over a short body.</summary>
    public const int MinBarHeight = 64;

    /// <summary>
    /// Draws the figure. <paramref name="labels"/> are centred at X with their baseline at Y, in the body's
    /// coordinates, in <paramref name="labelColour"/> (black by default). The first title line is bold.
    /// </summary>
    public static Drawing Around(Raster body, IReadOnlyList<string> title, ColourScale? scale = null,
        IReadOnlyList<(string Text, float X, float Y)>? labels = null, SKColor? labelColour = null)
    {
        float LineHeight(int i) => (i == 0 ? TitleSize : LineSize) * 1.4f;
        float titleHeight = title.Select((_, i) => LineHeight(i)).Sum();
        float titleWidth = title.Select((t, i) => Drawing.Width(t, i == 0 ? TitleSize : LineSize, i == 0)).DefaultIfEmpty(0).Max();
        int barHeight = Math.Max(body.Height, MinBarHeight);
        float barBlock = scale is null ? 0
            : Pad + BarWidth + 4 + Math.Max(Drawing.Width(scale.Low, LabelSize), Drawing.Width(scale.High, LabelSize)) + 6 + LabelSize * 1.3f;
        int bodyX = Pad, bodyY = Pad + (int)Math.Ceiling(titleHeight) + (title.Count > 0 ? 6 : 0);
        int width = (int)Math.Ceiling(Math.Max(Pad + body.Width + barBlock + Pad, 2 * Pad + titleWidth));
        int height = bodyY + (scale is null ? body.Height : barHeight) + Pad;

        var d = new Drawing(width, height);
        float y = Pad;
        for (int i = 0; i < title.Count; i++)
        {
            y += LineHeight(i);
            d.Text(title[i], Pad, y - LineHeight(i) * 0.28f, i == 0 ? TitleSize : LineSize, bold: i == 0, colour: i == 0 ? SKColors.Black : new SKColor(60, 60, 60));
        }
        d.Image(body, bodyX, bodyY);
        foreach (var (text, x, ly) in labels ?? [])
            d.Text(text, bodyX + x, bodyY + ly, LabelSize, SKTextAlign.Center, labelColour);
        if (scale is not null) Bar(d, scale, bodyX + body.Width + Pad, bodyY, barHeight);
        return d;
    }

    /// <summary>The colour bar: the scale's colours from its top (1) to its bottom (0), a thin frame, the end values and the caption.</summary>
    private static void Bar(Drawing d, ColourScale scale, int x, int y, int height)
    {
        using var fill = new SKPaint { Style = SKPaintStyle.Fill };
        for (int i = 0; i < height; i++)
        {
            var (r, g, b) = scale.Colour(height == 1 ? 1 : 1 - (float)i / (height - 1));
            fill.Color = new SKColor(r, g, b);
            d.Canvas.DrawRect(x, y + i, BarWidth, 1, fill);
        }
        using var frame = new SKPaint { Style = SKPaintStyle.Stroke, Color = new SKColor(120, 120, 120) };
        d.Canvas.DrawRect(x - 0.5f, y - 0.5f, BarWidth + 1, height + 1, frame);
        d.Text(scale.High, x + BarWidth + 4, y + LabelSize * 0.8f, LabelSize);
        d.Text(scale.Low, x + BarWidth + 4, y + height, LabelSize);
        float labels = Math.Max(Drawing.Width(scale.Low, LabelSize), Drawing.Width(scale.High, LabelSize));
        d.Text(scale.Caption, x + BarWidth + 4 + labels + 6 + LabelSize, y + height / 2f, LabelSize, SKTextAlign.Center, vertical: true);
    }
}
