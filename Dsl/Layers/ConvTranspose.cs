namespace Cnn.Dsl;

/// <summary>
/// Transposed 1-d convolution (the adjoint of a strided convolution) over NCL input, as PyTorch's <c>nn.ConvTranspose1d</c>.
/// Output length <c>(in-1)*stride - 2*pad + dilation*(kernel-1) + 1 + outputPad</c>. Weight <c>[C, Filters/Groups, Kernel]</c>
/// (PyTorch's layout), bias <c>[Filters]</c>.
/// </summary>
/// <param name="Filters">Output channels.</param>
/// <param name="Kernel">Kernel length.</param>
/// <param name="Stride">Upsampling stride (default 1).</param>
/// <param name="Pad">Padding removed from each end of the output (default 0).</param>
/// <param name="OutputPad">Extra elements added at the end, below the stride (default 0).</param>
/// <param name="UseBias">Whether to add a bias (default true).</param>
/// <param name="Dilation">Spacing of kernel taps (default 1).</param>
/// <param name="Groups">Channel groups (default 1).</param>
/// <param name="PadEnd">Padding removed from the end of the output where it differs from <paramref name="Pad"/> (default null: the
/// same), as ONNX's SAME_UPPER crops only the end.</param>
public sealed record ConvTranspose1d(int Filters, int Kernel, int Stride = 1, int Pad = 0, int OutputPad = 0, bool UseBias = true, int Dilation = 1, int Groups = 1,
    int? PadEnd = null) : ConvolutionLayer
{
    /// <summary>Padding removed from the end of the output where it differs from <see cref="Pad"/>; null: the same (an end equal to it is stored as null).</summary>
    public int? PadEnd { get; init; } = PadEnd == Pad ? null : PadEnd;

    /// <inheritdoc />
    public override ConvSpec Spec() =>
        ConvSpec.Of(Filters, new[] { Kernel }, new[] { Stride }, new[] { Pad }, new[] { Dilation }, Groups, UseBias, new[] { OutputPad }, PadEnd is { } e ? new[] { e } : null);
}

/// <summary>
/// Transposed 2-d convolution ("deconvolution"), as PyTorch's <c>nn.ConvTranspose2d</c> and a DCGAN generator use it, with
/// kernel, stride, padding, output padding and dilation per axis (an integer means the same on both):
/// <c>new ConvTranspose2d(64, Kernel: 4, Stride: 2, Pad: 1)</c>, <c>new ConvTranspose2d(8, Kernel: (3, 5), Stride: (1, 2))</c>.
/// Output size <c>(in-1)*stride - 2*pad + dilation*(kernel-1) + 1 + outputPad</c> per axis. Weight
/// <c>[C, Filters/Groups, KH, KW]</c> (PyTorch's layout), bias <c>[Filters]</c>.
/// </summary>
public sealed record ConvTranspose2d : ConvolutionLayer
{
    /// <summary>A transposed 2-d convolution.</summary>
    /// <param name="Filters">Output channels.</param>
    /// <param name="Kernel">Kernel height and width.</param>
    /// <param name="Stride">Upsampling stride per axis (default 1).</param>
    /// <param name="Pad">Padding removed from each side of the output per axis (default 0).</param>
    /// <param name="OutputPad">Extra rows and columns added at the bottom and right, below the stride, to pick among the sizes a
    /// strided convolution maps to one (default 0).</param>
    /// <param name="UseBias">Whether to add a bias (default true).</param>
    /// <param name="Dilation">Spacing of kernel taps per axis (default 1).</param>
    /// <param name="Groups">Channel groups (default 1).</param>
    /// <param name="PadEnd">Padding removed from the bottom and right of the output where it differs from <paramref name="Pad"/>
    /// (default null: the same), as ONNX's SAME_UPPER crops only the end.</param>
    public ConvTranspose2d(int Filters, Size2 Kernel, Size2? Stride = null, Size2? Pad = null, Size2? OutputPad = null, bool UseBias = true,
        Size2? Dilation = null, int Groups = 1, Size2? PadEnd = null)
    {
        this.PadEnd = PadEnd == (Pad ?? 0) ? null : PadEnd;
        this.Filters = Filters;
        this.Kernel = Kernel;
        this.Stride = Stride ?? 1;
        this.Pad = Pad ?? 0;
        this.OutputPad = OutputPad ?? 0;
        this.UseBias = UseBias;
        this.Dilation = Dilation ?? 1;
        this.Groups = Groups;
    }

    /// <summary>Output channels.</summary>
    public int Filters { get; init; }

    /// <summary>Kernel height and width.</summary>
    public Size2 Kernel { get; init; }

