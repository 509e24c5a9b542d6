namespace Cnn.Dsl;

/// <summary>
/// 1-d convolution over NCL input (sequences, signals), as PyTorch's <c>nn.Conv1d</c>.
/// Weight <c>[Filters, C/Groups, Kernel]</c>, bias <c>[Filters]</c>.
/// </summary>
/// <param name="Filters">Output channels.</param>
/// <param name="Kernel">Kernel length.</param>
/// <param name="Stride">Stride (default 1).</param>
/// <param name="Pad">Zero padding at both ends (default 0).</param>
/// <param name="UseBias">Whether to add a bias (default true).</param>
/// <param name="Dilation">Spacing of kernel taps (default 1).</param>
/// <param name="Groups">Channel groups (default 1).</param>
public sealed record Conv1d(int Filters, int Kernel, int Stride = 1, int Pad = 0, bool UseBias = true, int Dilation = 1, int Groups = 1) : ConvolutionLayer
{
    /// <inheritdoc />
    public override ConvSpec Spec() => ConvSpec.Of(Filters, new[] { Kernel }, new[] { Stride }, new[] { Pad }, new[] { Dilation }, Groups, UseBias);
}

/// <summary>
/// 3-d convolution over NCDHW input (volumes, video), as PyTorch's <c>nn.Conv3d</c>, with kernel, stride, padding and
/// dilation per axis (an integer means the same on every axis): <c>new Conv3d(16, Kernel: (1, 3, 3), Stride: (1, 2, 2))</c>.
/// Weight <c>[Filters, C/Groups, KD, KH, KW]</c>, bias <c>[Filters]</c>.
/// </summary>
public sealed record Conv3d : ConvolutionLayer
{
    /// <summary>A 3-d convolution.</summary>
    /// <param name="Filters">Output channels.</param>
    /// <param name="Kernel">Kernel size along depth, height and width.</param>
    /// <param name="Stride">Stride per axis (default 1).</param>
    /// <param name="Pad">Zero padding on both sides of each axis (default 0).</param>
    /// <param name="UseBias">Whether to add a bias (default true).</param>
    /// <param name="Dilation">Spacing of kernel taps per axis (default 1).</param>
    /// <param name="Groups">Channel groups (default 1).</param>
    public Conv3d(int Filters, Size3 Kernel, Size3? Stride = null, Size3? Pad = null, bool UseBias = true, Size3? Dilation = null, int Groups = 1)
    {
        this.Filters = Filters;
        this.Kernel = Kernel;
        this.Stride = Stride ?? 1;
        this.Pad = Pad ?? 0;
        this.UseBias = UseBias;
        this.Dilation = Dilation ?? 1;
        this.Groups = Groups;
    }

    /// <summary>Output channels.</summary>
    public int Filters { get; init; }

    /// <summary>Kernel size along depth, height and width.</summary>
    public Size3 Kernel { get; init; }

    /// <summary>Stride per axis.</summary>
    public Size3 Stride { get; init; }

    /// <summary>Zero padding on both sides of each axis.</summary>
    public Size3 Pad { get; init; }

    /// <summary>Whether the layer adds a bias per filter.</summary>
    public bool UseBias { get; init; }

    /// <summary>Spacing of kernel taps per axis.</summary>
    public Size3 Dilation { get; init; }

    /// <summary>Channel groups.</summary>
    public int Groups { get; init; }

    /// <inheritdoc />
    public override ConvSpec Spec() => ConvSpec.Of(Filters, Kernel.ToArray(), Stride.ToArray(), Pad.ToArray(), Dilation.ToArray(), Groups, UseBias);
}
