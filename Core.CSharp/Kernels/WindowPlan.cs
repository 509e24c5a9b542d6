namespace Cnn.Core.Kernels;

/// <summary>
/// A <see cref="ConvGeometry"/> applied to one input size, with 1-d and 2-d windows widened to three axes (D, H, W) by
/// leading axes of size 1, kernel 1, stride 1, no padding. The kernels loop over three axes only, and a call computes
/// this once instead of reading lists per image.
/// </summary>
internal readonly struct WindowPlan
{
    public readonly int InD, InH, InW, OutD, OutH, OutW;
    public readonly int KD, KH, KW, SD, SH, SW, PD, PH, PW, DD, DH, DW;

    /// <summary>The output size along each of the geometry's own axes (not widened).</summary>
    public readonly int[] Output;

    public WindowPlan(IReadOnlyList<int> spatial, ConvGeometry g, string op)
    {
        var o = Output = g.OutputSize(spatial, op);
        int lead = 3 - g.Rank;
        InD = Axis(spatial, lead, 0, 1); InH = Axis(spatial, lead, 1, 1); InW = Axis(spatial, lead, 2, 1);
        OutD = Axis(o, lead, 0, 1); OutH = Axis(o, lead, 1, 1); OutW = Axis(o, lead, 2, 1);
        KD = Axis(g.Kernel, lead, 0, 1); KH = Axis(g.Kernel, lead, 1, 1); KW = Axis(g.Kernel, lead, 2, 1);
        SD = Axis(g.Stride, lead, 0, 1); SH = Axis(g.Stride, lead, 1, 1); SW = Axis(g.Stride, lead, 2, 1);
        PD = Axis(g.PadBegin, lead, 0, 0); PH = Axis(g.PadBegin, lead, 1, 0); PW = Axis(g.PadBegin, lead, 2, 0);
        DD = Axis(g.Dilation, lead, 0, 1); DH = Axis(g.Dilation, lead, 1, 1); DW = Axis(g.Dilation, lead, 2, 1);
    }

    /// <summary>Elements of one input plane (one channel of one image).</summary>
    public int InSize => InD * InH * InW;

    /// <summary>Elements of one output plane: the column matrix's width.</summary>
    public int OutSize => OutD * OutH * OutW;

    /// <summary>Kernel taps per channel.</summary>
    public int Taps => KD * KH * KW;

    /// <summary>
    /// The outputs <c>[lo, hi)</c> along an axis whose tap reads input <c>o * stride + offset</c> inside <c>[0, size)</c>;
    /// <c>offset = tap * dilation - padBegin</c>. Outputs outside read padding.
    /// </summary>
    public static (int Lo, int Hi) Outputs(int size, int outSize, int stride, int offset)
    {
        int lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
        int last = size - 1 - offset;
        int hi = last < 0 ? 0 : Math.Min(outSize, last / stride + 1);
        return (Math.Min(lo, hi), hi);
    }

    /// <summary>The taps <c>[lo, hi)</c> of output <paramref name="o"/> along an axis that read the input rather than padding.</summary>
    public static (int Lo, int Hi) Taps1(int o, int size, int kernel, int stride, int pad, int dilation)
    {
        int start = o * stride - pad;
        int lo = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
        int last = size - 1 - start;
        int hi = last < 0 ? 0 : Math.Min(kernel, last / dilation + 1);
        return (Math.Min(lo, hi), hi);
    }

    private static int Axis(IReadOnlyList<int> values, int lead, int axis, int fallback) =>
        axis < lead ? fallback : values[axis - lead];
}
