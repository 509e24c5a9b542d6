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
}
