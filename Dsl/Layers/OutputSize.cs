using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>The output-size formula shared by convolution and pooling, with errors that show its numbers.</summary>
public static class OutputSize
{
    /// <summary>
    /// <c>(size + 2*pad - dilation*(kernel-1) - 1) / stride + 1</c>, floored as PyTorch and ONNX do.
    /// </summary>
    /// <exception cref="ShapeException">The size is below 1, or (with <paramref name="strict"/>) the window does not tile the input.</exception>
    public static int Compute(int size, int kernel, int stride, int pad, int dilation, string path, string axis, Shape input, bool strict)
    {
        int span = size + 2 * pad - dilation * (kernel - 1) - 1;
        string formula = $"({size} + 2*{pad} - {dilation}*({kernel}-1) - 1) / {stride} + 1";
        if (span < 0)
            throw new ShapeException(
                $"Layer '{path}': input {input} is too small along {axis}: output size {formula} is below 1 (kernel {kernel}, padding {pad}).");
        if (strict && span % stride != 0)
            throw new ShapeException(
                $"Layer '{path}': window does not tile input {input} along {axis}: {formula} leaves remainder {span % stride} (strict mode).");
        return span / stride + 1;
    }
}
