using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// Average pooling along the channel axis (axis 1 of <c>[N, C, ...]</c>): output channel <c>o</c> is the element-wise mean
/// of input channels <c>o*stride .. o*stride + kernel - 1</c>, with <c>(C - kernel) / stride + 1</c> output channels
/// (floored, no padding), the windows of <see cref="ChannelMaxPoolKernel"/>. This is TensorFlow's <c>avg_pool</c> with
/// <c>ksize = (1, 1, 1, k)</c> on NHWC (VALID padding), and PyTorch's <c>avg_pool1d</c> over the channels of each position.
/// </summary>
public static class ChannelAvgPoolKernel
{
    /// <summary>The mean of each window of channels at each position.</summary>
    /// <exception cref="ShapeException">The input's rank is below 2, or it has fewer channels than the kernel.</exception>
    /// <exception cref="CnnException">The kernel or stride is below 1.</exception>
    public static Tensor Forward(Tensor x, int kernel, int stride)
    {
        var (n, c, s, oc) = ChannelMaxPoolKernel.Layout("Channel average pool", x.Shape, kernel, stride);
        var outDims = x.Shape.ToArray();
        outDims[1] = oc;
        var y = TensorArena.Zeroed<float>(n * oc * s);
        BatchParallel.For(n * oc, (_, start, end) =>
        {
            var xs = x.Span;
            for (int q = start; q < end; q++)
            {
                int i = q / oc, o = q % oc;
                var yq = y.AsSpan(q * s, s);
                int first = (i * c + o * stride) * s;
                // Summed in channel order and divided once, as avg_pool1d does.
                xs.Slice(first, s).CopyTo(yq);
                for (int kc = 1; kc < kernel; kc++) TensorPrimitives.Add(yq, xs.Slice(first + kc * s, s), yq);
                TensorPrimitives.Divide(yq, (float)kernel, yq);
            }
        });
        return Tensor.Own(y, new Shape(outDims));
    }

    /// <summary>
    /// Spreads each upstream gradient evenly over its window: every input channel gets <c>dy / kernel</c> from each
    /// window that holds it (several when the stride is below the kernel, none for channels past the last window).
    /// </summary>
    /// <exception cref="ShapeException"><paramref name="dy"/> is not the forward output's shape for <paramref name="inputShape"/>.</exception>
    /// <exception cref="CnnException">The kernel or stride is below 1.</exception>
    public static Tensor Backward(Tensor dy, Shape inputShape, int kernel, int stride)
    {
        var (n, c, s, oc) = ChannelMaxPoolKernel.Layout("Channel average pool backward", inputShape, kernel, stride);
        var expected = inputShape.ToArray();
        expected[1] = oc;
        if (dy.Shape != new Shape(expected))
            throw new ShapeException($"Channel average pool backward: expected an upstream gradient of shape {new Shape(expected)} for input {inputShape}; found {dy.Shape}.");
        var dx = TensorArena.Zeroed<float>(inputShape.Size);
        var share = TensorArena.Zeroed<float>(n * oc * s);
        TensorPrimitives.Divide(dy.Span, (float)kernel, share);
        // One sample per task: windows that overlap add into the same channels of that sample only.
        BatchParallel.For(n, (_, start, end) =>
        {
            for (int i = start; i < end; i++)
                for (int o = 0; o < oc; o++)
                {
                    var g = share.AsSpan((i * oc + o) * s, s);
                    int first = (i * c + o * stride) * s;
                    for (int kc = 0; kc < kernel; kc++)
                    {
                        var d = dx.AsSpan(first + kc * s, s);
                        TensorPrimitives.Add(d, g, d);
                    }
                }
        });
        return Tensor.Own(dx, inputShape);
    }
}
