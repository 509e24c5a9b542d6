using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// 2-d max pooling over NCHW input, as PyTorch's <c>nn.MaxPool2d</c>. Padding is implicit negative infinity.
/// </summary>
/// <param name="KernelH">Window height.</param>
/// <param name="KernelW">Window width.</param>
/// <param name="StrideH">Vertical stride.</param>
/// <param name="StrideW">Horizontal stride.</param>
/// <param name="PadH">Padding on top and bottom (at most half the window).</param>
/// <param name="PadW">Padding on left and right (at most half the window).</param>
/// <param name="CeilMode">Round the output size up, so a partial window at the end is kept (default false).</param>
/// <param name="DilationH">Spacing of the window's rows (default 1), as PyTorch's and ONNX's <c>dilation</c>; a dilated window
/// needs floor mode, and each window must cover an input element.</param>
/// <param name="DilationW">Spacing of the window's columns (default 1).</param>
public sealed partial record MaxPool2d(int KernelH, int KernelW, int StrideH, int StrideW, int PadH = 0, int PadW = 0, bool CeilMode = false,
    int DilationH = 1, int DilationW = 1) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "pool";

    /// <summary>Whether the window is dilated on either axis.</summary>
    public bool Dilated => DilationH != 1 || DilationW != 1;

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (!Dilated) return Pool2dShape.Output("MaxPool2d", input, path, strict, KernelH, KernelW, StrideH, StrideW, PadH, PadW, CeilMode);
        if (DilationH < 1 || DilationW < 1 || CeilMode)
            throw new ShapeException($"Layer '{path}': a dilated MaxPool2d needs dilation >= 1 and floor mode; found {this}.");
        var output = Pool2dShape.Output("MaxPool2d", input, path, strict, KernelH, KernelW, StrideH, StrideW, PadH, PadW, false, DilationH, DilationW);
        // Padding and dilation can leave a window only padding, whose maximum is no input element.
        for (int axis = 1; axis <= 2; axis++)
        {
            var (k, s, p, d) = axis == 1 ? (KernelH, StrideH, PadH, DilationH) : (KernelW, StrideW, PadW, DilationW);
            for (int o = 0; o < output[axis]; o++)
            {
                int start = o * s - p;
                if (!Enumerable.Range(0, k).Any(t => start + t * d >= 0 && start + t * d < input[axis]))
                    throw new ShapeException($"Layer '{path}': MaxPool2d's window {o} along {(axis == 1 ? "height" : "width")} covers only padding " +
                        $"(taps {start}, {start + d}, ... every {d} from input {input}); found {this}.");
            }
        }
        return output;
    }
}

