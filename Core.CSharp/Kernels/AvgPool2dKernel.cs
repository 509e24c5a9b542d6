using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// 2-d average pooling over NCHW batches with PyTorch's divisor rules. A window covers
/// <c>[start, min(start + kernel, size + pad))</c> on each axis, <c>start = o * stride - pad</c>: clipped to the padded input,
/// which only matters with ceil mode, where the last window may overhang it. The divisor is that clipped window's area
/// with <c>countIncludePad</c> (padding counts, the overhang beyond the padding does not), or the number of real input
/// elements in the window without it. The 2x2 stride-2 unpadded window runs on <see cref="Pool2x2{TOp}"/> with the same
/// arithmetic (the same bits): measured on one thread (thread CPU time, loaded 2-core Xeon) 3.7x faster than the general loop on
/// LeNet-5's first pooling (N64 C6 28x28), 3-7x on N64 C30 24x24, C32 30x30 and C64 13x13. The overloads with
/// <c>padBottom</c> and <c>padRight</c> take ONNX's padding, which may differ between the ends of an axis or exceed half
/// the window (SAME, explicit pads): there the window ends at <c>min(start + kernel, size + padEnd)</c>.
/// </summary>
public static partial class AvgPool2dKernel
{
    /// <summary>Averages each window of <paramref name="x"/>.</summary>
    /// <exception cref="ShapeException">The input is not NCHW, the window does not fit, or padding exceeds half the kernel.</exception>
    public static Tensor Forward(Tensor x, Window2d g, bool ceilMode, bool countIncludePad) => Forward(x, g, ceilMode, countIncludePad, pairs: true);

    /// <summary>
    /// Averages each window of <paramref name="x"/> padded by <c>g.PadH</c> rows on top, <paramref name="padBottom"/> below,
    /// <c>g.PadW</c> columns on the left and <paramref name="padRight"/> on the right, in floor mode; each padding must be
    /// below the window, so that every window holds an input element.
    /// </summary>
    /// <exception cref="ShapeException">The input is not NCHW, the window does not fit, or a padding is negative or not below the window.</exception>
    public static Tensor Forward(Tensor x, Window2d g, int padBottom, int padRight, bool countIncludePad) =>
        Forward(x, g, (padBottom, padRight), false, countIncludePad, pairs: true);

    /// <summary><see cref="Forward(Tensor, Window2d, bool, bool)"/>, on the general loop alone unless <paramref name="pairs"/> (to test the 2x2 kernel against it).</summary>
    internal static Tensor Forward(Tensor x, Window2d g, bool ceilMode, bool countIncludePad, bool pairs) =>
        Forward(x, g, null, ceilMode, countIncludePad, pairs);

    /// <summary>The forward pass with <paramref name="bottomRight"/> padding, or PyTorch's symmetric padding and limits where null.</summary>
    private static Tensor Forward(Tensor x, Window2d g, (int H, int W)? bottomRight, bool ceilMode, bool countIncludePad, bool pairs)
    {
        ArgumentNullException.ThrowIfNull(x);
        var call = new Call(x.Shape, g, bottomRight, ceilMode, countIncludePad, pairs);
        var y = TensorArena.Uninitialized<float>(call.OutputShape.Size);
        call.Run(x, y);
        return Tensor.Own(y, call.OutputShape);
    }

    /// <summary>
    /// Average pooling bound to one input shape: the output size, the kernel (2x2 or general), each window's extent and
    /// divisor, and the parallel body worked out once. <see cref="Forward(Tensor, Window2d, bool, bool)"/> makes one per
    /// call; an inference plan makes one per input shape and then calls it without allocating. One call at a time: a call's
    /// tensors are fields, read by the parallel body (a delegate made once).
    /// </summary>
    internal sealed class Call
    {
        private readonly int _h, _w, _oh, _ow, _planes;
        private readonly Extents? _rows, _cols;
        private readonly Action<int, int, int> _body;

        // The call in progress.
        private Tensor? _x;
        private float[]? _y;

