using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// Element-wise arithmetic of tensors of one rank that broadcast against each other (each axis the same size or 1, as
/// NumPy, PyTorch and ONNX's Add, Sub, Mul and Div), and its pullback's reduction: squeeze-and-excitation multiplies
/// <c>[N, C, H, W]</c> by a <c>[N, C, 1, 1]</c> gate, a constant operand combines <c>[N, ...]</c> with a <c>[1, ...]</c> tensor.
/// The innermost axis runs through TensorPrimitives, as a span or a scalar.
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
    public static Tensor Multiply(Tensor a, Tensor b) => Combine(BinaryOp.Multiply, a, b);

    /// <summary><c>a op b</c> element-wise, each broadcast to their common shape; one IEEE operation per element, as LibTorch's.</summary>
    /// <exception cref="ShapeException">The shapes do not broadcast.</exception>
    public static Tensor Combine(BinaryOp op, Tensor a, Tensor b)
    {
        var plan = new Plan(a.Shape, b.Shape);
        var y = TensorArena.Uninitialized<float>(plan.OutputShape.Size);
        plan.Run(op, a.Span, b.Span, y);
        return Tensor.Own(y, plan.OutputShape);
    }

    /// <summary>
    /// <see cref="Combine"/> bound to two operand shapes: the broadcast shape and each operand's strides worked out once
    /// (an inference plan makes one per input shape and then calls it without allocating). One call at a time.
    /// </summary>
    internal sealed class Plan
    {
        private readonly int[]? _sa, _sb, _index;

        /// <exception cref="ShapeException">The shapes do not broadcast.</exception>
        public Plan(Shape a, Shape b)
        {
            OutputShape = Shape(a, b);
            if (a == b) return;
            _sa = Strides(a, OutputShape);
            _sb = Strides(b, OutputShape);
            _index = new int[OutputShape.Rank];
        }

        /// <summary>The broadcast shape.</summary>
        public Shape OutputShape { get; }

        /// <summary><c>y = a op b</c> over <see cref="OutputShape"/>.</summary>
        public void Run(BinaryOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
        {
            if (_index is null)
            {
                Spans(op, a, b, y);
                return;
            }
            var (sa, sb, index, shape) = (_sa!, _sb!, _index, OutputShape);
            int last = shape.Rank - 1, inner = shape[last], rows = shape.Size / Math.Max(1, inner);
            Array.Clear(index);
            for (int row = 0; row < rows; row++, NextRow(index, shape))
            {
                var dst = y.Slice(row * inner, inner);
                int oa = Offset(index, sa), ob = Offset(index, sb);
                if (sa[last] == 1 && sb[last] == 1) Spans(op, a.Slice(oa, inner), b.Slice(ob, inner), dst);
                else if (sa[last] == 1) SpanScalar(op, a.Slice(oa, inner), b[ob], dst);
                else if (sb[last] == 1) ScalarSpan(op, a[oa], b.Slice(ob, inner), dst);
                else dst.Fill(op switch { BinaryOp.Add => a[oa] + b[ob], BinaryOp.Subtract => a[oa] - b[ob], BinaryOp.Multiply => a[oa] * b[ob], _ => a[oa] / b[ob] });
            }
        }
    }

    /// <summary>
    /// The pullback of <see cref="Combine"/> for both operands: the gradient of each, summed over the axes where it was broadcast.
    /// Each element's term is LibTorch's formula (<c>dy / b</c> and <c>-dy * ((a / b) / b)</c> for a division).
    /// </summary>
    public static (Tensor A, Tensor B) CombineBackward(BinaryOp op, Tensor a, Tensor b, Tensor dy) => op switch
    {
        BinaryOp.Add => (SumTo(dy, a.Shape), SumTo(dy, b.Shape)),
        BinaryOp.Subtract => (SumTo(dy, a.Shape), Negate(SumTo(dy, b.Shape))),
        BinaryOp.Multiply => (SumTo(Multiply(dy, b), a.Shape), SumTo(Multiply(dy, a), b.Shape)),
        BinaryOp.Divide => (SumTo(Combine(BinaryOp.Divide, dy, b), a.Shape),
            Negate(SumTo(Multiply(dy, Combine(BinaryOp.Divide, Combine(BinaryOp.Divide, a, b), b)), b.Shape))),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "not an element-wise operation"),
    };

    private static Tensor Negate(Tensor t)
    {
        var y = TensorArena.Uninitialized<float>(t.Size);
        TensorPrimitives.Negate(t.Span, y);
        return Tensor.Own(y, t.Shape);
    }

    private static void Spans(BinaryOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(a, b, y); break;
            case BinaryOp.Subtract: TensorPrimitives.Subtract(a, b, y); break;
            case BinaryOp.Multiply: TensorPrimitives.Multiply(a, b, y); break;
            default: TensorPrimitives.Divide(a, b, y); break;
        }
    }

    private static void SpanScalar(BinaryOp op, ReadOnlySpan<float> a, float b, Span<float> y)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(a, b, y); break;
            case BinaryOp.Subtract: TensorPrimitives.Subtract(a, b, y); break;
            case BinaryOp.Multiply: TensorPrimitives.Multiply(a, b, y); break;
            default: TensorPrimitives.Divide(a, b, y); break;
        }
    }

    private static void ScalarSpan(BinaryOp op, float a, ReadOnlySpan<float> b, Span<float> y)
    {
        switch (op)
        {
            // Addition and multiplication commute exactly in IEEE arithmetic.
            case BinaryOp.Add: TensorPrimitives.Add(b, a, y); break;
            case BinaryOp.Subtract: TensorPrimitives.Subtract(a, b, y); break;
            case BinaryOp.Multiply: TensorPrimitives.Multiply(b, a, y); break;
            default: TensorPrimitives.Divide(a, b, y); break;
        }
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
        for (int row = 0; row < rows; row++, NextRow(index, shape)) body(row, index);
    }

    /// <summary>Advances a row's index (all axes but the last) to the next row of <paramref name="shape"/> in row-major order.</summary>
    private static void NextRow(int[] index, Shape shape)
    {
        for (int axis = shape.Rank - 2; axis >= 0; axis--)
        {
            if (++index[axis] < shape[axis]) break;
            index[axis] = 0;
        }
    }
}
