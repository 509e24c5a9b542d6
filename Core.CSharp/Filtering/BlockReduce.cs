namespace Cnn.Core.Filtering;

/// <summary>
/// Block reduction of a 2-d array (image processing's down-sampling, as <c>skimage.measure.block_reduce</c> with
/// <c>np.max</c> or <c>np.mean</c>): the array is cut into non-overlapping <c>blockH x blockW</c> blocks from the top-left
/// corner, and each block is reduced to one value. An <c>[H, W]</c> input gives <c>[ceil(H / blockH), ceil(W / blockW)]</c>.
/// This is not a network layer (no gradient); pooling layers are in <c>Cnn.Core.Kernels</c>.
/// </summary>
/// <remarks>
/// <para>
/// Where a block size does not divide the array, the last blocks of a row or column are partial. scikit-image pads
/// the array at the end (bottom and right) with a constant <c>cval</c>, <b>0 by default</b>, and reduces the padded
/// blocks whole: with that default a partial block's maximum is at least 0 even where every real value is negative,
/// and its mean divides by the whole block area, as if the missing elements were zeros. Both are artefacts of the
/// padding, not properties of the image, so by default (<c>padValue</c> null) this class pads with the reduction's
/// neutral element instead, which is the same as reducing only the real elements of each partial block:
/// </para>
/// <list type="bullet">
/// <item><see cref="Max"/>: -infinity, the maximum of the real elements; scikit-image's result with <c>cval=-np.inf</c>.</item>
/// <item><see cref="Mean"/>: the mean of the real elements (divided by their count, not the block area); scikit-image's
/// result with <c>func=np.nanmean, cval=np.nan</c> on an array without NaN.</item>
/// </list>
/// <para>
/// With a <c>padValue</c> c, the array is padded with c exactly as scikit-image's <c>cval=c</c>: the padding takes part
/// in the maximum, and a mean always divides by <c>blockH * blockW</c>. So <c>Mean(x, bh, bw, padValue: 0)</c> and
/// <c>Max(x, bh, bw, padValue: 0)</c> are <c>block_reduce(x, (bh, bw), np.mean)</c> and <c>..., np.max)</c> with
/// scikit-image's defaults. Where the block sizes divide the array, every choice gives the same result.
/// </para>
/// <para>NaN propagates: a block holding a NaN reduces to NaN, as <c>np.max</c> and <c>np.mean</c> do. Means are summed in double precision.</para>
/// </remarks>
public static class BlockReduce
{
    /// <summary>The maximum of each <c>blockH x blockW</c> block of a 2-d array.</summary>
    /// <param name="image">The array <c>[H, W]</c>.</param>
    /// <param name="blockH">Block height, at least 1.</param>
    /// <param name="blockW">Block width, at least 1.</param>
    /// <param name="padValue">
    /// Null (default): a partial block at the bottom or right edge takes the maximum of its real elements. A value c:
    /// the array is padded with c as scikit-image's <c>cval</c>, and c takes part in the partial blocks' maxima.
    /// </param>
    /// <returns>The reduced array <c>[ceil(H / blockH), ceil(W / blockW)]</c>.</returns>
    /// <exception cref="ShapeException">The input is not 2-d.</exception>
    /// <exception cref="CnnException">A block size is below 1.</exception>
    public static Tensor Max(Tensor image, int blockH, int blockW, float? padValue = null) =>
        Reduce(image, blockH, blockW, padValue, "Block max", mean: false);

    /// <summary>The mean of each <c>blockH x blockW</c> block of a 2-d array.</summary>
    /// <param name="image">The array <c>[H, W]</c>.</param>
    /// <param name="blockH">Block height, at least 1.</param>
    /// <param name="blockW">Block width, at least 1.</param>
    /// <param name="padValue">
    /// Null (default): a partial block at the bottom or right edge takes the mean of its real elements only. A value c:
    /// the array is padded with c as scikit-image's <c>cval</c>, and every block's sum is divided by <c>blockH * blockW</c>.
    /// </param>
    /// <returns>The reduced array <c>[ceil(H / blockH), ceil(W / blockW)]</c>.</returns>
    /// <exception cref="ShapeException">The input is not 2-d.</exception>
    /// <exception cref="CnnException">A block size is below 1.</exception>
    public static Tensor Mean(Tensor image, int blockH, int blockW, float? padValue = null) =>
        Reduce(image, blockH, blockW, padValue, "Block mean", mean: true);

    private static Tensor Reduce(Tensor image, int blockH, int blockW, float? padValue, string op, bool mean)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Shape.Rank != 2) throw new ShapeException($"{op}: expected a 2-d array [H, W]; found {image.Shape}.");
        if (blockH < 1 || blockW < 1) throw new CnnException($"{op}: expected block sizes >= 1; found ({blockH}, {blockW}) for an array {image.Shape}.");
        int h = image.Shape[0], w = image.Shape[1];
        int oh = (h + blockH - 1) / blockH, ow = (w + blockW - 1) / blockW;
        var y = new float[oh * ow];
        var xs = image.Span;
        for (int by = 0; by < oh; by++)
        {
            int y0 = by * blockH, y1 = Math.Min(y0 + blockH, h);
            for (int bx = 0; bx < ow; bx++)
            {
                int x0 = bx * blockW, x1 = Math.Min(x0 + blockW, w);
                int real = (y1 - y0) * (x1 - x0), missing = blockH * blockW - real;
                float value;
                if (mean)
                {
                    double sum = 0;
                    for (int i = y0; i < y1; i++)
                        for (int j = x0; j < x1; j++) sum += xs[i * w + j];
                    if (padValue is { } c) value = (float)((sum + (double)c * missing) / (blockH * blockW));
                    else value = (float)(sum / real);
                }
                else
                {
                    float max = float.NegativeInfinity;
                    for (int i = y0; i < y1; i++)
                        for (int j = x0; j < x1; j++)
                        {
                            float v = xs[i * w + j];
                            if (v > max || float.IsNaN(v)) max = v; // once NaN, nothing compares above it: NaN sticks
                        }
                    if (missing > 0 && padValue is { } c && (c > max || float.IsNaN(c))) max = c;
                    value = max;
                }
                y[by * ow + bx] = value;
            }
        }
        return Tensor.Own(y, new Shape(oh, ow));
    }
}
