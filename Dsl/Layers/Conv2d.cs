using Cnn.Core;

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
    bool UseBias = true, int DilationH = 1, int DilationW = 1, int Groups = 1) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "conv";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Filters < 1 || KernelH < 1 || KernelW < 1 || StrideH < 1 || StrideW < 1 || PadH < 0 || PadW < 0 || DilationH < 1 || DilationW < 1 || Groups < 1)
            throw new ShapeException($"Layer '{path}': Conv2d needs filters, kernel, stride, dilation and groups >= 1 and padding >= 0; found {this}.");
        if (input.Rank != 3)
            throw new ShapeException($"Layer '{path}': Conv2d expects input [C, H, W] per sample; found {input}.");
        ConvLayers.CheckGroups(path, input[0], Filters, Groups);
        int oh = OutputSize.Compute(input[1], KernelH, StrideH, PadH, DilationH, path, "height", input, strict);
        int ow = OutputSize.Compute(input[2], KernelW, StrideW, PadW, DilationW, path, "width", input, strict);
        return new Shape(Filters, oh, ow);
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input) =>
        ConvLayers.Specs(Filters, input[0] / Groups, new[] { KernelH, KernelW }, UseBias);
}

/// <summary>Facts shared by the convolution layers.</summary>
internal static class ConvLayers
{
    public static void CheckGroups(string path, int channels, int filters, int groups)
    {
        if (channels % groups != 0 || filters % groups != 0)
            throw new ShapeException($"Layer '{path}': groups ({groups}) must divide both the input channels ({channels}) and the filters ({filters}).");
    }

    /// <summary>Weight <c>[filters, inPerGroup, k...]</c> and bias <c>[filters]</c>, with PyTorch's fans.</summary>
    public static IReadOnlyList<ParameterSpec> Specs(int filters, int inPerGroup, int[] kernel, bool useBias)
    {
        int k = kernel.Aggregate(1, (a, b) => a * b);
        var w = new ParameterSpec("weight", new Shape(new[] { filters, inPerGroup }.Concat(kernel).ToArray()), inPerGroup * k, filters * k, false);
        return useBias ? new[] { w, new ParameterSpec("bias", new Shape(filters), inPerGroup * k, filters * k, true) } : new[] { w };
    }
}
