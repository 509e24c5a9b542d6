namespace Cnn.Core.Kernels;

/// <summary>The output size of a pooling window along one axis, floored or, with ceil mode, rounded up as PyTorch does.</summary>
public static class PoolingSize
{
    /// <summary>
    /// <c>(size + 2*pad - kernel) / stride + 1</c>, floored; with <paramref name="ceilMode"/> rounded up instead, except
    /// that the last window must start inside the input or its left padding (PyTorch's rule, so no window lies wholly in
    /// the right padding). A window may then overhang the padded input; pooling kernels clip it.
    /// </summary>
    /// <exception cref="ShapeException">Kernel or stride below 1, padding below 0 or above half the kernel, or a padded input smaller than the kernel.</exception>
    public static int Output(int size, int kernel, int stride, int pad, bool ceilMode) =>
        Output(size, kernel, stride, pad, ceilMode, "Pooling", null);

    internal static int Output(int size, int kernel, int stride, int pad, bool ceilMode, string op, Shape? input)
    {
        string where = input is null ? "" : $" (input {input})";
        if (kernel < 1 || stride < 1 || pad < 0 || 2 * pad > kernel)
            throw new ShapeException($"{op}: expected kernel and stride >= 1 and 0 <= padding <= kernel/2 (PyTorch's limit){where}; found kernel {kernel}, stride {stride}, padding {pad}.");
        int span = size + 2 * pad - kernel;
        if (size < 1 || span < 0)
            throw new ShapeException($"{op}: input size {size}{where} with padding {pad} on both sides is smaller than the kernel {kernel}.");
        int o = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1;
        if (ceilMode && (o - 1) * stride >= size + pad) o--;
        return o;
    }

    /// <summary>The output height and width of a 2-d window over an NCHW input.</summary>
    internal static (int H, int W) Output2d(Window2d g, Shape x, bool ceilMode, string op)
    {
        g.Validate(op, x);
        return (Output(x[2], g.KernelH, g.StrideH, g.PadH, ceilMode, op, x), Output(x[3], g.KernelW, g.StrideW, g.PadW, ceilMode, op, x));
    }

    /// <summary>
    /// The output height and width with <paramref name="ends"/> rows below and columns right of the input: PyTorch's rule
    /// where they equal the window's padding, else ONNX's floor rule with each padding below the window (so that every
    /// window holds an input element and an average that leaves the padding out never divides by zero).
    /// </summary>
    internal static (int H, int W) Output2d(Window2d g, (int H, int W) ends, Shape x, bool ceilMode, string op)
    {
        if (ends == (g.PadH, g.PadW) && 2 * g.PadH <= g.KernelH && 2 * g.PadW <= g.KernelW) return Output2d(g, x, ceilMode, op);
        if (x.Rank != 4) throw new ShapeException($"{op}: expected an NCHW input of rank 4; found {x}.");
        if (g.KernelH < 1 || g.KernelW < 1 || g.StrideH < 1 || g.StrideW < 1 || g.PadH < 0 || g.PadW < 0)
            throw new ShapeException($"{op}: kernel and stride must be >= 1 and padding >= 0; found {g}.");
        if (ceilMode)
            throw new ShapeException($"{op}: ceil mode needs the same padding at both ends of an axis, at most half the kernel (PyTorch's rule); found {g} with {ends.H} rows below and {ends.W} columns right.");
        if (ends.H < 0 || ends.W < 0 || g.PadH >= g.KernelH || g.PadW >= g.KernelW || ends.H >= g.KernelH || ends.W >= g.KernelW)
            throw new ShapeException($"{op}: expected every padding >= 0 and below the kernel, so that each window holds an input element; found {g} with {ends.H} rows below and {ends.W} columns right.");
        int spanH = x[2] + g.PadH + ends.H - g.KernelH, spanW = x[3] + g.PadW + ends.W - g.KernelW;
        if (spanH < 0 || spanW < 0)
            throw new ShapeException($"{op}: input {x} with padding ({g.PadH}, {ends.H}) rows and ({g.PadW}, {ends.W}) columns is smaller than the kernel ({g.KernelH}, {g.KernelW}).");
        return (spanH / g.StrideH + 1, spanW / g.StrideW + 1);
    }
}
