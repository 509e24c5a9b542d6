using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// Unfolds one image's sliding windows into a column matrix (im2col), and folds columns back (col2im), for 1-d, 2-d
/// and 3-d windows with stride, dilation and asymmetric zero padding. The column matrix has <c>C*k1*...*kr</c> rows,
/// channel-major and then the kernel axes in order (the order of a flattened <c>[F, C, k1, ..., kr]</c> weight), and
/// one column per output position (<c>o1*...*or</c>, row-major).
/// </summary>
public static class ImToCol
{
    /// <summary>
    /// Writes the columns of one image <paramref name="x"/> (<c>channels x spatial</c>, row-major) into <paramref name="cols"/>;
    /// positions that fall in the padding become 0.
    /// </summary>
    /// <param name="x">The image, at least <c>channels * product(spatial)</c> elements.</param>
    /// <param name="channels">The number of channels.</param>
    /// <param name="spatial">The image's spatial sizes, one per axis of <paramref name="g"/>.</param>
    /// <param name="g">The window; its groups are ignored.</param>
    /// <param name="cols">The column matrix, at least <c>channels * taps * outputs</c> elements; only that prefix is written.</param>
    /// <exception cref="ShapeException">The window does not fit the image, or a buffer is too small.</exception>
    public static void Unfold(ReadOnlySpan<float> x, int channels, IReadOnlyList<int> spatial, ConvGeometry g, Span<float> cols)
    {
        var p = new WindowPlan(spatial, g, "ImToCol.Unfold");
        CheckSizes(x.Length, cols.Length, channels, p, "ImToCol.Unfold", "image");
        Unfold(x, channels, p, cols);
    }

    /// <summary>
    /// Adds the columns <paramref name="cols"/> back into the image gradient <paramref name="dx"/> (<c>channels x spatial</c>):
    /// the adjoint of <see cref="Unfold(ReadOnlySpan{float}, int, IReadOnlyList{int}, ConvGeometry, Span{float})"/>.
    /// Overlapping windows sum; entries that fall in the padding are dropped.
    /// </summary>
    /// <param name="cols">The column matrix, at least <c>channels * taps * outputs</c> elements.</param>
    /// <param name="channels">The number of channels.</param>
    /// <param name="spatial">The image's spatial sizes, one per axis of <paramref name="g"/>.</param>
    /// <param name="g">The window; its groups are ignored.</param>
    /// <param name="dx">The image to add into, at least <c>channels * product(spatial)</c> elements.</param>
    /// <exception cref="ShapeException">The window does not fit the image, or a buffer is too small.</exception>
    public static void FoldAdd(ReadOnlySpan<float> cols, int channels, IReadOnlyList<int> spatial, ConvGeometry g, Span<float> dx)
    {
        var p = new WindowPlan(spatial, g, "ImToCol.FoldAdd");
        CheckSizes(dx.Length, cols.Length, channels, p, "ImToCol.FoldAdd", "image gradient");
        FoldAdd(cols, channels, p, dx);
    }

