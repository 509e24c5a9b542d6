using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    /// One <see cref="BlockedConv"/> item's outputs, laid out blocked (<c>[2][pixels][16]</c>, the second block
    /// <paramref name="half"/> floats on), as <paramref name="pixels"/> consecutive floats of each of 32 NCHW channel rows
    /// (<paramref name="plane"/> floats apart, the first at <paramref name="y"/>): four pixels of four channels at a time,
    /// transposed in registers.
    /// </summary>
    public static void ItemToNchw(float* s, nint half, int pixels, float* y, nint plane)
    {
        const int lanes = BlockedPlane.Lanes;
        for (int b = 0; b < 2; b++)
            for (int l = 0; l < lanes; l += 4)
            {
                float* src = s + b * half + l, dst = y + (lanes * b + l) * plane;
                int p = 0;
                for (; p + 4 <= pixels; p += 4)
                {
                    float* q = src + p * lanes;
                    var r0 = Vector128.Load(q);
                    var r1 = Vector128.Load(q + lanes);
                    var r2 = Vector128.Load(q + 2 * lanes);
                    var r3 = Vector128.Load(q + 3 * lanes);
                    var t0 = Sse.UnpackLow(r0, r1);
                    var t1 = Sse.UnpackLow(r2, r3);
                    var t2 = Sse.UnpackHigh(r0, r1);
                    var t3 = Sse.UnpackHigh(r2, r3);
                    Sse.MoveLowToHigh(t0, t1).Store(dst + p);
                    Sse.MoveHighToLow(t1, t0).Store(dst + plane + p);
                    Sse.MoveLowToHigh(t2, t3).Store(dst + 2 * plane + p);
                    Sse.MoveHighToLow(t3, t2).Store(dst + 3 * plane + p);
                }
                for (; p < pixels; p++)
                    for (int j = 0; j < 4; j++) dst[j * plane + p] = src[p * lanes + j];
            }
    }

    /// <summary>
    /// Max pooling of the blocked buffer <paramref name="x"/> into the interior of <paramref name="y"/>, channel blocks
    /// <c>[b0, b1)</c> counted over the batch (image-major): each window clipped to the input and reduced in row-major order by
    /// <c>MaxPool2dKernel.MaxOp.Later</c> (a later element wins if greater, or NaN over a number), the rule of
    /// <see cref="MaxPool2dKernel"/>, so the values are its bits, 16 channels at a time (as one zmm, or two ymm when not
    /// <see cref="KernelWidth.Wide"/>).
    /// </summary>
    public static void MaxPool(float[] x, BlockedPlane pin, Window2d g, float[] y, BlockedPlane pout, int b0, int b1)
    {
        int lanes = BlockedPlane.Lanes, blocks = pin.C / lanes;
        bool wide = KernelWidth.Wide;
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
                        if (wide) Window512(px, pin, n, b, h0, h1, w0, w1, yo);
                        else Window256(px, pin, n, b, h0, h1, w0, w1, yo);
                    }
                }
            }
    }

    /// <summary>A window's 16 channels of rows <c>[h0, h1)</c> and columns <c>[w0, w1)</c> reduced in row-major order as one zmm.</summary>
    private static void Window512(float* x, BlockedPlane p, int n, int b, int h0, int h1, int w0, int w1, float* y)
    {
        var best = Vector512.Load(x + p.Offset(n, b, h0, w0));
        for (int h = h0; h < h1; h++)
        {
            float* xr = x + p.Offset(n, b, h, 0);
            for (int w = h == h0 ? w0 + 1 : w0; w < w1; w++) best = MaxPool2dKernel.MaxOp.Later(best, Vector512.Load(xr + w * BlockedPlane.Lanes));
        }
        best.Store(y);
    }

    /// <summary><see cref="Window512"/> as two ymm.</summary>
    private static void Window256(float* x, BlockedPlane p, int n, int b, int h0, int h1, int w0, int w1, float* y)
    {
        float* x0 = x + p.Offset(n, b, h0, w0);
        Vector256<float> lo = Vector256.Load(x0), hi = Vector256.Load(x0 + 8);
        for (int h = h0; h < h1; h++)
        {
            float* xr = x + p.Offset(n, b, h, 0);
            for (int w = h == h0 ? w0 + 1 : w0; w < w1; w++)
            {
                lo = MaxPool2dKernel.MaxOp.Later(lo, Vector256.Load(xr + w * BlockedPlane.Lanes));
                hi = MaxPool2dKernel.MaxOp.Later(hi, Vector256.Load(xr + w * BlockedPlane.Lanes + 8));
            }
        }
        lo.Store(y);
        hi.Store(y + 8);
    }

    /// <summary>
    /// <c>a + b</c> (then ReLU by <see cref="FusedActivation.Relu"/> when asked) over buffers of one layout, border included:
    /// the borders are zero on both sides and stay zero (ReLU of +0 is +0); the interior has the bits of
    /// <see cref="TensorOps.Add(Tensor, Tensor)"/> followed by the ReLU layer.
    /// </summary>
    public static void Sum(Span<float> a, Span<float> b, Span<float> y, bool relu) => TensorOps.AddBlock(a, b, y, relu);
}