        /// <exception cref="ShapeException">The input is not NCHW, the window does not fit, or padding exceeds half the kernel.</exception>
        /// <param name="x">The input's shape, NCHW.</param>
        /// <param name="g">The window (its padding the top and left one).</param>
        /// <param name="bottomRight">ONNX's bottom and right padding (floor mode), or null for PyTorch's symmetric padding and limits.</param>
        /// <param name="ceilMode">PyTorch's ceil mode.</param>
        /// <param name="countIncludePad">Whether the padding counts in the divisor.</param>
        /// <param name="pairs">Whether the 2x2 stride-2 kernel may run (false to test it against the general loop).</param>
        public Call(Shape x, Window2d g, (int H, int W)? bottomRight, bool ceilMode, bool countIncludePad, bool pairs = true)
        {
            var ends = bottomRight ?? (g.PadH, g.PadW);
            (_oh, _ow) = bottomRight is null ? PoolingSize.Output2d(g, x, ceilMode, "AvgPool2d") : PoolingSize.Output2d(g, ends, x, ceilMode, "AvgPool2d");
            (_h, _w, _planes) = (x[2], x[3], x[0] * x[1]);
            OutputShape = new Shape(x[0], x[1], _oh, _ow);
            if (pairs && ends == (g.PadH, g.PadW) && Pool2x2<MeanOp>.Covers(g, _h, _w, _oh, _ow))
            {
                _body = PairPlanes;
                return;
            }
            _rows = Extents.Of(_oh, g.StrideH, g.PadH, ends.H, g.KernelH, _h, countIncludePad);
            _cols = Extents.Of(_ow, g.StrideW, g.PadW, ends.W, g.KernelW, _w, countIncludePad);
            _body = Windows;
        }

        /// <summary>The output's shape, <c>[N, C, OH, OW]</c>.</summary>
        public Shape OutputShape { get; }

        /// <summary>The averages of <paramref name="x"/>'s windows into <paramref name="y"/> (every element written).</summary>
        public void Run(Tensor x, float[] y)
        {
            (_x, _y) = (x, y);
            try { BatchParallel.For(_planes, _body); }
            finally { (_x, _y) = (null, null); }
        }

        private void PairPlanes(int chunk, int start, int end) => Pool2x2<MeanOp>.Run(_x!, _y!, _h, _w, _oh, _ow, start, end);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Windows(int chunk, int start, int end)
        {
            var xs = _x!.Span;
            var (y, rows, cols) = (_y!, _rows!, _cols!);
            int h = _h, w = _w, oh = _oh, ow = _ow;
            for (int p = start; p < end; p++)
            {
                var plane = xs.Slice(p * h * w, h * w);
                var outRow = y.AsSpan(p * oh * ow, oh * ow);
                for (int oy = 0; oy < oh; oy++)
                {
                    int y0 = rows.Lo[oy], y1 = rows.Hi[oy], dh = rows.Divisor[oy];
                    for (int ox = 0; ox < ow; ox++)
                    {
                        int x0 = cols.Lo[ox], len = cols.Hi[ox] - x0;
                        float sum = 0f;
                        for (int iy = y0; iy < y1; iy++) sum += RowSum(plane.Slice(iy * w + x0, len));
                        outRow[oy * ow + ox] = sum / (dh * cols.Divisor[ox]);
                    }
                }
            }
        }
    }

    /// <summary>Spreads each upstream gradient evenly, divided by its window's divisor, over the input elements the window covers.</summary>
    /// <exception cref="ShapeException">The input shape or window does not fit, or <paramref name="dy"/> is not the forward output's shape.</exception>
    public static Tensor Backward(Tensor dy, Shape inputShape, Window2d g, bool ceilMode, bool countIncludePad) =>
        Backward(dy, inputShape, g, ceilMode, countIncludePad, pairs: true);

    /// <summary>The backward pass of <see cref="Forward(Tensor, Window2d, int, int, bool)"/>: padding that may differ between the ends of an axis.</summary>
    /// <exception cref="ShapeException">The input shape or window does not fit, or <paramref name="dy"/> is not the forward output's shape.</exception>
    public static Tensor Backward(Tensor dy, Shape inputShape, Window2d g, int padBottom, int padRight, bool countIncludePad) =>
        Backward(dy, inputShape, g, (padBottom, padRight), false, countIncludePad, pairs: true);

    /// <summary><see cref="Backward(Tensor, Shape, Window2d, bool, bool)"/>, on the general loop alone unless <paramref name="pairs"/> (to test the 2x2 spread against it).</summary>
    internal static Tensor Backward(Tensor dy, Shape inputShape, Window2d g, bool ceilMode, bool countIncludePad, bool pairs) =>
        Backward(dy, inputShape, g, null, ceilMode, countIncludePad, pairs);

