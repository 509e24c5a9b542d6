using System.Runtime.CompilerServices;

namespace Cnn.Core.Kernels;

public static partial class MaxPool2dKernel
{
    /// <summary>
    /// Max pooling bound to one input shape: the output size, the columns whose windows lie inside their rows, the kernel
    /// (2x2 or general) and its parallel body worked out once. The kernel's entry points make one per call; an inference
    /// plan makes one per input shape and then calls it without allocating. One call at a time: a call's tensors are fields,
    /// read by the parallel bodies (delegates made once).
    /// </summary>
    internal sealed class Call
    {
        private readonly Window2d _g;
        private readonly int _h, _w, _oh, _ow, _oxLo, _oxHi, _planes;
        /// <summary>Windows a vector step takes: 16 (zmm), 8 (ymm, AVX2 without AVX-512 or <see cref="KernelWidth.ForceVector256"/>) or 0 (none).</summary>
        private readonly int _lanes;
        private readonly Action<int, int, int> _windows, _pairs;

        // The call in progress.
        private Tensor? _x;
        private float[]? _y;
        private int[]? _arg;

        /// <exception cref="ShapeException">The input is not NCHW, the window does not fit, or padding exceeds half the kernel.</exception>
        public Call(Shape x, Window2d g, bool ceilMode)
        {
            (_oh, _ow) = PoolingSize.Output2d(g, x, ceilMode, "MaxPool2d");
            _g = g;
            (_h, _w, _planes) = (x[2], x[3], x[0] * x[1]);
            OutputShape = new Shape(x[0], x[1], _oh, _ow);
            // Output columns whose windows lie inside the row: there the windows of 16 (or 8) neighbours are taken at once.
            _oxLo = (g.PadW + g.StrideW - 1) / g.StrideW;
            _oxHi = Math.Max(_oxLo, Math.Min(_ow, (_w + g.PadW - g.KernelW) / g.StrideW + 1));
            _lanes = g.StrideW > 2 ? 0 : KernelWidth.Wide ? 16 : KernelWidth.Narrow ? 8 : 0;
            Pairs = Pool2x2<MaxOp>.Covers(g, _h, _w, _oh, _ow);
            _windows = Windows;
            _pairs = PairPlanes;
        }

        /// <summary>The output's shape, <c>[N, C, OH, OW]</c>.</summary>
        public Shape OutputShape { get; }

        /// <summary>Whether the values alone run on the 2x2 kernel (<see cref="Pool2x2{TOp}"/>), which records no winners.</summary>
        public bool Pairs { get; }

        /// <summary>The pooled values into <paramref name="y"/> and each one's winner into <paramref name="arg"/>.</summary>
        public void Run(Tensor x, float[] y, int[] arg)
        {
            (_x, _y, _arg) = (x, y, arg);
            try { BatchParallel.For(_planes, _windows); }
            finally { (_x, _y, _arg) = (null, null, null); }
        }

        /// <summary>
        /// The pooled values alone into <paramref name="y"/>: on the 2x2 kernel when it covers the window, else as
        /// <see cref="Run"/> with <paramref name="winners"/> (the output's size) as scratch.
        /// </summary>
        public void RunValues(Tensor x, float[] y, int[]? winners)
        {
            if (!Pairs)
            {
                Run(x, y, winners ?? throw new ArgumentNullException(nameof(winners), "MaxPool2d: the general kernel needs an array for the winners."));
                return;
            }
            (_x, _y) = (x, y);
            try { BatchParallel.For(_planes, _pairs); }
            finally { (_x, _y) = (null, null); }
        }

        private void PairPlanes(int chunk, int start, int end) => Pool2x2<MaxOp>.Run(_x!, _y!, _h, _w, _oh, _ow, start, end);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Windows(int chunk, int start, int end)
        {
            var xs = _x!.Span;
            var (y, arg, g) = (_y!, _arg!, _g);
            int h = _h, w = _w, oh = _oh, ow = _ow, oxLo = _oxLo, oxHi = _oxHi;
            for (int p = start; p < end; p++)
            {
                int inBase = p * h * w, outBase = p * oh * ow;
                for (int oy = 0; oy < oh; oy++)
                {
                    var (kiLo, kiHi) = WindowPlan.Taps1(oy, h, g.KernelH, g.StrideH, g.PadH, 1);
                    int rowBase = inBase + (oy * g.StrideH - g.PadH) * w;
                    int o = outBase + oy * ow, ox = 0;
                    for (; ox < oxLo; ox++) Window(xs, g, w, rowBase, kiLo, kiHi, ox, out y[o + ox], out arg[o + ox]);
                    // Up to 16 (or 8) windows a step; past the row's last one the lanes read on (inside the input, never stored).
                    int lanes = _lanes;
                    if (lanes > 0)
                        for (int count; ox < oxHi && rowBase + (kiHi - 1) * w + (ox + lanes) * g.StrideW - g.PadW + g.KernelW + lanes <= xs.Length; ox += count)
                        {
                            count = Math.Min(lanes, oxHi - ox);
                            if (lanes == 16) Windows16(xs, g, w, rowBase, kiLo, kiHi, ox, y.AsSpan(o + ox, count), arg.AsSpan(o + ox, count));
                            else Windows8(xs, g, w, rowBase, kiLo, kiHi, ox, y.AsSpan(o + ox, count), arg.AsSpan(o + ox, count));
                        }
                    for (; ox < ow; ox++) Window(xs, g, w, rowBase, kiLo, kiHi, ox, out y[o + ox], out arg[o + ox]);
                }
            }
        }
    }
}
