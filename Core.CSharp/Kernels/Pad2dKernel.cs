namespace Cnn.Core.Kernels;

/// <summary>How <see cref="Pad2dKernel"/> fills the border.</summary>
public enum PadFill
{
    /// <summary>A constant value.</summary>
    Constant,
    /// <summary>The mirror image without repeating the edge (PyTorch's reflect, ONNX's reflect): <c>[c b | a b c d | c b]</c>.</summary>
    Reflect,
    /// <summary>The edge value repeated (PyTorch's replicate, ONNX's edge): <c>[a a | a b c d | d d]</c>.</summary>
    Edge,
}

/// <summary>
/// Explicit padding of <c>[N, C, H, W]</c>: each output row and column reads one input row and column (or the constant), so the
/// forward pass is a gather and its pullback the matching scatter-add (reflected and repeated borders send their gradient to
/// the input elements they copy).
/// </summary>
public static class Pad2dKernel
{
    /// <summary>The padded tensor <c>[N, C, H + top + bottom, W + left + right]</c>.</summary>
    /// <exception cref="ShapeException">The input is not 4-d, a padding is negative, or a reflected padding is not below the axis's size.</exception>
    public static Tensor Forward(Tensor x, int top, int bottom, int left, int right, PadFill fill, float value)
    {
        var (rows, cols, output) = Maps(x.Shape, top, bottom, left, right, fill);
        int planes = x.Shape[0] * x.Shape[1], h = x.Shape[2], w = x.Shape[3], oh = rows.Length, ow = cols.Length;
        var y = TensorArena.Uninitialized<float>(output.Size);
        var xs = x.Span;
        for (int p = 0; p < planes; p++)
            for (int r = 0; r < oh; r++)
            {
                var dst = y.AsSpan((p * oh + r) * ow, ow);
                if (rows[r] < 0)
                {
                    dst.Fill(value);
                    continue;
                }
                var src = xs.Slice((p * h + rows[r]) * w, w);
                for (int c = 0; c < ow; c++) dst[c] = cols[c] < 0 ? value : src[cols[c]];
            }
        return Tensor.Own(y, output);
    }

    /// <summary>The pullback: each output gradient added to the input element its value came from (none for the constant).</summary>
    public static Tensor Backward(Tensor dy, Shape input, int top, int bottom, int left, int right, PadFill fill)
    {
        var (rows, cols, output) = Maps(input, top, bottom, left, right, fill);
        if (dy.Shape != output) throw new ShapeException($"Pad backward: expected a gradient of shape {output}; found {dy.Shape}.");
        int planes = input[0] * input[1], h = input[2], w = input[3], oh = rows.Length, ow = cols.Length;
        var dx = TensorArena.Zeroed<float>(input.Size);
        var ds = dy.Span;
        for (int p = 0; p < planes; p++)
            for (int r = 0; r < oh; r++)
            {
                if (rows[r] < 0) continue;
                var src = ds.Slice((p * oh + r) * ow, ow);
                var dst = dx.AsSpan((p * h + rows[r]) * w, w);
                for (int c = 0; c < ow; c++)
                    if (cols[c] >= 0) dst[cols[c]] += src[c];
            }
        return Tensor.Own(dx, input);
    }

    /// <summary>The input row of each output row and the input column of each output column (-1 for the constant), and the output shape.</summary>
    private static (int[] Rows, int[] Cols, Shape Output) Maps(Shape x, int top, int bottom, int left, int right, PadFill fill)
    {
        if (x.Rank != 4) throw new ShapeException($"Pad: expected [N, C, H, W]; found {x}.");
        return (Map(x[2], top, bottom, fill, "height"), Map(x[3], left, right, fill, "width"),
            new Shape(x[0], x[1], x[2] + top + bottom, x[3] + left + right));
    }

    private static int[] Map(int size, int before, int after, PadFill fill, string axis)
    {
        if (before < 0 || after < 0) throw new ShapeException($"Pad: paddings must be >= 0; found {before} and {after} along the {axis}.");
        if (fill == PadFill.Reflect && (before >= size || after >= size))
            throw new ShapeException($"Pad: a reflected padding must be below the {axis} {size}; found {before} and {after}.");
        var map = new int[size + before + after];
        for (int i = 0; i < map.Length; i++)
        {
            int j = i - before;
            map[i] = j >= 0 && j < size ? j : fill switch
            {
                PadFill.Constant => -1,
                PadFill.Edge => Math.Clamp(j, 0, size - 1),
                _ => j < 0 ? -j : 2 * (size - 1) - j,
            };
        }
        return map;
    }
}
