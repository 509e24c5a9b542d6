using System.Runtime.Intrinsics;
using System.Buffers;
using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>Element-wise activations and their pullbacks.</summary>
public static partial class Activations
{
    /// <summary><c>max(x, 0)</c> element-wise; NaN stays NaN.</summary>
    public static Tensor Relu(Tensor x)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        Elementwise.For(y.Length, (s, e) => FusedActivation.Relu.Apply(x.Span[s..e], y.AsSpan(s..e)));
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>The pullback of ReLU: <c>dy</c> where <c>x &gt; 0</c>, else 0 (PyTorch's choice at 0).</summary>
    public static Tensor ReluBackward(Tensor x, Tensor dy)
    {
        if (x.Shape != dy.Shape) throw new ShapeException($"ReLU backward: gradient {dy.Shape} does not match input {x.Shape}.");
        var dx = TensorArena.Uninitialized<float>(x.Size);
        Elementwise.For(dx.Length, (s, e) => ReluMask(x.Span[s..e], dy.Span[s..e], dx.AsSpan(s..e)));
        return Tensor.Own(dx, x.Shape);
    }

    /// <summary>
    /// <c>dx = x &gt; 0 ? dy : +0</c>: ReLU's pullback, given its input or its output (the two are positive at the same
    /// places). A select on a vector mask: the scalar loop's branch mispredicts on ReLU's random signs and was the largest
    /// single cost of a small network's training step. NaN compares false in both, so the bits are the same. Pointers
    /// rather than span slices: the slices' checks cost more than the select on a step's large activations. dx may be dy.
    /// </summary>
    internal static unsafe void ReluMask(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (dy.Length != x.Length || dx.Length != x.Length) throw new ArgumentException("ReLU backward: the spans differ in length.", nameof(dx));
        fixed (float* px = x, pd = dy, po = dx)
        {
            int i = 0, n = x.Length;
            if (Vector512.IsHardwareAccelerated)
                for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
                    Vector512.Store(Vector512.ConditionalSelect(Vector512.GreaterThan(Vector512.Load(px + i), Vector512<float>.Zero), Vector512.Load(pd + i), Vector512<float>.Zero), po + i);
            else if (Vector256.IsHardwareAccelerated)
                for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                    Vector256.Store(Vector256.ConditionalSelect(Vector256.GreaterThan(Vector256.Load(px + i), Vector256<float>.Zero), Vector256.Load(pd + i), Vector256<float>.Zero), po + i);
            for (; i < n; i++) po[i] = px[i] > 0f ? pd[i] : 0f;
        }
    }

    /// <summary>Softmax along the last axis of a 2-d tensor <c>[N, K]</c>, computed stably (max subtracted).</summary>
    public static Tensor Softmax(Tensor logits)
    {
        if (logits.Shape.Rank != 2) throw new ShapeException($"Softmax: expected [N, K] logits; found {logits.Shape}.");
        int n = logits.Shape[0], k = logits.Shape[1];
        var p = TensorArena.Zeroed<float>(logits.Size);
        for (int i = 0; i < n; i++)
        {
            // TensorPrimitives.SoftMax exponentiates the logits as they are, so logits above ~88 overflow to NaN.
            var row = p.AsSpan(i * k, k);
            var z = logits.Span.Slice(i * k, k);
            TensorPrimitives.Subtract(z, TensorPrimitives.Max(z), row);
            TensorPrimitives.SoftMax(row, row);
        }
        return Tensor.Own(p, logits.Shape);
    }

    /// <summary>Leaky ReLU: <c>x</c> where <c>x &gt; 0</c>, else <c>slope * x</c> (PyTorch's <c>leaky_relu</c>).</summary>
    public static Tensor LeakyRelu(Tensor x, float slope)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        // max(x, slope*x) picks x for x > 0 and slope*x for x < 0 whenever slope <= 1; min does for slope >= 1.
        TensorPrimitives.Multiply(x.Span, slope, y);
        if (slope <= 1f) TensorPrimitives.Max(x.Span, y, y);
        else TensorPrimitives.Min(x.Span, y, y);
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>The pullback of leaky ReLU: <c>dy</c> where <c>x &gt; 0</c>, else <c>slope * dy</c> (also at 0, as PyTorch).</summary>
    public static Tensor LeakyReluBackward(Tensor x, Tensor dy, float slope)
    {
        SameShape("LeakyReLU backward", x, dy);
        var dx = TensorArena.Uninitialized<float>(x.Size);
        var xs = x.Span;
        var ds = dy.Span;
        for (int i = 0; i < dx.Length; i++) dx[i] = xs[i] > 0f ? ds[i] : ds[i] * slope;
        return Tensor.Own(dx, x.Shape);
    }

    /// <summary>ELU: <c>x</c> where <c>x &gt; 0</c>, else <c>alpha * (exp(x) - 1)</c> (PyTorch's <c>elu</c>).</summary>
    public static Tensor Elu(Tensor x, float alpha)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        var t = TensorArena.Uninitialized<float>(x.Size);
        // max(x, 0) + alpha * expm1(min(x, 0)): one branch is always exactly zero, and NaN propagates through both.
        TensorPrimitives.Min(x.Span, 0f, t);
        TensorPrimitives.ExpM1<float>(t, t);
        TensorPrimitives.Max(x.Span, 0f, y);
        TensorPrimitives.MultiplyAdd(t, alpha, y, y);
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>
    /// The pullback of ELU: <c>dy</c> where <c>x &gt; 0</c>, else <c>dy * alpha * exp(x)</c> (PyTorch's choice at 0, where the
    /// slope is <c>alpha</c>).
    /// </summary>
    public static Tensor EluBackward(Tensor x, Tensor dy, float alpha)
    {
        SameShape("ELU backward", x, dy);
        var dx = TensorArena.Uninitialized<float>(x.Size);
        TensorPrimitives.Min(x.Span, 0f, dx);
        TensorPrimitives.Exp(dx, dx);
        TensorPrimitives.Multiply(dx, alpha, dx);
        var xs = x.Span;
        var ds = dy.Span;
        for (int i = 0; i < dx.Length; i++) dx[i] = xs[i] > 0f ? ds[i] : ds[i] * dx[i];
        return Tensor.Own(dx, x.Shape);
    }

    /// <summary>The logistic sigmoid <c>1 / (1 + exp(-x))</c> element-wise.</summary>
    public static Tensor Sigmoid(Tensor x)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        FusedActivation.Sigmoid.Apply(x.Span, y);
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>The pullback of the sigmoid from its output <paramref name="y"/>: <c>dy * y * (1 - y)</c>.</summary>
    public static Tensor SigmoidBackward(Tensor y, Tensor dy)
    {
        SameShape("Sigmoid backward", y, dy);
        var dx = TensorArena.Uninitialized<float>(y.Size);
        TensorPrimitives.Subtract(1f, y.Span, dx);
        TensorPrimitives.Multiply(dx, y.Span, dx);
        TensorPrimitives.Multiply(dx, dy.Span, dx);
        return Tensor.Own(dx, y.Shape);
    }

    /// <summary>The hyperbolic tangent element-wise.</summary>
    public static Tensor Tanh(Tensor x)
    {
        var y = TensorArena.Uninitialized<float>(x.Size);
        FusedActivation.Tanh.Apply(x.Span, y);
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>The pullback of tanh from its output <paramref name="y"/>: <c>dy * (1 - y^2)</c>.</summary>
    public static Tensor TanhBackward(Tensor y, Tensor dy)
    {
        SameShape("Tanh backward", y, dy);
        var dx = TensorArena.Uninitialized<float>(y.Size);
        TensorPrimitives.Multiply(y.Span, y.Span, dx);
        TensorPrimitives.Subtract(1f, dx, dx);
        TensorPrimitives.Multiply(dx, dy.Span, dx);
        return Tensor.Own(dx, y.Shape);
    }

    /// <summary>
    /// Softmax along <paramref name="axis"/> of a tensor of any rank (negative axes count from the end), computed stably:
    /// the maximum along the axis is subtracted before exponentiating.
    /// </summary>
    /// <exception cref="ShapeException">The axis is outside the tensor's rank.</exception>
    public static Tensor Softmax(Tensor x, int axis) => AlongAxis(x, axis, "Softmax", log: false);

    /// <summary>The pullback of softmax from its output <paramref name="y"/>: <c>y * (dy - sum_axis(dy * y))</c>.</summary>
    public static Tensor SoftmaxBackward(Tensor y, Tensor dy, int axis) => AlongAxisBackward(y, dy, axis, "Softmax backward", log: false);

    /// <summary>
    /// Log-softmax along <paramref name="axis"/> of a tensor of any rank: <c>x - max - log(sum(exp(x - max)))</c>, finite
    /// wherever the input is, even where softmax underflows to 0.
    /// </summary>
    /// <exception cref="ShapeException">The axis is outside the tensor's rank.</exception>
    public static Tensor LogSoftmax(Tensor x, int axis) => AlongAxis(x, axis, "LogSoftmax", log: true);

    /// <summary>The pullback of log-softmax from its output <paramref name="y"/>: <c>dy - exp(y) * sum_axis(dy)</c>.</summary>
    public static Tensor LogSoftmaxBackward(Tensor y, Tensor dy, int axis) => AlongAxisBackward(y, dy, axis, "LogSoftmax backward", log: true);

    // A tensor viewed as [outer, length, inner] around an axis (negative axes count from the end).
    internal static (int Outer, int Length, int Inner) AxisLayout(Shape shape, int axis, string op)
    {
        int rank = shape.Rank;
        if (axis < -rank || axis >= rank)
            throw new ShapeException($"{op}: expected an axis in [{-rank}, {rank - 1}] for a tensor of shape {shape}; found {axis}.");
        int a = axis < 0 ? axis + rank : axis;
        int outer = 1, inner = 1;
        for (int i = 0; i < a; i++) outer *= shape[i];
        for (int i = a + 1; i < rank; i++) inner *= shape[i];
        return (outer, shape[a], inner);
    }

    private static Tensor AlongAxis(Tensor x, int axis, string op, bool log)
    {
        var (outer, len, inner) = AxisLayout(x.Shape, axis, op);
        var y = TensorArena.Zeroed<float>(x.Size);
        if (len == 0) return Tensor.Own(y, x.Shape);
        int block = len * inner;
        ForRows(outer, x.Size, (start, end) =>
        {
            var xs = x.Span;
            float[] tmp = ArrayPool<float>.Shared.Rent(inner == 1 ? len : 3 * inner);
            try
            {
                for (int o = start; o < end; o++)
                {
                    var xb = xs.Slice(o * block, block);
                    var yb = y.AsSpan(o * block, block);
                    if (inner == 1) Row(xb, yb, tmp.AsSpan(0, len), log);
                    else Columns(xb, yb, len, inner, tmp.AsSpan(0, 3 * inner), log);
                }
            }
            finally { ArrayPool<float>.Shared.Return(tmp); }
        });
        return Tensor.Own(y, x.Shape);
    }

    // A contiguous row: nothing after the axis.
    private static void Row(ReadOnlySpan<float> z, Span<float> y, Span<float> scratch, bool log)
    {
        TensorPrimitives.Subtract(z, TensorPrimitives.Max(z), y);
        TensorPrimitives.Exp(y, scratch);
        float sum = TensorPrimitives.Sum(scratch);
        if (log) TensorPrimitives.Subtract(y, MathF.Log(sum), y);
        else TensorPrimitives.Divide(scratch, sum, y);
    }

    // The axis has stride `inner`: row r of the block is position r along the axis, and the maths is vectorised across the
    // `inner` columns.
    private static void Columns(ReadOnlySpan<float> xb, Span<float> yb, int len, int inner, Span<float> tmp, bool log)
    {
        var max = tmp[..inner];
        var sum = tmp.Slice(inner, inner);
        var scratch = tmp.Slice(2 * inner, inner);
        xb[..inner].CopyTo(max);
        for (int r = 1; r < len; r++) TensorPrimitives.Max(max, xb.Slice(r * inner, inner), max);
        sum.Clear();
        for (int r = 0; r < len; r++)
        {
            var yr = yb.Slice(r * inner, inner);
            TensorPrimitives.Subtract(xb.Slice(r * inner, inner), max, yr);
            TensorPrimitives.Exp(yr, scratch);
            TensorPrimitives.Add(sum, scratch, sum);
            if (!log) scratch.CopyTo(yr);
        }
        if (log) TensorPrimitives.Log(sum, sum);
        for (int r = 0; r < len; r++)
        {
            var yr = yb.Slice(r * inner, inner);
            if (log) TensorPrimitives.Subtract(yr, sum, yr);
            else TensorPrimitives.Divide(yr, sum, yr);
        }
    }

    private static Tensor AlongAxisBackward(Tensor y, Tensor dy, int axis, string op, bool log)
    {
        SameShape(op, y, dy);
        var (outer, len, inner) = AxisLayout(y.Shape, axis, op);
        var dx = TensorArena.Zeroed<float>(y.Size);
        if (len == 0) return Tensor.Own(dx, y.Shape);
        int block = len * inner;
        ForRows(outer, y.Size, (start, end) =>
        {
            float[] sum = ArrayPool<float>.Shared.Rent(inner);
            try
            {
                for (int o = start; o < end; o++)
                {
                    var yb = y.Span.Slice(o * block, block);
                    var db = dy.Span.Slice(o * block, block);
                    var xb = dx.AsSpan(o * block, block);
                    var s = sum.AsSpan(0, inner);
                    // s = sum over the axis of dy*y (softmax) or of dy (log-softmax).
                    s.Clear();
                    for (int r = 0; r < len; r++)
                    {
                        var dr = db.Slice(r * inner, inner);
                        if (log) TensorPrimitives.Add(s, dr, s);
                        else TensorPrimitives.MultiplyAdd(dr, yb.Slice(r * inner, inner), s, s);
                    }
                    for (int r = 0; r < len; r++)
                    {
                        var yr = yb.Slice(r * inner, inner);
                        var dr = db.Slice(r * inner, inner);
                        var xr = xb.Slice(r * inner, inner);
                        if (log)
                        {
                            TensorPrimitives.Exp(yr, xr);
                            TensorPrimitives.Multiply(xr, s, xr);
                            TensorPrimitives.Subtract(dr, xr, xr);
                        }
                        else
                        {
                            TensorPrimitives.Subtract(dr, s, xr);
                            TensorPrimitives.Multiply(xr, yr, xr);
                        }
                    }
                }
            }
            finally { ArrayPool<float>.Shared.Return(sum); }
        });
        return Tensor.Own(dx, y.Shape);
    }

    // Rows are independent, so the split never changes a result; small tensors stay on the calling thread because
    // scheduling costs more than the work.
    private static void ForRows(int rows, int elements, Action<int, int> body)
    {
        if (elements < 1 << 15) body(0, rows);
        else BatchParallel.For(rows, (_, start, end) => body(start, end));
    }

    private static void SameShape(string op, Tensor a, Tensor dy)
    {
        if (a.Shape != dy.Shape) throw new ShapeException($"{op}: expected an upstream gradient of shape {a.Shape}; found {dy.Shape}.");
    }
}
