using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// 2-d max pooling over NCHW input. Padding is implicit negative infinity, as in PyTorch.
/// </summary>
/// <param name="KernelH">Window height.</param>
/// <param name="KernelW">Window width.</param>
/// <param name="StrideH">Vertical stride.</param>
/// <param name="StrideW">Horizontal stride.</param>
/// <param name="PadH">Padding on top and bottom (at most half the window).</param>
/// <param name="PadW">Padding on left and right (at most half the window).</param>
public sealed record MaxPool2d(int KernelH, int KernelW, int StrideH, int StrideW, int PadH = 0, int PadW = 0) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "pool";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (KernelH < 1 || KernelW < 1 || StrideH < 1 || StrideW < 1 || PadH < 0 || PadW < 0 || 2 * PadH > KernelH || 2 * PadW > KernelW)
            throw new ShapeException($"Layer '{path}': MaxPool2d needs kernel and stride >= 1 and 0 <= padding <= kernel/2; found {this}.");
        if (input.Rank != 3)
            throw new ShapeException($"Layer '{path}': MaxPool2d expects input [C, H, W] per sample; found {input}.");
        int oh = OutputSize.Compute(input[1], KernelH, StrideH, PadH, 1, path, "height", input, strict);
        int ow = OutputSize.Compute(input[2], KernelW, StrideW, PadW, 1, path, "width", input, strict);
        return new Shape(input[0], oh, ow);
    }
}
