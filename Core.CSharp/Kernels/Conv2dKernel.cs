using System.Buffers;
using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>The gradients of a convolution with respect to its input, weight and bias.</summary>
/// <param name="Input">dL/dx, the input's shape.</param>
/// <param name="Weight">dL/dW, the weight's shape.</param>
/// <param name="Bias">dL/db, or null when the convolution has no bias.</param>
public sealed record ConvGradients(Tensor Input, Tensor Weight, Tensor? Bias);

/// <summary>
/// 2-d convolution (cross-correlation) over NCHW batches through im2col and GEMM, forward and backward.
/// Weight <c>[F, C, KH, KW]</c>, bias <c>[F]</c>. A 1x1, stride-1, unpadded convolution uses the image as its own column matrix.
/// </summary>
public static class Conv2dKernel
{
    /// <summary>y = conv(x, w) + b.</summary>
    public static Tensor Forward(Tensor x, Tensor w, Tensor? bias, Window2d g)
    {
        var (n, c, h, wd, f) = Check(x, w, bias, g);
        int oh = g.OutH(h), ow = g.OutW(wd), ohw = oh * ow, ck = c * g.KernelH * g.KernelW;
        var y = new float[n * f * ohw];
        bool direct = IsPointwise(g);
        BatchParallel.For(n, (_, start, end) =>
        {
            float[]? cols = direct ? null : ArrayPool<float>.Shared.Rent(ck * ohw);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var xi = x.Span.Slice(i * c * h * wd, c * h * wd);
                    ReadOnlySpan<float> colSpan = xi;
                    if (cols is not null)
                    {
                        Im2Col.Unfold(xi, c, h, wd, g, cols);
                        colSpan = cols.AsSpan(0, ck * ohw);
                    }
                    var yi = y.AsSpan(i * f * ohw, f * ohw);
                    Gemm.Multiply(false, false, f, ohw, ck, w.Span, colSpan, yi);
                    if (bias is not null)
                        for (int o = 0; o < f; o++)
                            TensorPrimitives.Add(yi.Slice(o * ohw, ohw), bias[o], yi.Slice(o * ohw, ohw));
                }
            }
            finally { if (cols is not null) ArrayPool<float>.Shared.Return(cols); }
        });
        return Tensor.Own(y, new Shape(n, f, oh, ow));
    }

    /// <summary>The gradients of a convolution given the upstream gradient <paramref name="dy"/>.</summary>
    public static ConvGradients Backward(Tensor x, Tensor w, bool hasBias, Tensor dy, Window2d g)
    {
        var (n, c, h, wd, f) = Check(x, w, null, g);
        int oh = g.OutH(h), ow = g.OutW(wd), ohw = oh * ow, ck = c * g.KernelH * g.KernelW;
        var expected = new Shape(n, f, oh, ow);
        if (dy.Shape != expected) throw new ShapeException($"Conv2d backward: expected an upstream gradient of shape {expected}; found {dy.Shape}.");
        bool direct = IsPointwise(g);
        int chunks = BatchParallel.Chunks(n);
        var dwParts = new float[chunks][];
        var dbParts = new float[chunks][];
        var dx = new float[x.Size];
        BatchParallel.For(n, (chunk, start, end) =>
        {
            var dwp = dwParts[chunk] = new float[f * ck];
            var dbp = dbParts[chunk] = new float[f];
            float[]? cols = direct ? null : ArrayPool<float>.Shared.Rent(ck * ohw);
            float[] dcols = ArrayPool<float>.Shared.Rent(ck * ohw);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var xi = x.Span.Slice(i * c * h * wd, c * h * wd);
                    ReadOnlySpan<float> colSpan = xi;
                    if (cols is not null)
                    {
                        Im2Col.Unfold(xi, c, h, wd, g, cols);
                        colSpan = cols.AsSpan(0, ck * ohw);
                    }
                    var dyi = dy.Span.Slice(i * f * ohw, f * ohw);
                    Gemm.Multiply(false, true, f, ck, ohw, dyi, colSpan, dwp, accumulate: true);
                    for (int o = 0; o < f; o++) dbp[o] += TensorPrimitives.Sum(dyi.Slice(o * ohw, ohw));
                    var dxi = dx.AsSpan(i * c * h * wd, c * h * wd);
                    if (direct) Gemm.Multiply(true, false, ck, ohw, f, w.Span, dyi, dxi);
                    else
                    {
                        Gemm.Multiply(true, false, ck, ohw, f, w.Span, dyi, dcols);
                        Im2Col.FoldAdd(dcols.AsSpan(0, ck * ohw), c, h, wd, g, dxi);
                    }
                }
            }
            finally
            {
                if (cols is not null) ArrayPool<float>.Shared.Return(cols);
                ArrayPool<float>.Shared.Return(dcols);
            }
        });
        var dw = new float[f * ck];
        var db = new float[f];
        for (int p = 0; p < chunks; p++)
        {
            TensorPrimitives.Add(dw, dwParts[p], dw);
            TensorPrimitives.Add(db, dbParts[p], db);
        }
        return new ConvGradients(Tensor.Own(dx, x.Shape), Tensor.Own(dw, w.Shape), hasBias ? Tensor.Own(db, new Shape(f)) : null);
    }

    private static bool IsPointwise(Window2d g) =>
        g is { KernelH: 1, KernelW: 1, StrideH: 1, StrideW: 1, PadH: 0, PadW: 0 };

    private static (int n, int c, int h, int w, int f) Check(Tensor x, Tensor w, Tensor? bias, Window2d g)
    {
        g.Validate("Conv2d", x.Shape);
        if (w.Shape.Rank != 4 || w.Shape[1] != x.Shape[1] || w.Shape[2] != g.KernelH || w.Shape[3] != g.KernelW)
            throw new ShapeException($"Conv2d: expected a weight [F, {x.Shape[1]}, {g.KernelH}, {g.KernelW}] for input {x.Shape}; found {w.Shape}.");
        if (bias is not null && (bias.Shape.Rank != 1 || bias.Shape[0] != w.Shape[0]))
            throw new ShapeException($"Conv2d: expected a bias [{w.Shape[0]}]; found {bias.Shape}.");
        return (x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], w.Shape[0]);
    }
}
