using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// The per-channel sums of batch normalisation, in double, in one pass over each plane and without staging: every float is
/// widened in registers and added to one of eight double lanes (element j of each run of eight to lane j, a plane's tail
/// to the first lanes), the lanes kept across the planes of a channel and added pairwise at the end. That order is fixed,
/// so the AVX-512 path, the AVX path (two vectors of four doubles) and the scalar one give the same bits. It replaced converting each plane into a double buffer and
/// summing the buffer with one library call per pass per plane, which on the 7x7 planes of a small network cost more in
/// call overhead than in arithmetic: batch normalisation took a fifth of fashion-resnet's training step.
/// </summary>
internal static unsafe class BatchNormSums
{
    private static bool Wide => Avx512F.IsSupported && !ForceScalar && !ForceVector256 && !KernelWidth.ForceVector256;

    /// <summary>
    /// Whether the AVX path runs: on CPUs without AVX-512, where the scalar loops took 2.4 % of the bench's training
    /// section under perf (one Zen 3 thread, LibTorch's side of the bench included), as much as the direct dx kernel.
    /// </summary>
    private static bool Narrow => Avx.IsSupported && !ForceScalar;

    /// <summary>Takes the scalar path on an AVX-512 machine, so tests can check that both give the same bits.</summary>
    internal static bool ForceScalar { get; set; }

    /// <summary>
    /// Takes the AVX path on an AVX-512 machine, so tests can check that it gives the same bits. This kernel's own switch
    /// beside <see cref="KernelWidth.ForceVector256"/> (which it follows too): its test class runs in parallel with others,
    /// and the global switch would move kernels whose bits follow the width (the direct weight gradient).
    /// </summary>
    internal static bool ForceVector256 { get; set; }

    /// <summary>Eight double lanes, added pairwise into one sum.</summary>
    [InlineArray(8)]
    public struct Lanes
    {
        private double _e0;

        public readonly double Total() => ((this[0] + this[1]) + (this[2] + this[3])) + ((this[4] + this[5]) + (this[6] + this[7]));
    }

    /// <summary>Adds the plane's values to <paramref name="sum"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Sum(ReadOnlySpan<float> x, ref Lanes sum)
    {
        fixed (float* p = x)
        {
            int n = x.Length, i = 0;
            if (Wide)
            {
                var s = Vector512.LoadUnsafe(ref sum[0]);
                for (; i + 8 <= n; i += 8) s += Avx512F.ConvertToVector512Double(Avx.LoadVector256(p + i));
                Vector512.StoreUnsafe(s, ref sum[0]);
            }
            else if (Narrow)
            {
                var lo = Vector256.LoadUnsafe(ref sum[0]);
                var hi = Vector256.LoadUnsafe(ref sum[4]);
                for (; i + 8 <= n; i += 8)
                {
                    lo += Avx.ConvertToVector256Double(Sse.LoadVector128(p + i));
                    hi += Avx.ConvertToVector256Double(Sse.LoadVector128(p + i + 4));
                }
                Vector256.StoreUnsafe(lo, ref sum[0]);
                Vector256.StoreUnsafe(hi, ref sum[4]);
            }
            else
                for (; i + 8 <= n; i += 8)
                    for (int j = 0; j < 8; j++) sum[j] += p[i + j];
            for (int j = 0; i < n; i++, j++) sum[j] += p[i];
        }
    }