/// <summary>
/// 2-d average pooling over NCHW input, as PyTorch's <c>nn.AvgPool2d</c>.
/// </summary>
/// <param name="KernelH">Window height.</param>
/// <param name="KernelW">Window width.</param>
/// <param name="StrideH">Vertical stride.</param>
/// <param name="StrideW">Horizontal stride.</param>
/// <param name="PadH">Zero padding on top, and on the bottom unless <paramref name="PadBottom"/> says otherwise (at most half the window).</param>
/// <param name="PadW">Zero padding on the left, and on the right unless <paramref name="PadRight"/> says otherwise (at most half the window).</param>
/// <param name="CeilMode">Round the output size up (default false).</param>
/// <param name="CountIncludePad">Divide by the whole window, padding included (PyTorch's default, true), or by the real elements only (Keras, ONNX's default).</param>
/// <param name="PadBottom">Rows of padding below, where they differ from <paramref name="PadH"/> (default null: the same). With padding
/// that differs between the ends of an axis or exceeds half the window (ONNX's SAME and explicit pads, which PyTorch's
/// <c>AvgPool2d</c> lacks), every padding must be below the window and the output size is floored.</param>
/// <param name="PadRight">Columns of padding on the right, where they differ from <paramref name="PadW"/> (default null: the same).</param>
public sealed partial record AvgPool2d(int KernelH, int KernelW, int StrideH, int StrideW, int PadH = 0, int PadW = 0, bool CeilMode = false, bool CountIncludePad = true,
    int? PadBottom = null, int? PadRight = null) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "pool";

    /// <summary>Rows of padding below: <see cref="PadBottom"/>, or <see cref="PadH"/> where that is null.</summary>
    public int PadEndH => PadBottom ?? PadH;

    /// <summary>Columns of padding on the right: <see cref="PadRight"/>, or <see cref="PadW"/> where that is null.</summary>
    public int PadEndW => PadRight ?? PadW;

    /// <summary>
    /// Whether the padding is PyTorch's: the same at both ends of each axis and at most half the window. Otherwise the
    /// padding is ONNX's wider form, which needs floor mode and every padding below the window.
    /// </summary>
    public bool SymmetricPadding => PadEndH == PadH && PadEndW == PadW && 2 * PadH <= KernelH && 2 * PadW <= KernelW;

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (SymmetricPadding) return Pool2dShape.Output("AvgPool2d", input, path, strict, KernelH, KernelW, StrideH, StrideW, PadH, PadW, CeilMode);
        if (KernelH < 1 || KernelW < 1 || StrideH < 1 || StrideW < 1 || CeilMode || Math.Min(Math.Min(PadH, PadEndH), Math.Min(PadW, PadEndW)) < 0
            || Math.Max(PadH, PadEndH) >= KernelH || Math.Max(PadW, PadEndW) >= KernelW)
            throw new ShapeException($"Layer '{path}': AvgPool2d with padding that differs between the ends of an axis or exceeds half the window needs kernel and stride >= 1, " +
                $"every padding >= 0 and below the window (so that each window holds an input element), and floor mode; found {this}.");
        if (input.Rank != 3) throw new ShapeException($"Layer '{path}': AvgPool2d expects input [C, H, W] per sample; found {input}.");
        return new Shape(input[0],
            OutputSize.Compute(input[1], KernelH, StrideH, PadH, PadEndH, 1, path, "height", input, strict, false),
            OutputSize.Compute(input[2], KernelW, StrideW, PadW, PadEndW, 1, path, "width", input, strict, false));
    }
}

internal static class Pool2dShape
{
    public static Shape Output(string type, Shape input, string path, bool strict, int kh, int kw, int sh, int sw, int ph, int pw, bool ceil, int dh = 1, int dw = 1)
    {
        if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0 || 2 * ph > kh || 2 * pw > kw)
            throw new ShapeException($"Layer '{path}': {type} needs kernel and stride >= 1 and 0 <= padding <= kernel/2; found kernel ({kh}, {kw}), stride ({sh}, {sw}), padding ({ph}, {pw}).");
        if (input.Rank != 3) throw new ShapeException($"Layer '{path}': {type} expects input [C, H, W] per sample; found {input}.");
        return new Shape(input[0],
            OutputSize.Compute(input[1], kh, sh, ph, dh, path, "height", input, strict, ceil),
            OutputSize.Compute(input[2], kw, sw, pw, dw, path, "width", input, strict, ceil));
    }
}

/// <summary>Whether a pooling layer takes the maximum or the average of its window.</summary>
public enum PoolOp
{
    /// <summary>The largest element of the window.</summary>
    Max,
    /// <summary>The mean of the window.</summary>
    Average,
}

