using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// Direct 2-d depthwise convolution (one input channel per group, <c>F = m C</c> filters, filter <c>f</c> reading channel
/// <c>f / m</c>), forward and backward, without a column matrix or a GEMM: the im2col path ran one product of
/// <c>m x taps x positions</c> per channel, a product too thin for the micro-kernel (one row of A) that also paid for
/// unfolding the image. Here every output row is a sum of shifted input rows scaled by one weight each (stride 1: whole
/// vector spans through <see cref="TensorPrimitives"/>), so the work is memory-bound streaming over the image.
/// </summary>
/// <remarks>
/// Sums: each output element starts at zero and adds its taps in (kh, kw) order, one fused multiply-add each, then the bias,
/// as the GEMM sums a depth block of at most 256 taps; taps that fall in the padding are skipped (the GEMM adds <c>0 * w</c>,
/// which leaves the sum as it is). dW and db sum over the batch in image order and over positions row by row; dx sums the
/// filters of a channel in filter order. Work is split over planes (image, filter or channel) and over filters for dW, so no
/// sum depends on the thread count.
/// </remarks>
internal static class DepthwiseConv2d
{
    /// <summary>
    /// Whether this kernel takes the convolution: 2-d, one input channel per group, and at most
    /// <see cref="GemmParallel.SmallRows"/> filters per group (more fill the fused GEMM path's micro-tiles, which it keeps).
    /// </summary>
    public static bool Covers(ConvGeometry g, int channels, int filters) =>
        g.Rank == 2 && g.Groups == channels && g.Groups > 1 && filters / g.Groups <= GemmParallel.SmallRows;

    /// <summary>The window's numbers for one call.</summary>
    private readonly record struct Plan(int N, int C, int M, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW)
    {
        public int F => C * M;

        /// <summary>Output columns <c>[lo, hi)</c> whose input column <c>ow * SW + off</c> is inside the image.</summary>
        public (int Lo, int Hi) Columns(int off)
        {
            int lo = off >= 0 ? 0 : (-off + SW - 1) / SW;
            int hi = W - 1 - off < 0 ? 0 : Math.Min(OW, (W - 1 - off) / SW + 1);
            return (lo, Math.Max(lo, hi));
        }
    }

    private static Plan Make(Shape x, Shape w, ConvGeometry g, IReadOnlyList<int> output) =>
        new(x[0], x[1], w[0] / x[1], x[2], x[3], output[0], output[1], g.Kernel[0], g.Kernel[1], g.Stride[0], g.Stride[1], g.PadBegin[0], g.PadBegin[1],
            g.Dilation[0], g.Dilation[1]);

    /// <summary>y = depthwise conv(x, w) + b into <c>[N, F, OH, OW]</c> sized by <paramref name="output"/>.</summary>
    public static float[] Forward(Tensor x, Tensor w, Tensor? bias, ConvGeometry g, IReadOnlyList<int> output)
    {
        var p = Make(x.Shape, w.Shape, g, output);
        int outPlane = p.OH * p.OW;
        var y = TensorArena.Uninitialized<float>(p.N * p.F * outPlane);
        BatchParallel.For(p.N * p.F, (_, start, end) =>
        {
            for (int plane = start; plane < end; plane++)
            {
                int n = plane / p.F, f = plane % p.F, c = f / p.M;
                var xp = x.Span.Slice((n * p.C + c) * p.H * p.W, p.H * p.W);
                var wp = w.Span.Slice(f * p.KH * p.KW, p.KH * p.KW);
                var yp = y.AsSpan(plane * outPlane, outPlane);
                yp.Clear();
                for (int oh = 0; oh < p.OH; oh++)
                {
                    var yrow = yp.Slice(oh * p.OW, p.OW);
                    for (int kh = 0; kh < p.KH; kh++)
                    {
                        int ih = oh * p.SH - p.PH + kh * p.DH;
                        if ((uint)ih >= (uint)p.H) continue;
                        var xrow = xp.Slice(ih * p.W, p.W);
                        for (int kw = 0; kw < p.KW; kw++)
                            Accumulate(xrow, wp[kh * p.KW + kw], yrow, kw * p.DW - p.PW, p);
                    }
                }
                if (bias is not null) ConvKernel.AddBias(yp, bias[f], yp);
            }
        });
        return y;
    }

    /// <summary><c>yrow[ow] += v * xrow[ow * SW + off]</c> over the columns inside the image.</summary>
    private static void Accumulate(ReadOnlySpan<float> xrow, float v, Span<float> yrow, int off, in Plan p)
    {
        var (lo, hi) = p.Columns(off);
        if (hi <= lo) return;
        if (p.SW == 1)
        {
            var dst = yrow.Slice(lo, hi - lo);
            TensorPrimitives.FusedMultiplyAdd(xrow.Slice(lo + off, hi - lo), v, dst, dst);
            return;
        }
        for (int ow = lo; ow < hi; ow++) yrow[ow] = MathF.FusedMultiplyAdd(xrow[ow * p.SW + off], v, yrow[ow]);
    }

