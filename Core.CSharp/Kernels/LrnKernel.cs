using System.Buffers;
using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// Local response normalisation across channels (axis 1 of <c>[N, C, ...]</c>), with PyTorch's convention:
/// <c>b_c = a_c / (k + alpha / size * sum_{c'} a_{c'}^2)^beta</c>, the sum over the window of <c>size</c>
/// channels <c>c - size/2 .. c + (size-1)/2</c> clipped to <c>[0, C)</c> (PyTorch pads <c>size/2</c> zero channels before and
/// <c>(size-1)/2</c> after, which matters for even sizes).
/// </summary>
/// <remarks>
/// The AlexNet paper (Krizhevsky et al. 2012) writes <c>(k + alpha * sum)^beta</c> without dividing by the size: its
/// alpha is PyTorch's alpha divided by size (paper <c>alpha = 1e-4</c>, <c>size = 5</c> is PyTorch <c>alpha = 5e-4</c>).
/// ONNX's <c>LRN</c> divides by size as PyTorch does, so alpha, beta and k carry over unchanged; but its window is
/// <c>floor((size-1)/2)</c> channels before and <c>ceil((size-1)/2)</c> after, the mirror of PyTorch's, so the two agree
/// only for odd sizes (the usual 3 or 5). An exporter must reject, or re-express, an even size.
/// </remarks>
public static class LrnKernel
{
    /// <summary>Normalises each element by the sum of squares of its neighbours across channels.</summary>
    /// <param name="x">Input <c>[N, C, ...]</c> of rank >= 2.</param>
    /// <param name="size">Channels in the window (>= 1).</param>
    /// <param name="alpha">Scale of the mean square (PyTorch's alpha; divided by <paramref name="size"/>).</param>
    /// <param name="beta">Exponent.</param>
    /// <param name="k">Additive constant.</param>
    /// <exception cref="ShapeException">The input has rank below 2.</exception>
    /// <exception cref="CnnException">The size is below 1.</exception>
    public static Tensor Forward(Tensor x, int size, float alpha, float beta, float k)
    {
        var (n, c, s) = Layout("LRN", x.Shape, size);
        var y = TensorArena.Zeroed<float>(x.Size);
        int sample = c * s;
        BatchParallel.For(n, (_, start, end) =>
        {
            float[] den = ArrayPool<float>.Shared.Rent(sample);
            float[] sq = ArrayPool<float>.Shared.Rent(sample);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var xi = x.Span.Slice(i * sample, sample);
                    var d = den.AsSpan(0, sample);
                    Scale(xi, d, sq.AsSpan(0, sample), c, s, size, alpha, k);
                    TensorPrimitives.Pow(d, -beta, d);
                    TensorPrimitives.Multiply(xi, d, y.AsSpan(i * sample, sample));
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(den);
                ArrayPool<float>.Shared.Return(sq);
            }
        });
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>
    /// The pullback of LRN. With <c>s_c</c> the scale inside the power, <c>dx_j = dy_j s_j^-beta - 2 beta alpha / size *
    /// a_j * sum_{c : j in window(c)} dy_c a_c s_c^(-beta-1)</c>.
    /// </summary>
    /// <exception cref="ShapeException">The gradient's shape is not the input's, or the input has rank below 2.</exception>
    public static Tensor Backward(Tensor x, Tensor dy, int size, float alpha, float beta, float k)
    {
        var (n, c, s) = Layout("LRN backward", x.Shape, size);
        if (dy.Shape != x.Shape) throw new ShapeException($"LRN backward: expected an upstream gradient of the input's shape {x.Shape}; found {dy.Shape}.");
        var dx = TensorArena.Zeroed<float>(x.Size);
        int sample = c * s;
        float coef = -2f * beta * alpha / size;
        BatchParallel.For(n, (_, start, end) =>
        {
            float[] scale = ArrayPool<float>.Shared.Rent(sample);
            float[] sq = ArrayPool<float>.Shared.Rent(sample);
            float[] pw = ArrayPool<float>.Shared.Rent(sample);
            float[] acc = ArrayPool<float>.Shared.Rent(s);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var xi = x.Span.Slice(i * sample, sample);
                    var di = dy.Span.Slice(i * sample, sample);
                    var dxi = dx.AsSpan(i * sample, sample);
                    var sc = scale.AsSpan(0, sample);
                    var p = pw.AsSpan(0, sample);
                    var t = sq.AsSpan(0, sample);
                    Scale(xi, sc, t, c, s, size, alpha, k);
                    TensorPrimitives.Pow(sc, -beta, p);
                    // t_c = dy_c * a_c * s_c^-beta / s_c; then the direct term dy * s^-beta goes into dx.
                    TensorPrimitives.Multiply(di, xi, t);
                    TensorPrimitives.Multiply(t, p, t);
                    TensorPrimitives.Divide(t, sc, t);
                    TensorPrimitives.Multiply(di, p, dxi);
                    var a = acc.AsSpan(0, s);
                    for (int j = 0; j < c; j++)
                    {
                        // Channel j lies in the windows of channels j - (size-1)/2 .. j + size/2: the mirror of the forward window.
                        int lo = Math.Max(0, j - (size - 1) / 2), hi = Math.Min(c - 1, j + size / 2);
                        t.Slice(lo * s, s).CopyTo(a);
                        for (int cc = lo + 1; cc <= hi; cc++) TensorPrimitives.Add(a, t.Slice(cc * s, s), a);
                        TensorPrimitives.Multiply(a, xi.Slice(j * s, s), a);
                        TensorPrimitives.MultiplyAdd(a, coef, dxi.Slice(j * s, s), dxi.Slice(j * s, s));
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scale);
                ArrayPool<float>.Shared.Return(sq);
                ArrayPool<float>.Shared.Return(pw);
                ArrayPool<float>.Shared.Return(acc);
            }
        });
        return Tensor.Own(dx, x.Shape);
    }

    // scale_c = k + alpha/size * sum of squares over channel c's window, for one sample [C, S].
    private static void Scale(ReadOnlySpan<float> x, Span<float> scale, Span<float> sq, int c, int s, int size, float alpha, float k)
    {
        TensorPrimitives.Multiply(x, x, sq);
        for (int ch = 0; ch < c; ch++)
        {
            int lo = Math.Max(0, ch - size / 2), hi = Math.Min(c - 1, ch + (size - 1) / 2);
            var d = scale.Slice(ch * s, s);
            sq.Slice(lo * s, s).CopyTo(d);
            for (int cc = lo + 1; cc <= hi; cc++) TensorPrimitives.Add(d, sq.Slice(cc * s, s), d);
            TensorPrimitives.Multiply(d, alpha / size, d);
            TensorPrimitives.Add(d, k, d);
        }
    }

    private static (int n, int c, int s) Layout(string op, Shape x, int size)
    {
        if (x.Rank < 2) throw new ShapeException($"{op}: expected an input [N, C, ...] of rank >= 2; found {x}.");
        if (size < 1) throw new CnnException($"{op}: expected a window size >= 1 channel; found {size}.");
        int n = x[0], c = x[1];
        int s = n == 0 || c == 0 ? 0 : x.Size / (n * c);
        return (n, c, s);
    }
}