/// <summary>
/// Max or average pooling over 1-d (NCL) or 3-d (NCDHW) input with a window of the same size on every axis,
/// as PyTorch's <c>MaxPool1d</c>, <c>AvgPool1d</c>, <c>MaxPool3d</c> and <c>AvgPool3d</c>. The rank comes from the input.
/// </summary>
/// <param name="Op">Max or average.</param>
/// <param name="Kernel">Window size along every spatial axis.</param>
/// <param name="Stride">Stride along every spatial axis.</param>
/// <param name="Pad">Padding on both sides (at most half the window).</param>
/// <param name="CountIncludePad">For averages: divide by the whole window, padding included (default true, as PyTorch).</param>
public sealed record PoolNd(PoolOp Op, int Kernel, int Stride, int Pad = 0, bool CountIncludePad = true) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "pool";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Kernel < 1 || Stride < 1 || Pad < 0 || 2 * Pad > Kernel)
            throw new ShapeException($"Layer '{path}': pooling needs kernel and stride >= 1 and 0 <= padding <= kernel/2; found {this}.");
        if (input.Rank is not (2 or 4))
            throw new ShapeException($"Layer '{path}': PoolNd expects input [C, L] or [C, D, H, W] per sample (use MaxPool2d/AvgPool2d for images); found {input}.");
        var dims = input.ToArray();
        string[] axes = input.Rank == 2 ? new[] { "length" } : new[] { "depth", "height", "width" };
        for (int i = 1; i < dims.Length; i++) dims[i] = OutputSize.Compute(input[i], Kernel, Stride, Pad, 1, path, axes[i - 1], input, strict);
        return new Shape(dims);
    }
}

/// <summary>
/// Global pooling: the maximum or mean of each channel over all spatial axes, as GoogLeNet's and ResNet's heads
/// use it. Output <c>[C, 1, ..., 1]</c> (the spatial axes are kept as ones, as PyTorch's adaptive pooling and
/// ONNX's GlobalAveragePool do; follow with <see cref="Flatten"/>).
/// </summary>
/// <param name="Op">Max or average.</param>
public sealed record GlobalPool(PoolOp Op = PoolOp.Average) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "gpool";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (input.Rank < 2) throw new ShapeException($"Layer '{path}': global pooling expects [C, spatial...] per sample; found {input}.");
        return new Shape(new[] { input[0] }.Concat(Enumerable.Repeat(1, input.Rank - 1)).ToArray());
    }
}

/// <summary>
/// Max pooling across channels: each output channel is the maximum of a window of <paramref name="Kernel"/>
/// consecutive input channels at the same position (TensorFlow's <c>max_pool</c> with ksize (1, 1, 1, k) on NHWC;
/// maxout units are the case Kernel = Stride).
/// </summary>
/// <param name="Kernel">Channels per window.</param>
/// <param name="Stride">Channel step between windows.</param>
public sealed record ChannelMaxPool(int Kernel, int Stride) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "cpool";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) => ChannelWindows(this, Kernel, Stride, input, path, strict);

    /// <summary>
    /// The shape rule of pooling across channels (max or average): windows of <paramref name="kernel"/> channels every
    /// <paramref name="stride"/>, no padding, the spatial axes kept.
    /// </summary>
    internal static Shape ChannelWindows(LeafLayer layer, int kernel, int stride, Shape input, string path, bool strict)
    {
        string name = layer.GetType().Name;
        if (kernel < 1 || stride < 1) throw new ShapeException($"Layer '{path}': {name} needs kernel and stride >= 1; found {layer}.");
        if (input.Rank < 2) throw new ShapeException($"Layer '{path}': {name} expects [C, spatial...] per sample; found {input}.");
        var dims = input.ToArray();
        dims[0] = OutputSize.Compute(input[0], kernel, stride, 0, 1, path, "channels", input, strict);
        return new Shape(dims);
    }
}

/// <summary>
/// Average pooling across channels: each output channel is the mean of a window of <paramref name="Kernel"/>
/// consecutive input channels at the same position (TensorFlow's <c>avg_pool</c> with ksize (1, 1, 1, k) on NHWC), the
/// windows and shape rule of <see cref="ChannelMaxPool"/>.
/// </summary>
/// <param name="Kernel">Channels per window.</param>
/// <param name="Stride">Channel step between windows.</param>
public sealed record ChannelAvgPool(int Kernel, int Stride) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "cavgpool";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict) => ChannelMaxPool.ChannelWindows(this, Kernel, Stride, input, path, strict);
}
