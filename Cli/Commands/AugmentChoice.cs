using System.CommandLine;
using System.Globalization;
using Cnn.Dsl.Data;

namespace Cnn.Cli;

/// <summary>
/// <c>cnn train</c>'s augmentation options: <c>--augment</c> turns on the data's own set (<see cref="DataSource.Augmentation"/>),
/// and each option here adds a transform of <see cref="AugmentOptions"/>, with or without it. The batch pipeline of
/// <c>Trainer.Fit</c> draws them afresh every epoch.
/// </summary>
internal static class AugmentChoice
{
    /// <summary>The fill modes' words, in <see cref="FillMode"/>'s order.</summary>
    private static readonly string[] FillNames = ["constant", "nearest", "reflect", "wrap"];

    public const string Help = """
          --augment              random transforms each epoch: shifts <= 2 px and rotations <= 10 degrees for
                                 digits; horizontal flips and 4-px-padded random crops for CIFAR-10; the options
                                 below add transforms, with or without --augment:
          --flip-vertical        mirror top-bottom with probability 1/2
          --shift-fraction X     shift by up to X of the width and height, bilinear (0 < X <= 1)
          --zoom X               zoom each axis by a factor in [1-X, 1+X] (0 < X < 1)
          --shear DEG            shear by up to DEG degrees (below 90)
          --fill MODE            what the geometric transforms read outside the image: constant (0), nearest,
                                 reflect or wrap (constant)
          --brightness X         multiply by a factor in [1-X, 1+X], clamped to [0, 1]
          --contrast X           blend with the image's mean grey by a factor in [1-X, 1+X], clamped to [0, 1]
          --erase P              random erasing with probability P (0 < P <= 1): a rectangle of 2 to 33 % of the
                                 image, aspect 0.3 to 3.3, set to 0 after normalisation
        """;

    public static Option[] Options { get; } =
    [
        Opt.Flag("augment"), Opt.Flag("flip-vertical"), Opt.Positive("shift-fraction", 1), Opt.Positive("zoom", 0.999f), Opt.Positive("shear", 89.9f),
        Opt.Choice("fill", FillNames), Opt.Positive("brightness", 100), Opt.Positive("contrast", 100), Opt.Positive("erase", 1),
    ];

    /// <summary>
    /// The augmentation the options ask for on top of <paramref name="dataSet"/> (the data's own set, used with
    /// <c>--augment</c>); null when none is asked for.
    /// </summary>
    public static AugmentOptions? Create(Args a, AugmentOptions dataSet)
    {
        var o = a.Flag("augment") ? dataSet : new AugmentOptions();
        o = o with
        {
            FlipVertical = o.FlipVertical || a.Flag("flip-vertical"),
            MaxShiftFraction = a.Float("shift-fraction", o.MaxShiftFraction),
            ZoomRange = a.Float("zoom", o.ZoomRange),
            MaxShearDegrees = a.Float("shear", o.MaxShearDegrees),
            Fill = a.String("fill") is { } fill ? (FillMode)Array.IndexOf(FillNames, fill) : o.Fill,
            Brightness = a.Float("brightness", o.Brightness),
            Contrast = a.Float("contrast", o.Contrast),
            Erasing = a.String("erase") is null ? o.Erasing : RandomErasing.Default with { Probability = a.Float("erase", 0.5f) },
        };
        return o == new AugmentOptions() ? null : o;
    }

    /// <summary>The metadata key of <see cref="Recorded"/>.</summary>
    public const string RecordedKey = "augmentation";

    /// <summary>
    /// The options beyond <c>--augment</c> as the checkpoint records them (compared on resume): <c>none</c>, or
    /// <c>name=value</c> pairs such as <c>zoom=0.1,fill=reflect</c>.
    /// </summary>
    public static string Recorded(Args a)
    {
        var given = Options.Skip(1).Select(o => o.Name.TrimStart('-'))
            .Where(name => name == "flip-vertical" ? a.Flag(name) : a.String(name) is not null)
            .Select(name => name switch
            {
                "flip-vertical" => name,
                "fill" => $"fill={a.String(name)}",
                _ => $"{name}={a.Float(name, 0).ToString("R", CultureInfo.InvariantCulture)}",
            });
        return string.Join(",", given) is { Length: > 0 } text ? text : "none";
    }
}