    /// <summary>Adds the plane's squared deviations from <paramref name="mean"/> to <paramref name="sum"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SquaredDeviation(ReadOnlySpan<float> x, double mean, ref Lanes sum)
    {
        fixed (float* p = x)
        {
            int n = x.Length, i = 0;
            if (Wide)
            {
                var s = Vector512.LoadUnsafe(ref sum[0]);
                var m = Vector512.Create(mean);
                for (; i + 8 <= n; i += 8)
                {
                    var d = Avx512F.ConvertToVector512Double(Avx.LoadVector256(p + i)) - m;
                    s += d * d;
                }
                Vector512.StoreUnsafe(s, ref sum[0]);
            }
            else if (Narrow)
            {
                var lo = Vector256.LoadUnsafe(ref sum[0]);
                var hi = Vector256.LoadUnsafe(ref sum[4]);
                var m = Vector256.Create(mean);
                for (; i + 8 <= n; i += 8)
                {
                    var d = Avx.ConvertToVector256Double(Sse.LoadVector128(p + i)) - m;
                    var e = Avx.ConvertToVector256Double(Sse.LoadVector128(p + i + 4)) - m;
                    lo += d * d;
                    hi += e * e;
                }
                Vector256.StoreUnsafe(lo, ref sum[0]);
                Vector256.StoreUnsafe(hi, ref sum[4]);
            }
            else
                for (; i + 8 <= n; i += 8)
                    for (int j = 0; j < 8; j++)
                    {
                        double d = p[i + j] - mean;
                        sum[j] += d * d;
                    }
            for (int j = 0; i < n; i++, j++)
            {
                double d = p[i] - mean;
                sum[j] += d * d;
            }
        }
    }

    /// <summary>
    /// Adds, for the plane's values x and upstream gradients dy: dy to <paramref name="sumDy"/>, (x - mean) * dy to
    /// <paramref name="dot"/>, and x - mean to <paramref name="deviation"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DeviationDot(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, double mean, ref Lanes sumDy, ref Lanes dot, ref Lanes deviation)
    {
        if (dy.Length != x.Length) throw new ArgumentException("The plane and its gradient differ in length.", nameof(dy));
        fixed (float* p = x, q = dy)
        {
            int n = x.Length, i = 0;
            if (Wide)
            {
                var sd = Vector512.LoadUnsafe(ref sumDy[0]);
                var dt = Vector512.LoadUnsafe(ref dot[0]);
                var dv = Vector512.LoadUnsafe(ref deviation[0]);
                var m = Vector512.Create(mean);
                for (; i + 8 <= n; i += 8)
                {
                    var d = Avx512F.ConvertToVector512Double(Avx.LoadVector256(p + i)) - m;
                    var g = Avx512F.ConvertToVector512Double(Avx.LoadVector256(q + i));
                    sd += g;
                    dt += d * g;
                    dv += d;
                }
                Vector512.StoreUnsafe(sd, ref sumDy[0]);
                Vector512.StoreUnsafe(dt, ref dot[0]);
                Vector512.StoreUnsafe(dv, ref deviation[0]);
            }
            else if (Narrow)
            {
                // Lanes 0-3 then 4-7: six accumulators, two widened inputs and the mean in registers.
                var m = Vector256.Create(mean);
                for (int half = 0; half < 8; half += 4)
                {
                    var sd = Vector256.LoadUnsafe(ref sumDy[half]);
                    var dt = Vector256.LoadUnsafe(ref dot[half]);
                    var dv = Vector256.LoadUnsafe(ref deviation[half]);
                    for (int k = 0; k + 8 <= n; k += 8)
                    {
                        var d = Avx.ConvertToVector256Double(Sse.LoadVector128(p + k + half)) - m;
                        var g = Avx.ConvertToVector256Double(Sse.LoadVector128(q + k + half));
                        sd += g;
                        dt += d * g;
                        dv += d;
                    }
                    Vector256.StoreUnsafe(sd, ref sumDy[half]);
                    Vector256.StoreUnsafe(dt, ref dot[half]);
                    Vector256.StoreUnsafe(dv, ref deviation[half]);
                }
                i = n / 8 * 8;
            }
            else
                for (; i + 8 <= n; i += 8)
                    for (int j = 0; j < 8; j++) Add(p[i + j], q[i + j], mean, j, ref sumDy, ref dot, ref deviation);
            for (int j = 0; i < n; i++, j++) Add(p[i], q[i], mean, j, ref sumDy, ref dot, ref deviation);
        }
    }

    private static void Add(float x, float dy, double mean, int lane, ref Lanes sumDy, ref Lanes dot, ref Lanes deviation)
    {
        double d = x - mean;
        sumDy[lane] += dy;
        dot[lane] += d * dy;
        deviation[lane] += d;
    }
}
