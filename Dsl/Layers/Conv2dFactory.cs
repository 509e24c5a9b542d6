namespace Cnn.Dsl;

public sealed partial record Conv2d
{
    /// <summary>
    /// A square convolution with named options: <c>new Conv2d(6, kernel: 5, padding: Padding.Same)</c>,
    /// <c>new Conv2d(64, kernel: 3, stride: 2, padding: Padding.Of(1))</c>. The same record as the positional constructor
    /// (<c>new Conv2d(6, 5, 5, PadH: 2, PadW: 2)</c>), with <see cref="Padding.Same"/> resolved from the kernel and dilation.
    /// </summary>
    /// <param name="filters">Output channels.</param>
    /// <param name="kernel">Kernel height and width.</param>
    /// <param name="padding">How to pad (default <see cref="Padding.Valid"/>).</param>
    /// <param name="stride">Stride on both axes (default 1).</param>
    /// <param name="dilation">Spacing of kernel taps on both axes (default 1).</param>
    /// <param name="useBias">Whether the layer adds a bias per filter (default true).</param>
    /// <param name="groups">Channel groups (default 1).</param>
    /// <exception cref="ArgumentException"><see cref="Padding.Same"/> with an even dilated kernel.</exception>
    public Conv2d(int filters, int kernel, Padding? padding = null, int stride = 1, int dilation = 1, bool useBias = true, int groups = 1)
        : this(filters, kernel, kernel, stride, stride,
            (padding ?? Padding.Valid).Resolve(kernel, dilation, (padding ?? Padding.Valid).H, "Conv2d"),
            (padding ?? Padding.Valid).Resolve(kernel, dilation, (padding ?? Padding.Valid).W, "Conv2d"),
            useBias, dilation, dilation, groups)
    {
    }
}
