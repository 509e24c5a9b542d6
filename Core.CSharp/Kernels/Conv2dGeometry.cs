namespace Cnn.Core.Kernels;

/// <summary>The window of a 2-d convolution or pooling: kernel, stride and symmetric zero padding.</summary>
/// <param name="KernelH">Kernel height.</param>
/// <param name="KernelW">Kernel width.</param>
/// <param name="StrideH">Vertical stride.</param>
/// <param name="StrideW">Horizontal stride.</param>
/// <param name="PadH">Rows of padding on top and on bottom.</param>
/// <param name="PadW">Columns of padding on left and on right.</param>
public readonly record struct Window2d(int KernelH, int KernelW, int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0)
{
    /// <summary>Output height for an input height (floored).</summary>
    public int OutH(int h) => (h + 2 * PadH - KernelH) / StrideH + 1;

    /// <summary>Output width for an input width (floored).</summary>
    public int OutW(int w) => (w + 2 * PadW - KernelW) / StrideW + 1;

    internal void Validate(string op, Shape x)
    {
        if (KernelH < 1 || KernelW < 1 || StrideH < 1 || StrideW < 1 || PadH < 0 || PadW < 0)
            throw new ShapeException($"{op}: kernel and stride must be >= 1 and padding >= 0; found {this}.");
        if (x.Rank != 4) throw new ShapeException($"{op}: expected an NCHW input of rank 4; found {x}.");
        if (x[2] + 2 * PadH < KernelH || x[3] + 2 * PadW < KernelW)
            throw new ShapeException($"{op}: input {x} with padding ({PadH}, {PadW}) is smaller than the kernel ({KernelH}, {KernelW}).");
    }
}