    private static Tensor Backward(Tensor dy, Shape inputShape, Window2d g, (int H, int W)? bottomRight, bool ceilMode, bool countIncludePad, bool pairs)
    {
        var ends = bottomRight ?? (g.PadH, g.PadW);
        var (oh, ow) = bottomRight is null
            ? PoolingSize.Output2d(g, inputShape, ceilMode, "AvgPool2d backward")
            : PoolingSize.Output2d(g, ends, inputShape, ceilMode, "AvgPool2d backward");
        int n = inputShape[0], c = inputShape[1], h = inputShape[2], w = inputShape[3];
        var expected = new Shape(n, c, oh, ow);
        if (dy.Shape != expected)
            throw new ShapeException($"AvgPool2d backward: expected an upstream gradient of shape {expected} for input {inputShape}; found {dy.Shape}.");
        var dx = TensorArena.Uninitialized<float>(inputShape.Size);
        if (pairs && ends == (g.PadH, g.PadW) && Pool2x2<MeanOp>.Covers(g, h, w, oh, ow))
        {
            bool wide = KernelWidth.Wide;
            BatchParallel.For(n * c, (_, start, end) => Spread2x2(dy, dx, h, w, oh, ow, start, end, wide));
            return Tensor.Own(dx, inputShape);
        }
        var rows = Extents.Of(oh, g.StrideH, g.PadH, ends.H, g.KernelH, h, countIncludePad);
        var cols = Extents.Of(ow, g.StrideW, g.PadW, ends.W, g.KernelW, w, countIncludePad);
        BatchParallel.For(n * c, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (_, start, end) =>
        {
            var ds = dy.Span;
            for (int p = start; p < end; p++)
            {
                // Cleared here, while the plane is in the cache, rather than the whole gradient in a pass of its own.
                var plane = dx.AsSpan(p * h * w, h * w);
                plane.Clear();
                var grads = ds.Slice(p * oh * ow, oh * ow);
                for (int oy = 0; oy < oh; oy++)
                {
                    int y0 = rows.Lo[oy], y1 = rows.Hi[oy], dh = rows.Divisor[oy];
                    for (int ox = 0; ox < ow; ox++)
                    {
                        int x0 = cols.Lo[ox], len = cols.Hi[ox] - x0;
                        float share = grads[oy * ow + ox] / (dh * cols.Divisor[ox]);
                        for (int iy = y0; iy < y1; iy++)
                        {
                            var row = plane.Slice(iy * w + x0, len);
                            if (len < Vector<float>.Count)
                                for (int i = 0; i < row.Length; i++) row[i] += share;
                            else TensorPrimitives.Add(row, share, row);
                        }
                    }
                }
            }
        });
        return Tensor.Own(dx, inputShape);
    }

    /// <summary>
    /// The 2x2 stride-2 unpadded backward pass: every input element in a window gets <c>0 + dy / 4</c> (the general loop's
    /// clear-then-add, so -0 becomes +0 as there), each share duplicated into its two columns and stored to both rows, a row
    /// of windows at a time on zmm (<see cref="SpreadRow512"/>) or, with AVX2 alone, ymm (<see cref="SpreadRow256"/>);
    /// elements no window covers (an odd last row or column) are 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Spread2x2(Tensor dy, float[] dx, int h, int w, int oh, int ow, int start, int end, bool wide)
    {
        fixed (float* pdy = dy.Span, pdx = dx)
            for (int p = start; p < end; p++)
            {
                float* grads = pdy + (nint)p * oh * ow, plane = pdx + (nint)p * h * w;
                if (2 * oh < h || 2 * ow < w) new Span<float>(plane, h * w).Clear();
                for (int oy = 0; oy < oh; oy++)
                {
                    float* g = grads + oy * ow, r0 = plane + 2 * oy * w;
                    if (wide) SpreadRow512(g, r0, r0 + w, ow);
                    else SpreadRow256(g, r0, r0 + w, ow);
                }
            }
    }