    internal static void Unfold(ReadOnlySpan<float> x, int channels, in WindowPlan p, Span<float> cols)
    {
        int ow = p.OutW, ohw = p.OutH * ow, outSize = p.OutD * ohw, inW = p.InW, sw = p.SW;
        int row = 0;
        for (int ch = 0; ch < channels; ch++)
        {
            var plane = x.Slice(ch * p.InSize, p.InSize);
            for (int kd = 0; kd < p.KD; kd++)
            {
                int offD = kd * p.DD - p.PD;
                var (dLo, dHi) = WindowPlan.Outputs(p.InD, p.OutD, p.SD, offD);
                for (int kh = 0; kh < p.KH; kh++)
                {
                    int offH = kh * p.DH - p.PH;
                    var (hLo, hHi) = WindowPlan.Outputs(p.InH, p.OutH, p.SH, offH);
                    for (int kw = 0; kw < p.KW; kw++, row++)
                    {
                        int offW = kw * p.DW - p.PW;
                        var (wLo, wHi) = WindowPlan.Outputs(inW, ow, sw, offW);
                        var dst = cols.Slice(row * outSize, outSize);
                        if (dLo == dHi || hLo == hHi || wLo == wHi)
                        {
                            dst.Clear();
                            continue;
                        }
                        dst[..(dLo * ohw)].Clear();
                        dst[(dHi * ohw)..].Clear();
                        int run = wHi - wLo;
                        for (int od = dLo; od < dHi; od++)
                        {
                            var src3 = plane.Slice((od * p.SD + offD) * p.InH * inW);
                            var dst2 = dst.Slice(od * ohw, ohw);
                            dst2[..(hLo * ow)].Clear();
                            dst2[(hHi * ow)..].Clear();
                            for (int oh = hLo; oh < hHi; oh++)
                            {
                                var src = src3.Slice((oh * p.SH + offH) * inW, inW);
                                var drow = dst2.Slice(oh * ow, ow);
                                drow[..wLo].Clear();
                                drow[wHi..].Clear();
                                int ix = wLo * sw + offW;
                                if (sw == 1)
                                {
                                    src.Slice(ix, run).CopyTo(drow.Slice(wLo, run));
                                    continue;
                                }
                                for (int ox = wLo; ox < wHi; ox++, ix += sw) drow[ox] = src[ix];
                            }
                        }
                    }
                }
            }
        }
    }

    internal static void FoldAdd(ReadOnlySpan<float> cols, int channels, in WindowPlan p, Span<float> dx)
    {
        int ow = p.OutW, ohw = p.OutH * ow, outSize = p.OutD * ohw, inW = p.InW, sw = p.SW;
        int row = 0;
        for (int ch = 0; ch < channels; ch++)
        {
            var plane = dx.Slice(ch * p.InSize, p.InSize);
            for (int kd = 0; kd < p.KD; kd++)
            {
                int offD = kd * p.DD - p.PD;
                var (dLo, dHi) = WindowPlan.Outputs(p.InD, p.OutD, p.SD, offD);
                for (int kh = 0; kh < p.KH; kh++)
                {
                    int offH = kh * p.DH - p.PH;
                    var (hLo, hHi) = WindowPlan.Outputs(p.InH, p.OutH, p.SH, offH);
                    for (int kw = 0; kw < p.KW; kw++, row++)
                    {
                        int offW = kw * p.DW - p.PW;
                        var (wLo, wHi) = WindowPlan.Outputs(inW, ow, sw, offW);
                        int run = wHi - wLo;
                        if (run == 0) continue;
                        var src = cols.Slice(row * outSize, outSize);
                        for (int od = dLo; od < dHi; od++)
                        {
                            var dst3 = plane.Slice((od * p.SD + offD) * p.InH * inW);
                            var src2 = src.Slice(od * ohw, ohw);
                            for (int oh = hLo; oh < hHi; oh++)
                            {
                                var dst = dst3.Slice((oh * p.SH + offH) * inW, inW);
                                var srow = src2.Slice(oh * ow, ow);
                                int ix = wLo * sw + offW;
                                if (sw == 1)
                                {
                                    var d = dst.Slice(ix, run);
                                    TensorPrimitives.Add(d, srow.Slice(wLo, run), d);
                                    continue;
                                }
                                for (int ox = wLo; ox < wHi; ox++, ix += sw) dst[ix] += srow[ox];
                            }
                        }
                    }
                }
            }
        }
    }

    private static void CheckSizes(int imageLength, int colsLength, int channels, in WindowPlan p, string op, string image)
    {
        if (channels < 1) throw new ShapeException($"{op}: expected at least 1 channel; found {channels}.");
        long need = (long)channels * p.InSize, colNeed = (long)channels * p.Taps * p.OutSize;
        if (imageLength < need)
            throw new ShapeException($"{op}: the {image} needs {channels} x {p.InSize} = {need} elements; found {imageLength}.");
        if (colsLength < colNeed)
            throw new ShapeException($"{op}: the column matrix needs {channels * p.Taps} x {p.OutSize} = {colNeed} elements; found {colsLength}.");
    }
}
