namespace Cnn.Core.Kernels;

/// <summary>
/// Unfolds one image's sliding windows into columns, and folds them back. The column matrix has
/// <c>C*KH*KW</c> rows (channel-major, then kernel row, then kernel column: the order of a flattened
/// <c>[F, C, KH, KW]</c> weight) and <c>OH*OW</c> columns.
/// </summary>
public static class Im2Col
{
    /// <summary>Writes the columns of one image <paramref name="x"/> (<c>C x H x W</c>) into <paramref name="cols"/>.</summary>
    public static void Unfold(ReadOnlySpan<float> x, int c, int h, int w, Window2d g, Span<float> cols)
    {
        int oh = g.OutH(h), ow = g.OutW(w), ohw = oh * ow;
        int row = 0;
        for (int ch = 0; ch < c; ch++)
        {
            var plane = x.Slice(ch * h * w, h * w);
            for (int ki = 0; ki < g.KernelH; ki++)
            for (int kj = 0; kj < g.KernelW; kj++, row++)
            {
                var dst = cols.Slice(row * ohw, ohw);
                for (int oy = 0; oy < oh; oy++)
                {
                    int iy = oy * g.StrideH - g.PadH + ki;
                    var drow = dst.Slice(oy * ow, ow);
                    if ((uint)iy >= (uint)h) { drow.Clear(); continue; }
                    var src = plane.Slice(iy * w, w);
                    int ix0 = kj - g.PadW;
                    if (g.StrideW == 1 && ix0 >= 0 && ix0 + ow <= w)
                    {
                        src.Slice(ix0, ow).CopyTo(drow);
                        continue;
                    }
                    for (int ox = 0; ox < ow; ox++)
                    {
                        int ix = ix0 + ox * g.StrideW;
                        drow[ox] = (uint)ix < (uint)w ? src[ix] : 0f;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Adds the columns <paramref name="cols"/> back into image gradient <paramref name="dx"/> (<c>C x H x W</c>):
    /// the adjoint of <see cref="Unfold"/>. Overlapping windows sum; padded positions are dropped.
    /// </summary>
    public static void FoldAdd(ReadOnlySpan<float> cols, int c, int h, int w, Window2d g, Span<float> dx)
    {
        int oh = g.OutH(h), ow = g.OutW(w), ohw = oh * ow;
        int row = 0;
        for (int ch = 0; ch < c; ch++)
        {
            var plane = dx.Slice(ch * h * w, h * w);
            for (int ki = 0; ki < g.KernelH; ki++)
            for (int kj = 0; kj < g.KernelW; kj++, row++)
            {
                var src = cols.Slice(row * ohw, ohw);
                for (int oy = 0; oy < oh; oy++)
                {
                    int iy = oy * g.StrideH - g.PadH + ki;
                    if ((uint)iy >= (uint)h) continue;
                    var dst = plane.Slice(iy * w, w);
                    var srow = src.Slice(oy * ow, ow);
                    int ix0 = kj - g.PadW;
                    if (g.StrideW == 1 && ix0 >= 0 && ix0 + ow <= w)
                    {
                        System.Numerics.Tensors.TensorPrimitives.Add(dst.Slice(ix0, ow), srow, dst.Slice(ix0, ow));
                        continue;
                    }
                    for (int ox = 0; ox < ow; ox++)
                    {
                        int ix = ix0 + ox * g.StrideW;
                        if ((uint)ix < (uint)w) dst[ix] += srow[ox];
                    }
                }
            }
        }
    }
}
