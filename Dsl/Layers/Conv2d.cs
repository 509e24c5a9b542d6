using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// 2-d convolution (cross-correlation, no kernel flip, as in every framework) over NCHW input.
/// Weight shape <c>[Filters, C, KernelH, KernelW]</c>, bias <c>[Filters]</c>.
/// </summary>
/// <param name="Filters">Output channels.</param>
/// <param name="KernelH">Kernel height.</param>
/// <param name="KernelW">Kernel width.</param>
/// <param name="StrideH">Vertical stride (default 1).</param>
/// <param name="StrideW">Horizontal stride (default 1).</param>
/// <param name="PadH">Zero padding on top and bottom (default 0).</param>
/// <param name="PadW">Zero padding on left and right (default 0).</param>
/// <param name="UseBias">Whether the layer adds a bias per filter (default true).</param>
public sealed record Conv2d(int Filters, int KernelH, int KernelW, int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0, bool UseBias = true) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "conv";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Filters < 1 || KernelH < 1 || KernelW < 1 || StrideH < 1 || StrideW < 1 || PadH < 0 || PadW < 0)
            throw new ShapeException($"Layer '{path}': Conv2d needs filters, kernel and stride >= 1 and padding >= 0; found {this}.");
        if (input.Rank != 3)
            throw new ShapeException($"Layer '{path}': Conv2d expects input [C, H, W] per sample; found {input}.");
        int oh = OutputSize.Compute(input[1], KernelH, StrideH, PadH, 1, path, "height", input, strict);
        int ow = OutputSize.Compute(input[2], KernelW, StrideW, PadW, 1, path, "width", input, strict);
        return new Shape(Filters, oh, ow);
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input)
    {
        int c = input[0], k = KernelH * KernelW;
        var w = new ParameterSpec("weight", new Shape(Filters, c, KernelH, KernelW), c * k, Filters * k, false);
        return UseBias ? new[] { w, new ParameterSpec("bias", new Shape(Filters), c * k, Filters * k, true) } : new[] { w };
    }
}