    /// <summary>
    /// <paramref name="ow"/> shares from <paramref name="g"/> into rows <paramref name="r0"/> and <paramref name="r1"/>,
    /// sixteen windows a step, a row's last windows under lane masks. Measured (perf, one thread, Intel Xeon): the general
    /// loop was 11 % of LeNet-5's training step; with the last windows of each row one by one (all of LeNet-5's, whose rows
    /// are 14 and 5 windows wide) this was still 4 %.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void SpreadRow512(float* g, float* r0, float* r1, int ow)
    {
        var lowPairs = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        var highPairs = lowPairs + Vector512.Create(8);
        var four = Vector512.Create(4f);
        int ox = 0;
        for (; ox + 16 <= ow; ox += 16)
        {
            var share = Vector512<float>.Zero + Vector512.Load(g + ox) / four;
            var lo = Vector512.Shuffle(share, lowPairs);
            var hi = Vector512.Shuffle(share, highPairs);
            Vector512.Store(lo, r0 + 2 * ox);
            Vector512.Store(hi, r0 + 2 * ox + 16);
            Vector512.Store(lo, r1 + 2 * ox);
            Vector512.Store(hi, r1 + 2 * ox + 16);
        }
        if (ox < ow)
        {
            // The last (or, in LeNet-5's 14- and 5-wide planes, only) windows of the row: the same under lane masks.
            int rem = ow - ox, floats = 2 * rem;
            var share = Vector512<float>.Zero + Avx512F.MaskLoad(g + ox, ImToCol.Lanes(rem), Vector512<float>.Zero) / four;
            var lo = Vector512.Shuffle(share, lowPairs);
            var loLanes = ImToCol.Lanes(Math.Min(16, floats));
            Avx512F.MaskStore(r0 + 2 * ox, loLanes, lo);
            Avx512F.MaskStore(r1 + 2 * ox, loLanes, lo);
            if (floats > 16)
            {
                var hi = Vector512.Shuffle(share, highPairs);
                var hiLanes = ImToCol.Lanes(floats - 16);
                Avx512F.MaskStore(r0 + 2 * ox + 16, hiLanes, hi);
                Avx512F.MaskStore(r1 + 2 * ox + 16, hiLanes, hi);
            }
        }
    }

    /// <summary>
    /// The general loop's arithmetic for a 2x2 window, lane by lane: each row summed from 0 (<see cref="RowSum"/>), the rows
    /// added to a sum from 0, divided by the area; the zeros matter to the bits (0 + -0 is +0).
    /// </summary>
    private readonly struct MeanOp : Pool2x2<MeanOp>.IOp
    {
        public static Vector512<float> Reduce(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
        {
            var zero = Vector512<float>.Zero;
            return (zero + (zero + a + b) + (zero + c + d)) / Vector512.Create(4f);
        }

        public static Vector256<float> Reduce(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d)
        {
            var zero = Vector256<float>.Zero;
            return (zero + (zero + a + b) + (zero + c + d)) / Vector256.Create(4f);
        }

        public static float Reduce(float a, float b, float c, float d) => (0f + (0f + a + b) + (0f + c + d)) / 4;
    }

    /// <summary>
    /// The sum of one window row: left to right when it is shorter than a vector (a few elements, where a library call costs
    /// more than the sum; measured 2-3x faster on LeNet-5's 2x2 pooling), else TensorPrimitives.Sum.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowSum(ReadOnlySpan<float> row)
    {
        if (row.Length >= Vector<float>.Count) return TensorPrimitives.Sum(row);
        float s = 0f;
        for (int i = 0; i < row.Length; i++) s += row[i];
        return s;
    }

    /// <summary>
    /// The input range <c>[Lo, Hi)</c> each window covers on one axis and its share of the divisor, computed once per call:
    /// working them out per output element cost more than LeNet-5's 2x2 sums themselves.
    /// </summary>
    private sealed record Extents(int[] Lo, int[] Hi, int[] Divisor)
    {
        public static Extents Of(int outputs, int stride, int padBegin, int padEnd, int kernel, int size, bool countIncludePad)
        {
            var e = new Extents(new int[outputs], new int[outputs], new int[outputs]);
            for (int o = 0; o < outputs; o++)
            {
                int start = o * stride - padBegin;
                int end = Math.Min(start + kernel, size + padEnd);
                e.Lo[o] = Math.Max(start, 0);
                e.Hi[o] = Math.Min(end, size);
                e.Divisor[o] = countIncludePad ? end - start : e.Hi[o] - e.Lo[o];
            }
            return e;
        }
    }
}
