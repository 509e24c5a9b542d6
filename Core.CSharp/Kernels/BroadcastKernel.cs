using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// The element-wise product of tensors of one rank that broadcast against each other (each axis the same size or 1, as
/// NumPy, PyTorch and ONNX's Mul), and its pullback's reduction: squeeze-and-excitation multiplies <c>[N, C, H, W]</c> by a
/// <c>[N, C, 1, 1]</c> gate. The innermost axis runs through TensorPrimitives, as a span or a scalar.
/// </summary>
public static class BroadcastKernel
{
    /// <summary>The broadcast shape of two shapes of one rank, or an error naming both.</summary>
    /// <exception cref="ShapeException">The ranks differ, or an axis differs and neither size is 1.</exception>
    public static Shape Shape(Shape a, Shape b)
    {
        if (a.Rank != b.Rank) throw new ShapeException($"Broadcast: shapes {a} and {b} differ in rank.");
        var dims = new int[a.Rank];
        for (int i = 0; i < dims.Length; i++)
            dims[i] = a[i] == b[i] || b[i] == 1 ? a[i] : a[i] == 1 ? b[i] : throw new ShapeException($"Broadcast: shapes {a} and {b} differ on axis {i} and neither is 1 there.");
        return new Shape(dims);
    }

    /// <summary><c>a * b</c> element-wise, each broadcast to their common shape.</summary>
    public static Tensor Multiply(Tensor a, Tensor b)
    {
        var shape = Shape(a.Shape, b.Shape);
        if (a.Shape == b.Shape)
        {
            var same = TensorArena.Uninitialized<float>(a.Size);
            TensorPrimitives.Multiply(a.Span, b.Span, same);
            return Tensor.Own(same, shape);
        }
        var y = TensorArena.Uninitialized<float>(shape.Size);
        var sa = Strides(a.Shape, shape);
        var sb = Strides(b.Shape, shape);
        int inner = shape[shape.Rank - 1], last = shape.Rank - 1;
        ForEachRow(shape, (row, index) =>
        {
            var dst = y.AsSpan(row * inner, inner);
            ReadOnlySpan<float> xa = a.Span, xb = b.Span;
            int oa = Offset(index, sa), ob = Offset(index, sb);
            if (sa[last] == 1 && sb[last] == 1) TensorPrimitives.Multiply(xa.Slice(oa, inner), xb.Slice(ob, inner), dst);
            else if (sa[last] == 1) TensorPrimitives.Multiply(xa.Slice(oa, inner), xb[ob], dst);
            else if (sb[last] == 1) TensorPrimitives.Multiply(xb.Slice(ob, inner), xa[oa], dst);
            else dst.Fill(xa[oa] * xb[ob]);
        });
        return Tensor.Own(y, shape);
    }

    /// <summary>
    /// <paramref name="t"/> summed over the axes where <paramref name="target"/> is 1 and <paramref name="t"/> is not: the
    /// gradient of a broadcast operand, from the gradient of the broadcast result.
    /// </summary>
    /// <exception cref="ShapeException">The target does not broadcast to <paramref name="t"/>'s shape.</exception>
    public static Tensor SumTo(Tensor t, Shape target)
    {
        if (Shape(t.Shape, target) != t.Shape) throw new ShapeException($"Broadcast: {target} does not broadcast to {t.Shape}.");
        if (target == t.Shape) return t;
        var y = TensorArena.Zeroed<float>(target.Size);
        var st = Strides(target, t.Shape);
        int inner = t.Shape[t.Shape.Rank - 1], last = t.Shape.Rank - 1;
        ForEachRow(t.Shape, (row, index) =>
        {
            ReadOnlySpan<float> src = t.Span.Slice(row * inner, inner);
            int o = Offset(index, st);
            if (st[last] == 1) TensorPrimitives.Add(y.AsSpan(o, inner), src, y.AsSpan(o, inner));
            else y[o] += TensorPrimitives.Sum(src);
        });
        return Tensor.Own(y, target);
    }

    /// <summary>The strides of <paramref name="operand"/> (row-major) over the axes of <paramref name="result"/>, 0 where it is broadcast.</summary>
    private static int[] Strides(Shape operand, Shape result)
    {
        var strides = new int[result.Rank];
        int stride = 1;
        for (int i = result.Rank - 1; i >= 0; i--)
        {
            strides[i] = operand[i] == result[i] ? stride : 0;
            stride *= operand[i];
        }
        return strides;
    }

    private static int Offset(int[] index, int[] strides)
    {
        int o = 0;
        for (int i = 0; i < index.Length; i++) o += index[i] * strides[i];
        return o;
    }

    /// <summary>Calls <paramref name="body"/> for each row (all axes but the last) of <paramref name="shape"/>, with its index (last axis 0).</summary>
    private static void ForEachRow(Shape shape, Action<int, int[]> body)
    {
        int rank = shape.Rank, rows = shape.Size / Math.Max(1, shape[rank - 1]);
        var index = new int[rank];
        for (int row = 0; row < rows; row++)
        {
            body(row, index);
            for (int axis = rank - 2; axis >= 0; axis--)
            {
                if (++index[axis] < shape[axis]) break;
                index[axis] = 0;
            }
        }
    }
}
