namespace Cnn.Core.Kernels;

/// <summary>
/// The input gradient of a stride-1 convolution computed by <see cref="DirectConv"/>: dx is the correlation of dy, padded by
/// <c>(K - 1) * dilation - pad</c> on each side, with the weights flipped in space and with filters and channels swapped,
/// so it needs neither the GEMM's <c>W^T dY</c> column matrix nor the col2im fold that adds it back into dx.
/// </summary>
/// <remarks>
/// Each element of dx is one fused multiply-add chain over (filter, tap) in order, in depth blocks as the GEMM path sums
/// its products, so the result does not depend on the thread count; it differs in the last bits from the GEMM path's,
/// whose fold adds each tap's product separately.
/// </remarks>
internal sealed unsafe class DirectInputGradient
{
    private readonly ConvColumns _layout;
    private readonly float[] _flipped;
    private readonly int _channels;

    private DirectInputGradient(ConvColumns layout, float[] flipped, int channels)
    {
        _layout = layout;
        _flipped = flipped;
        _channels = channels;
    }

    /// <summary>The transposed problem when the direct kernel covers it (stride 1, one group, 1-d or 2-d), else null.</summary>
    public static DirectInputGradient? Create(Tensor w, in WindowPlan plan, int n, int c, int f, int groups)
    {
        if (groups != 1 || plan.SH != 1 || plan.SW != 1 || plan.InD != 1 || plan.KD != 1) return null;
        int kh = plan.KH, kw = plan.KW;
        int spanH = (kh - 1) * plan.DH, spanW = (kw - 1) * plan.DW;
        // At stride 1, Out = In + padBegin + padEnd - span, so the forward's end padding is span - (In - Out + padBegin).
        int padEndH = plan.InH - plan.OutH + plan.PH, padEndW = plan.InW - plan.OutW + plan.PW;
        // Padding wider than the window's span reads only zeros at the edge: the GEMM path takes those layers.
        if (spanH < plan.PH || spanW < plan.PW || padEndH < 0 || padEndW < 0) return null;
        // Measured (one Xeon thread, N32) against the GEMM path's W^T dY and fold: 1.1-1.5x on 3x3 "same" layers of 16-64
        // channels on 14x14 to 56x56 images; slower where the correlation's padding exceeds the forward's (0.91x on an
        // unpadded 3x3 layer, 0.62x on lenet5's unpadded 5x5) and where channels leave a tile of eight part empty.
        if (c % 8 != 0 || 2 * plan.PH < spanH || 2 * plan.PW < spanW) return null;
        bool rank1 = plan.InH == 1 && plan.KH == 1 && plan.OutH == 1;
        var g = rank1
            ? ConvGeometry.Create(new[] { kw }, null, new[] { spanW - plan.PW }, new[] { padEndW }, new[] { plan.DW })
            : ConvGeometry.Create(new[] { kh, kw }, null, new[] { spanH - plan.PH, spanW - plan.PW }, new[] { padEndH, padEndW }, new[] { plan.DH, plan.DW });
        var transposed = new WindowPlan(rank1 ? new[] { plan.OutW } : new[] { plan.OutH, plan.OutW }, g, "Convolution input gradient");
        if (transposed.OutH != plan.InH || transposed.OutW != plan.InW) return null;
        var layout = new ConvColumns(n, f, 1, transposed);
        if (!DirectConv.Covers(layout, c)) return null;
        // Row (o, th, tw) of channel ci's flipped weights: w[o, ci, kh - 1 - th, kw - 1 - tw].
        var ws = w.Span;
        int taps = kh * kw;
        var flipped = new float[c * f * taps];
        for (int ci = 0; ci < c; ci++)
            for (int o = 0; o < f; o++)
                for (int t = 0; t < taps; t++)
                    flipped[(ci * f + o) * taps + t] = ws[(o * c + ci) * taps + taps - 1 - t];
        return new DirectInputGradient(layout, flipped, c);
    }

    /// <summary>dx of images <c>[i0, i1)</c> from dy, on the calling thread.</summary>
    public void Run(float* dy, float* dx, int i0, int i1)
    {
        fixed (float* w = _flipped)
            DirectConv.Forward(_layout, dy, w, null, _channels, dx, i0, i1, 0, _channels, relu: false);
    }

    /// <summary>dx of the whole batch, split between the workers by image (or, for one image, by channel).</summary>
    public void Run(Tensor dy, float[] dx)
    {
        void Part(int i0, int i1, int c0, int c1)
        {
            fixed (float* pdy = dy.Span, pdx = dx, w = _flipped)
                DirectConv.Forward(_layout, pdy, w, null, _channels, pdx, i0, i1, c0, c1, relu: false);
        }
        if (_layout.N > 1) BatchParallel.For(_layout.N, (_, start, end) => Part(start, end, 0, _channels));
        else BatchParallel.For((_channels + 7) / 8, (_, start, end) => Part(0, 1, start * 8, Math.Min(_channels, end * 8)));
    }
}
