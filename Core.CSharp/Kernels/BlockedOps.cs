using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Cnn.Core.Kernels;

/// <summary>
/// The layers between <see cref="BlockedConv"/>s that keep the channel-blocked layout (<see cref="BlockedPlane"/>), and
/// the copies into and out of it. Each writes the interior of its output only (the border stays zero) and gives the bits
/// its NCHW kernel gives.
/// </summary>
internal static unsafe class BlockedOps
{
    /// <summary>Images <c>[n0, n1)</c> of NCHW <paramref name="x"/> into the interior of the planar buffer <paramref name="y"/> (<paramref name="p"/>).</summary>
    public static void ToPlanar(ReadOnlySpan<float> x, BlockedPlane p, float[] y, int n0, int n1)
    {
        for (int n = n0; n < n1; n++)
            for (int c = 0; c < p.C; c++)
                for (int h = 0; h < p.H; h++)
                    x.Slice(((n * p.C + c) * p.H + h) * p.W, p.W).CopyTo(y.AsSpan(p.Offset(n, c, h, 0), p.W));
    }

    /// <summary>Images <c>[n0, n1)</c> of the interior of the blocked buffer <paramref name="x"/> (<paramref name="p"/>) as NCHW into <paramref name="y"/>.</summary>
    public static void ToNchw(float[] x, BlockedPlane p, Span<float> y, int n0, int n1)
    {
        int lanes = BlockedPlane.Lanes, plane = p.H * p.W;
        fixed (float* px = x, py = y)
            for (int n = n0; n < n1; n++)
                for (int b = 0; b < p.C / lanes; b++)
                {
                    float* yb = py + ((long)n * p.C + b * lanes) * plane;
                    for (int h = 0; h < p.H; h++)
                    {
                        float* row = px + p.Offset(n, b, h, 0);
                        for (int w = 0; w < p.W; w++, row += lanes)
                            for (int l = 0; l < lanes; l++) yb[l * plane + h * p.W + w] = row[l];
                    }
                }
    }

    /// <summary>
    /// Max pooling of the blocked buffer <paramref name="x"/> into the interior of <paramref name="y"/>, channel blocks
    /// <c>[b0, b1)</c> counted over the batch (image-major): each window clipped to the input and reduced in row-major order by
    /// <c>MaxPool2dKernel.MaxOp.Later</c> (a later element wins if greater, or NaN over a number), the rule of
    /// <see cref="MaxPool2dKernel"/>, so the values are its bits, 16 channels at a time.
    /// </summary>
    public static void MaxPool(float[] x, BlockedPlane pin, Window2d g, float[] y, BlockedPlane pout, int b0, int b1)
    {
        int lanes = BlockedPlane.Lanes, blocks = pin.C / lanes;
        fixed (float* px = x, py = y)
            for (int nb = b0; nb < b1; nb++)
            {
                int n = nb / blocks, b = nb % blocks;
                for (int oh = 0; oh < pout.H; oh++)
                {
                    int h0 = Math.Max(0, oh * g.StrideH - g.PadH), h1 = Math.Min(pin.H, oh * g.StrideH - g.PadH + g.KernelH);
                    float* yo = py + pout.Offset(n, b, oh, 0);
                    for (int ow = 0; ow < pout.W; ow++, yo += lanes)
                    {
                        int w0 = Math.Max(0, ow * g.StrideW - g.PadW), w1 = Math.Min(pin.W, ow * g.StrideW - g.PadW + g.KernelW);
                        var best = Vector512.Load(px + pin.Offset(n, b, h0, w0));
                        bool first = true;
                        for (int h = h0; h < h1; h++)
                        {
                            float* xr = px + pin.Offset(n, b, h, 0);
                            for (int w = w0; w < w1; w++)
                            {
                                if (first) { first = false; continue; }
                                best = MaxPool2dKernel.MaxOp.Later(best, Vector512.Load(xr + w * lanes));
                            }
                        }
                        best.Store(yo);
                    }
                }
            }
    }

    /// <summary>
    /// <c>a + b</c> (then ReLU by <see cref="FusedActivation.Relu"/> when asked) over buffers of one layout, border included:
    /// the borders are zero on both sides and stay zero (ReLU of +0 is +0); the interior has the bits of
    /// <see cref="TensorOps.Add(Tensor, Tensor)"/> followed by the ReLU layer.
    /// </summary>
    public static void Sum(Span<float> a, Span<float> b, Span<float> y, bool relu)
    {
        TensorPrimitives.Add(a, b, y);
        if (relu) FusedActivation.Relu.Apply(y, y);
    }
}
