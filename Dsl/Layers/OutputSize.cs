using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>The output-size formula shared by convolution and pooling, with errors that show its numbers.</summary>
public static class OutputSize
{
    /// <summary>
    /// <c>(size + padBegin + padEnd - dilation*(kernel-1) - 1) / stride + 1</c>, floored as PyTorch and ONNX do,
    /// or rounded up with <paramref name="ceilMode"/> (PyTorch's rule: the last window must start inside the
    /// input or its leading padding).
    /// </summary>
    /// <exception cref="ShapeException">The size is below 1, or (with <paramref name="strict"/>) the window does not tile the input.</exception>
    public static int Compute(int size, int kernel, int stride, int pad, int dilation, string path, string axis, Shape input, bool strict, bool ceilMode = false) =>
        Compute(size, kernel, stride, pad, pad, dilation, path, axis, input, strict, ceilMode);

    /// <summary>The output size with different padding before and after the axis.</summary>
    /// <exception cref="ShapeException">The size is below 1, or (with <paramref name="strict"/>) the window does not tile the input.</exception>
    public static int Compute(int size, int kernel, int stride, int padBegin, int padEnd, int dilation, string path, string axis, Shape input, bool strict, bool ceilMode)
    {
        // In long arithmetic: dilation * (kernel - 1) reaches 2^61 for int arguments, and a wrapped int would give a
        // plausible but wrong size.
        long span = (long)size + padBegin + padEnd - (long)dilation * (kernel - 1) - 1;
        string pads = padBegin == padEnd ? $"2*{padBegin}" : $"{padBegin} + {padEnd}";
        string formula = $"({size} + {pads} - {dilation}*({kernel}-1) - 1) / {stride} + 1";
        if (span < 0)
            throw new ShapeException(
                $"Layer '{path}': input {input} is too small along {axis}: output size {formula} is below 1 (kernel {kernel}, padding {padBegin}+{padEnd}).");
        if (strict && span % stride != 0)
            throw new ShapeException(
                $"Layer '{path}': window does not tile input {input} along {axis}: {formula} leaves remainder {span % stride} (strict mode).");
        long output = span / stride + 1;
        if (ceilMode && span % stride != 0)
        {
            output++;
            if ((output - 1) * stride >= (long)size + padBegin) output--;
        }
        if (output > int.MaxValue)
            throw new ShapeException($"Layer '{path}': output size {formula} = {output} along {axis} of input {input} exceeds {int.MaxValue}.");
        return (int)output;
    }
}
