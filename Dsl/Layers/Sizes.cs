namespace Cnn.Dsl;

/// <summary>
/// A size per axis of a 2-d window (height, width): a kernel, stride, padding, output padding or dilation. An integer
/// converts to the same value on both axes and a tuple to one value per axis, so <c>Kernel: 3</c> and
/// <c>Kernel: (3, 5)</c> both read naturally.
/// </summary>
/// <param name="H">The value along the height.</param>
/// <param name="W">The value along the width.</param>
public readonly record struct Size2(int H, int W)
{
    /// <summary>The same value on both axes.</summary>
    /// <param name="value">The value.</param>
    public static implicit operator Size2(int value) => new(value, value);

    /// <summary>One value per axis.</summary>
    /// <param name="values">Height and width.</param>
    public static implicit operator Size2((int H, int W) values) => new(values.H, values.W);

    /// <summary>The same value on both axes (for languages without implicit conversions, such as F#).</summary>
    /// <param name="value">The value.</param>
    public static Size2 All(int value) => new(value, value);

    /// <summary>The values in axis order: height, width.</summary>
    public int[] ToArray() => new[] { H, W };

    /// <summary>Formats as <c>(H, W)</c>.</summary>
    public override string ToString() => $"({H}, {W})";
}

/// <summary>
/// A size per axis of a 3-d window (depth, height, width): a kernel, stride, padding, output padding or dilation. An
/// integer converts to the same value on every axis and a tuple to one value per axis, so <c>Kernel: 3</c> and
/// <c>Kernel: (1, 3, 3)</c> both read naturally.
/// </summary>
/// <param name="D">The value along the depth.</param>
/// <param name="H">The value along the height.</param>
/// <param name="W">The value along the width.</param>
public readonly record struct Size3(int D, int H, int W)
{
    /// <summary>The same value on every axis.</summary>
    /// <param name="value">The value.</param>
    public static implicit operator Size3(int value) => new(value, value, value);

    /// <summary>One value per axis.</summary>
    /// <param name="values">Depth, height and width.</param>
    public static implicit operator Size3((int D, int H, int W) values) => new(values.D, values.H, values.W);

    /// <summary>The same value on every axis (for languages without implicit conversions, such as F#).</summary>
    /// <param name="value">The value.</param>
    public static Size3 All(int value) => new(value, value, value);

    /// <summary>The values in axis order: depth, height, width.</summary>
    public int[] ToArray() => new[] { D, H, W };

    /// <summary>Formats as <c>(D, H, W)</c>.</summary>
    public override string ToString() => $"({D}, {H}, {W})";
}
