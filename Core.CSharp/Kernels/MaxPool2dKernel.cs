namespace Cnn.Core.Kernels;

/// <summary>The output of max pooling and, for the backward pass, the flat input index of each maximum.</summary>
/// <param name="Output">The pooled tensor.</param>
/// <param name="ArgMax">For each output element, the flat index into the input of the element that won.</param>
public sealed record PoolResult(Tensor Output, ReadOnlyMemory<int> ArgMax);

/// <summary>
/// 2-d max pooling over NCHW batches. Padded positions never win (implicit negative infinity, as in PyTorch);
/// ties go to the first maximum in row-major window order, and NaN wins, as in PyTorch.
/// </summary>
public static class MaxPool2dKernel
{
    /// <summary>Pools <paramref name="x"/> and records the winners (output size floored).</summary>
    /// <exception cref="ShapeException">The input is not NCHW, the window does not fit, or padding exceeds half the kernel.</exception>
    public static PoolResult Forward(Tensor x, Window2d g) => Forward(x, g, ceilMode: false);

    /// <summary>
    /// Pools <paramref name="x"/> and records the winners; with <paramref name="ceilMode"/> the output size is rounded
    /// up (<see cref="PoolingSize.Output(int, int, int, int, bool)"/>) and the last window, which may overhang the padded
    /// input, takes the maximum of the elements it covers.
    /// </summary>
    /// <exception cref="ShapeException">The input is not NCHW, the window does not fit, or padding exceeds half the kernel.</exception>
    public static PoolResult Forward(Tensor x, Window2d g, bool ceilMode)
    {
        var (oh, ow) = PoolingSize.Output2d(g, x.Shape, ceilMode, "MaxPool2d");
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        var y = new float[n * c * oh * ow];
        var arg = new int[y.Length];
        BatchParallel.For(n * c, (_, start, end) =>
        {
            var xs = x.Span;
            for (int p = start; p < end; p++)
            {
                int inBase = p * h * w, outBase = p * oh * ow;
                for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    float best = float.NegativeInfinity;
                    int bestIdx = -1;
                    int y0 = oy * g.StrideH - g.PadH, x0 = ox * g.StrideW - g.PadW;
                    for (int ki = 0; ki < g.KernelH; ki++)
                    {
                        int iy = y0 + ki;
                        if ((uint)iy >= (uint)h) continue;
                        for (int kj = 0; kj < g.KernelW; kj++)
                        {
                            int ix = x0 + kj;
                            if ((uint)ix >= (uint)w) continue;
                            int idx = inBase + iy * w + ix;
                            float v = xs[idx];
                            if (bestIdx < 0 || v > best || (float.IsNaN(v) && !float.IsNaN(best))) { best = v; bestIdx = idx; }
                        }
                    }
                    y[outBase + oy * ow + ox] = best;
                    arg[outBase + oy * ow + ox] = bestIdx;
                }
            }
        });
        return new PoolResult(Tensor.Own(y, new Shape(n, c, oh, ow)), arg);
    }

    /// <summary>Routes each upstream gradient to the input element that won its window.</summary>
    public static Tensor Backward(Tensor dy, ReadOnlyMemory<int> argMax, Shape inputShape)
    {
        if (dy.Size != argMax.Length)
            throw new ShapeException($"MaxPool2d backward: expected an upstream gradient of {argMax.Length} elements; found {dy.Shape}.");
        var dx = new float[inputShape.Size];
        var a = argMax.Span;
        var d = dy.Span;
        for (int i = 0; i < a.Length; i++) dx[a[i]] += d[i];
        return Tensor.Own(dx, inputShape);
    }
}
