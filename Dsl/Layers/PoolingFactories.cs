namespace Cnn.Dsl;

public sealed partial record MaxPool2d
{
    /// <summary>
    /// Max pooling over square windows: <c>MaxPool2d.Square(2)</c> is <c>new MaxPool2d(2, 2, 2, 2)</c> (the stride defaults to
    /// the window, as in PyTorch); <c>MaxPool2d.Square(3, stride: 1, padding: Padding.Same)</c> keeps the size.
    /// </summary>
    /// <param name="kernel">Window height and width.</param>
    /// <param name="stride">Stride on both axes (default: the window).</param>
    /// <param name="padding">How to pad (default <see cref="Padding.Valid"/>).</param>
    /// <param name="ceilMode">Round the output size up (default false).</param>
    /// <exception cref="ArgumentException"><see cref="Padding.Same"/> with an even window.</exception>
    public static MaxPool2d Square(int kernel, int? stride = null, Padding? padding = null, bool ceilMode = false)
    {
        var p = padding ?? Padding.Valid;
        return new MaxPool2d(kernel, kernel, stride ?? kernel, stride ?? kernel,
            p.Resolve(kernel, 1, p.H, "MaxPool2d"), p.Resolve(kernel, 1, p.W, "MaxPool2d"), ceilMode);
    }
}

public sealed partial record AvgPool2d
{
    /// <summary>
    /// Average pooling over square windows: <c>AvgPool2d.Square(2)</c> is <c>new AvgPool2d(2, 2, 2, 2)</c> (the stride
    /// defaults to the window, as in PyTorch).
    /// </summary>
    /// <param name="kernel">Window height and width.</param>
    /// <param name="stride">Stride on both axes (default: the window).</param>
    /// <param name="padding">How to pad (default <see cref="Padding.Valid"/>).</param>
    /// <param name="ceilMode">Round the output size up (default false).</param>
    /// <param name="countIncludePad">Divide by the whole window, padding included (PyTorch's default, true), or by the real elements only.</param>
    /// <exception cref="ArgumentException"><see cref="Padding.Same"/> with an even window.</exception>
    public static AvgPool2d Square(int kernel, int? stride = null, Padding? padding = null, bool ceilMode = false, bool countIncludePad = true)
    {
        var p = padding ?? Padding.Valid;
        return new AvgPool2d(kernel, kernel, stride ?? kernel, stride ?? kernel,
            p.Resolve(kernel, 1, p.H, "AvgPool2d"), p.Resolve(kernel, 1, p.W, "AvgPool2d"), ceilMode, countIncludePad);
    }
}