    /// <summary>Upsampling stride per axis.</summary>
    public Size2 Stride { get; init; }

    /// <summary>Padding removed from each side of the output per axis (from the top and left only, where <see cref="PadEnd"/> is set).</summary>
    public Size2 Pad { get; init; }

    /// <summary>Padding removed from the bottom and right of the output where it differs from <see cref="Pad"/>; null: the same (an end equal to it is stored as null).</summary>
    public Size2? PadEnd { get; init; }

    /// <summary>Extra rows and columns at the bottom and right, below the stride.</summary>
    public Size2 OutputPad { get; init; }

    /// <summary>Whether the layer adds a bias per filter.</summary>
    public bool UseBias { get; init; }

    /// <summary>Spacing of kernel taps per axis.</summary>
    public Size2 Dilation { get; init; }

    /// <summary>Channel groups.</summary>
    public int Groups { get; init; }

    /// <inheritdoc />
    public override ConvSpec Spec() =>
        ConvSpec.Of(Filters, Kernel.ToArray(), Stride.ToArray(), Pad.ToArray(), Dilation.ToArray(), Groups, UseBias, OutputPad.ToArray(), PadEnd?.ToArray());
}

/// <summary>
/// Transposed 3-d convolution over NCDHW input, as PyTorch's <c>nn.ConvTranspose3d</c>, with kernel, stride, padding, output
/// padding and dilation per axis (an integer means the same on every axis). Output size
/// <c>(in-1)*stride - 2*pad + dilation*(kernel-1) + 1 + outputPad</c> per axis. Weight <c>[C, Filters/Groups, KD, KH, KW]</c>
/// (PyTorch's layout), bias <c>[Filters]</c>.
/// </summary>
public sealed record ConvTranspose3d : ConvolutionLayer
{
    /// <summary>A transposed 3-d convolution.</summary>
    /// <param name="Filters">Output channels.</param>
    /// <param name="Kernel">Kernel depth, height and width.</param>
    /// <param name="Stride">Upsampling stride per axis (default 1).</param>
    /// <param name="Pad">Padding removed from each side of the output per axis (default 0).</param>
    /// <param name="OutputPad">Extra elements added at the end of each axis, below the stride (default 0).</param>
    /// <param name="UseBias">Whether to add a bias (default true).</param>
    /// <param name="Dilation">Spacing of kernel taps per axis (default 1).</param>
    /// <param name="Groups">Channel groups (default 1).</param>
    /// <param name="PadEnd">Padding removed from the end of each axis of the output where it differs from <paramref name="Pad"/>
    /// (default null: the same), as ONNX's SAME_UPPER crops only the end.</param>
    public ConvTranspose3d(int Filters, Size3 Kernel, Size3? Stride = null, Size3? Pad = null, Size3? OutputPad = null, bool UseBias = true,
        Size3? Dilation = null, int Groups = 1, Size3? PadEnd = null)
    {
        this.PadEnd = PadEnd == (Pad ?? 0) ? null : PadEnd;
        this.Filters = Filters;
        this.Kernel = Kernel;
        this.Stride = Stride ?? 1;
        this.Pad = Pad ?? 0;
        this.OutputPad = OutputPad ?? 0;
        this.UseBias = UseBias;
        this.Dilation = Dilation ?? 1;
        this.Groups = Groups;
    }

    /// <summary>Output channels.</summary>
    public int Filters { get; init; }

    /// <summary>Kernel depth, height and width.</summary>
    public Size3 Kernel { get; init; }

    /// <summary>Upsampling stride per axis.</summary>
    public Size3 Stride { get; init; }

    /// <summary>Padding removed from each side of the output per axis (from the start only, where <see cref="PadEnd"/> is set).</summary>
    public Size3 Pad { get; init; }

    /// <summary>Padding removed from the end of each axis of the output where it differs from <see cref="Pad"/>; null: the same (an end equal to it is stored as null).</summary>
    public Size3? PadEnd { get; init; }

    /// <summary>Extra elements at the end of each axis, below the stride.</summary>
    public Size3 OutputPad { get; init; }

    /// <summary>Whether the layer adds a bias per filter.</summary>
    public bool UseBias { get; init; }

    /// <summary>Spacing of kernel taps per axis.</summary>
    public Size3 Dilation { get; init; }

    /// <summary>Channel groups.</summary>
    public int Groups { get; init; }

    /// <inheritdoc />
    public override ConvSpec Spec() =>
        ConvSpec.Of(Filters, Kernel.ToArray(), Stride.ToArray(), Pad.ToArray(), Dilation.ToArray(), Groups, UseBias, OutputPad.ToArray(), PadEnd?.ToArray());
}