    /// <summary>dx (when asked), dW and db of a depthwise convolution.</summary>
    public static (float[]? Input, float[] Weight, float[]? Bias) Backward(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g, IReadOnlyList<int> output,
        bool inputGradient)
    {
        var p = Make(x.Shape, w.Shape, g, output);
        int outPlane = p.OH * p.OW, inPlane = p.H * p.W, taps = p.KH * p.KW;
        var dw = TensorArena.Uninitialized<float>(p.F * taps);
        var db = hasBias ? TensorArena.Uninitialized<float>(p.F) : null;
        BatchParallel.For(p.F, (_, start, end) =>
        {
            for (int f = start; f < end; f++)
            {
                int c = f / p.M;
                var dwf = dw.AsSpan(f * taps, taps);
                dwf.Clear();
                float bsum = 0;
                for (int n = 0; n < p.N; n++)
                {
                    var dyp = dy.Span.Slice((n * p.F + f) * outPlane, outPlane);
                    var xp = x.Span.Slice((n * p.C + c) * inPlane, inPlane);
                    if (db is not null) bsum += TensorPrimitives.Sum(dyp);
                    for (int kh = 0; kh < p.KH; kh++)
                        for (int kw = 0; kw < p.KW; kw++)
                        {
                            var (lo, hi) = p.Columns(kw * p.DW - p.PW);
                            if (hi <= lo) continue;
                            float s = 0;
                            for (int oh = 0; oh < p.OH; oh++)
                            {
                                int ih = oh * p.SH - p.PH + kh * p.DH;
                                if ((uint)ih >= (uint)p.H) continue;
                                var dyrow = dyp.Slice(oh * p.OW, p.OW);
                                var xrow = xp.Slice(ih * p.W, p.W);
                                int off = kw * p.DW - p.PW;
                                if (p.SW == 1) s += TensorPrimitives.Dot(dyrow.Slice(lo, hi - lo), xrow.Slice(lo + off, hi - lo));
                                else
                                    for (int ow = lo; ow < hi; ow++) s = MathF.FusedMultiplyAdd(dyrow[ow], xrow[ow * p.SW + off], s);
                            }
                            dwf[kh * p.KW + kw] += s;
                        }
                }
                if (db is not null) db[f] = bsum;
            }
        });
        float[]? dx = null;
        if (inputGradient)
        {
            dx = TensorArena.Uninitialized<float>(p.N * p.C * inPlane);
            BatchParallel.For(p.N * p.C, (_, start, end) =>
            {
                for (int plane = start; plane < end; plane++)
                {
                    int n = plane / p.C, c = plane % p.C;
                    var dxp = dx.AsSpan(plane * inPlane, inPlane);
                    dxp.Clear();
                    for (int f = c * p.M; f < (c + 1) * p.M; f++)
                    {
                        var dyp = dy.Span.Slice((n * p.F + f) * outPlane, outPlane);
                        var wp = w.Span.Slice(f * taps, taps);
                        for (int oh = 0; oh < p.OH; oh++)
                        {
                            var dyrow = dyp.Slice(oh * p.OW, p.OW);
                            for (int kh = 0; kh < p.KH; kh++)
                            {
                                int ih = oh * p.SH - p.PH + kh * p.DH;
                                if ((uint)ih >= (uint)p.H) continue;
                                var dxrow = dxp.Slice(ih * p.W, p.W);
                                for (int kw = 0; kw < p.KW; kw++)
                                    Scatter(dyrow, wp[kh * p.KW + kw], dxrow, kw * p.DW - p.PW, p);
                            }
                        }
                    }
                }
            });
        }
        return (dx, dw, db);
    }

    /// <summary><c>dxrow[ow * SW + off] += v * dyrow[ow]</c> over the columns inside the image.</summary>
    private static void Scatter(ReadOnlySpan<float> dyrow, float v, Span<float> dxrow, int off, in Plan p)
    {
        var (lo, hi) = p.Columns(off);
        if (hi <= lo) return;
        if (p.SW == 1)
        {
            var dst = dxrow.Slice(lo + off, hi - lo);
            TensorPrimitives.FusedMultiplyAdd(dyrow.Slice(lo, hi - lo), v, dst, dst);
            return;
        }
        for (int ow = lo; ow < hi; ow++) dxrow[ow * p.SW + off] = MathF.FusedMultiplyAdd(dyrow[ow], v, dxrow[ow * p.SW + off]);
    }
}
