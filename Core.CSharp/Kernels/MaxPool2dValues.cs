using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Cnn.Core.Kernels;

public static partial class MaxPool2dKernel
{
    /// <summary>
    /// The pooled values alone, for inference: <see cref="Forward(Tensor, Window2d, bool)"/>'s output bit for bit (the same
    /// winners by the same comparisons, NaN and signed zeros included) without the winners' indices, which only a backward
    /// pass reads. The 2x2 stride-2 unpadded window runs on <see cref="Pool2x2{TOp}"/>, which writes no index array (measured
    /// on one thread, thread CPU time on a loaded 2-core Xeon: 2.0-4.4x faster than <see cref="Forward(Tensor, Window2d, bool)"/>
    /// on N64 C30 24x24, C32 30x30, C64 13x13 and C6 28x28); other windows run <see cref="Forward(Tensor, Window2d, bool)"/>'s
    /// kernel, whose winners are scratch here.
    /// </summary>
    /// <exception cref="ShapeException">The input is not NCHW, the window does not fit, or padding exceeds half the kernel.</exception>
    public static Tensor ForwardValues(Tensor x, Window2d g, bool ceilMode)
    {
        ArgumentNullException.ThrowIfNull(x);
        var call = new Call(x.Shape, g, ceilMode);
        var y = TensorArena.Uninitialized<float>(call.OutputShape.Size);
        call.RunValues(x, y, call.Pairs ? null : TensorArena.Uninitialized<int>(y.Length));
        return Tensor.Own(y, call.OutputShape);
    }

    /// <summary><see cref="Window"/>'s rule over a 2x2 window in row-major order: a later element wins if greater, or NaN over a number.</summary>
    internal readonly struct MaxOp : Pool2x2<MaxOp>.IOp
    {
        public static Vector512<float> Reduce(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d) =>
            Later(Later(Later(a, b), c), d);

        public static Vector256<float> Reduce(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d) =>
            Later(Later(Later(a, b), c), d);

        public static float Reduce(float a, float b, float c, float d) => Later(Later(Later(a, b), c), d);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static Vector512<float> Later(Vector512<float> best, Vector512<float> v) =>
            Vector512.ConditionalSelect(Vector512.GreaterThan(v, best) | Vector512.AndNot(Vector512.Equals(best, best), Vector512.Equals(v, v)), v, best);

        /// <summary><see cref="Later(Vector512{float}, Vector512{float})"/> on ymm.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static Vector256<float> Later(Vector256<float> best, Vector256<float> v) =>
            Vector256.ConditionalSelect(Vector256.GreaterThan(v, best) | Vector256.AndNot(Vector256.Equals(best, best), Vector256.Equals(v, v)), v, best);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float Later(float best, float v) => v > best || (float.IsNaN(v) && !float.IsNaN(best)) ? v : best;
    }
}
