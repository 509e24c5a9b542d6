namespace Cnn.Dsl;

/// <summary>
/// 2-d convolution (cross-correlation, no kernel flip, as in every framework) over NCHW input, as PyTorch's
/// <c>nn.Conv2d</c>. Weight shape <c>[Filters, C/Groups, KernelH, KernelW]</c>, bias <c>[Filters]</c>.
/// Keras's <c>padding='same'</c> for an odd kernel at stride 1 is <c>PadH = KernelH/2, PadW = KernelW/2</c>.
/// </summary>
/// <param name="Filters">Output channels.</param>
/// <param name="KernelH">Kernel height.</param>
/// <param name="KernelW">Kernel width.</param>
/// <param name="StrideH">Vertical stride (default 1).</param>
/// <param name="StrideW">Horizontal stride (default 1).</param>
/// <param name="PadH">Zero padding on top and bottom (default 0).</param>
/// <param name="PadW">Zero padding on left and right (default 0).</param>
/// <param name="UseBias">Whether the layer adds a bias per filter (default true).</param>
/// <param name="DilationH">Vertical spacing of kernel taps (default 1).</param>
/// <param name="DilationW">Horizontal spacing of kernel taps (default 1).</param>
/// <param name="Groups">Channel groups (default 1; equal to the input channels for a depthwise convolution).</param>
public sealed partial record Conv2d(int Filters, int KernelH, int KernelW, int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0,
    bool UseBias = true, int DilationH = 1, int DilationW = 1, int Groups = 1) : ConvolutionLayer
{
    /// <inheritdoc />
    public override ConvSpec Spec() =>
        ConvSpec.Of(Filters, new[] { KernelH, KernelW }, new[] { StrideH, StrideW }, new[] { PadH, PadW }, new[] { DilationH, DilationW }, Groups, UseBias);
}
