namespace Cnn.Core.Kernels;

/// <summary>
/// Max pooling along the channel axis (axis 1 of <c>[N, C, ...]</c>): output channel <c>o</c> is the element-wise maximum
/// of input channels <c>o*stride .. o*stride + kernel - 1</c>, with <c>(C - kernel) / stride + 1</c> output channels
/// (floored, no padding). This is TensorFlow's <c>max_pool</c> with <c>ksize = (1, 1, 1, k)</c> on NHWC (VALID padding),
/// and Maxout when stride equals kernel. Ties go to the first channel; NaN wins.
/// </summary>
public static class ChannelMaxPoolKernel
{
    /// <summary>Pools across channels and records the flat input index of each maximum.</summary>
    /// <exception cref="ShapeException">The input's rank is below 2, or it has fewer channels than the kernel.</exception>
    /// <exception cref="CnnException">The kernel or stride is below 1.</exception>
    public static PoolResult Forward(Tensor x, int kernel, int stride)
    {
        var (n, c, s, oc) = Layout("Channel max pool", x.Shape, kernel, stride);
        var outDims = x.Shape.ToArray();
        outDims[1] = oc;
        var y = TensorArena.Zeroed<float>(n * oc * s);
        var arg = TensorArena.Zeroed<int>(y.Length);
        BatchParallel.For(n * oc, (_, start, end) =>
        {
            var xs = x.Span;
            for (int q = start; q < end; q++)
            {
                int i = q / oc, o = q % oc;
                var yq = y.AsSpan(q * s, s);
                var aq = arg.AsSpan(q * s, s);
                int first = (i * c + o * stride) * s;
                xs.Slice(first, s).CopyTo(yq);
                for (int e = 0; e < s; e++) aq[e] = first + e;
                for (int kc = 1; kc < kernel; kc++)
                {
                    int b = first + kc * s;
                    for (int e = 0; e < s; e++)
                    {
                        float v = xs[b + e];
                        if (v > yq[e] || (float.IsNaN(v) && !float.IsNaN(yq[e]))) { yq[e] = v; aq[e] = b + e; }
                    }
                }
            }
        });
        return new PoolResult(Tensor.Own(y, new Shape(outDims)), arg);
    }

    /// <summary>Routes each upstream gradient to the input element that won it.</summary>
    /// <exception cref="ShapeException"><paramref name="dy"/> and <paramref name="argMax"/> differ in size, or an index is outside the input.</exception>
    public static Tensor Backward(Tensor dy, ReadOnlyMemory<int> argMax, Shape inputShape)
    {
        if (dy.Size != argMax.Length)
            throw new ShapeException($"Channel max pool backward: expected an upstream gradient of {argMax.Length} elements (one per winner); found {dy.Shape}.");
        var dx = TensorArena.Zeroed<float>(inputShape.Size);
        var a = argMax.Span;
        var d = dy.Span;
        for (int i = 0; i < a.Length; i++)
        {
            if ((uint)a[i] >= (uint)dx.Length)
                throw new ShapeException($"Channel max pool backward: winner index {a[i]} is outside the input {inputShape}.");
            dx[a[i]] += d[i];
        }
        return Tensor.Own(dx, inputShape);
    }

    internal static (int n, int c, int s, int oc) Layout(string op, Shape x, int kernel, int stride)
    {
        if (kernel < 1 || stride < 1) throw new CnnException($"{op}: expected kernel and stride >= 1; found kernel {kernel}, stride {stride}.");
        if (x.Rank < 2) throw new ShapeException($"{op}: expected an input [N, C, ...] of rank >= 2; found {x}.");
        int n = x[0], c = x[1];
        if (c < kernel) throw new ShapeException($"{op}: input {x} has {c} channels, fewer than the kernel of {kernel}.");
        int s = n == 0 ? 0 : x.Size / (n * c);
        return (n, c, s, (c - kernel) / stride + 1);
    }
}
