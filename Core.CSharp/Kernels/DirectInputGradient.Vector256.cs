using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// <see cref="DirectInputGradient"/>'s tile on 8-lane vectors, for CPUs with AVX2 and FMA but no AVX-512: a tap's terms for
/// 4 channels x 3 vectors take 12 registers, with three dY vectors and one broadcast weight 16 of the 16, so the elements'
/// sums over the taps live in a small stack buffer, added to once per tap as the 16-lane tile adds its registers.
/// </summary>
internal static unsafe partial class DirectInputGradient
{
    /// <summary>
    /// <see cref="Tile"/> on 8 lanes: the same chains and the same masked additions, in the same order, so the same bits.
    /// </summary>
    [SkipLocalsInit, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile256(float* padded, float* w, int c0, Geometry g, int* tapOffset, int* tapRow, int* tapCol, int* read, int* write,
        int* rowOf, int* colOf, int* lanes, float* dx)
    {
        int last = g.C - 1;
        int k1 = Math.Min(c0 + 1, last) - c0, k2 = Math.Min(c0 + 2, last) - c0, k3 = Math.Min(c0 + 3, last) - c0;
        nint fStride = (nint)g.C * g.Taps, o1 = (nint)k1 * g.Taps, o2 = (nint)k2 * g.Taps, o3 = (nint)k3 * g.Taps;
        // Channel j's vector s at sum + (3j + s) * 8.
        float* sum = stackalloc float[12 * 8];
        for (int i = 0; i < 12; i++) Vector256<float>.Zero.Store(sum + 8 * i);
        for (int t = 0; t < g.Taps; t++)
        {
            if (!Any(rowOf[0] + tapRow[t], colOf[0] + tapCol[t], g) && !Any(rowOf[1] + tapRow[t], colOf[1] + tapCol[t], g)
                && !Any(rowOf[2] + tapRow[t], colOf[2] + tapCol[t], g))
                continue;
            float* s0 = padded + tapOffset[t] + read[0], s1 = padded + tapOffset[t] + read[1], s2 = padded + tapOffset[t] + read[2];
            float* w0 = w + (nint)c0 * g.Taps + t, w1 = w0 + o1, w2 = w0 + o2, w3 = w0 + o3;
            Vector256<float> p0 = default, p1 = default, p2 = default, q0 = default, q1 = default, q2 = default;
            Vector256<float> r0 = default, r1 = default, r2 = default, u0 = default, u1 = default, u2 = default;
            nint at = 0, wAt = 0;
            for (int o = 0; o < g.Filters; o++, at += g.Plane, wAt += fStride)
            {
                var x0 = Vector256.Load(s0 + at);
                var x1 = Vector256.Load(s1 + at);
                var x2 = Vector256.Load(s2 + at);
                var v = Vector256.Create(w0[wAt]);
                p0 = Fma.MultiplyAdd(v, x0, p0); p1 = Fma.MultiplyAdd(v, x1, p1); p2 = Fma.MultiplyAdd(v, x2, p2);
                v = Vector256.Create(w1[wAt]);
                q0 = Fma.MultiplyAdd(v, x0, q0); q1 = Fma.MultiplyAdd(v, x1, q1); q2 = Fma.MultiplyAdd(v, x2, q2);
                v = Vector256.Create(w2[wAt]);
                r0 = Fma.MultiplyAdd(v, x0, r0); r1 = Fma.MultiplyAdd(v, x1, r1); r2 = Fma.MultiplyAdd(v, x2, r2);
                v = Vector256.Create(w3[wAt]);
                u0 = Fma.MultiplyAdd(v, x0, u0); u1 = Fma.MultiplyAdd(v, x1, u1); u2 = Fma.MultiplyAdd(v, x2, u2);
            }
            // Where the tap's output position exists: its row in [0, OutH), each lane's column in [0, OutW).
            var m0 = Exists256(rowOf[0] + tapRow[t], colOf[0] + tapCol[t], g);
            var m1 = Exists256(rowOf[1] + tapRow[t], colOf[1] + tapCol[t], g);
            var m2 = Exists256(rowOf[2] + tapRow[t], colOf[2] + tapCol[t], g);
            Add(sum, 0, m0, p0); Add(sum, 1, m1, p1); Add(sum, 2, m2, p2);
            Add(sum, 3, m0, q0); Add(sum, 4, m1, q1); Add(sum, 5, m2, q2);
            Add(sum, 6, m0, r0); Add(sum, 7, m1, r1); Add(sum, 8, m2, r2);
            Add(sum, 9, m0, u0); Add(sum, 10, m1, u1); Add(sum, 11, m2, u2);
        }
        var n0 = VectorOps256.Mask(lanes[0]);
        var n1 = VectorOps256.Mask(lanes[1]);
        var n2 = VectorOps256.Mask(lanes[2]);
        float* d = dx + (nint)c0 * g.InPlane;
        int channels = k1 == 0 ? 1 : k2 == k1 ? 2 : k3 == k2 ? 3 : 4;
        for (int j = 0; j < channels; j++, d += g.InPlane)
        {
            Avx.MaskStore(d + write[0], n0, Vector256.Load(sum + 24 * j));
            Avx.MaskStore(d + write[1], n1, Vector256.Load(sum + 24 * j + 8));
            Avx.MaskStore(d + write[2], n2, Vector256.Load(sum + 24 * j + 16));
        }
    }

    /// <summary>Sum vector <paramref name="slot"/> plus <paramref name="term"/> in the lanes of <paramref name="mask"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Add(float* sum, int slot, Vector256<float> mask, Vector256<float> term)
    {
        var s = Vector256.Load(sum + 8 * slot);
        Vector256.ConditionalSelect(mask, s + term, s).Store(sum + 8 * slot);
    }

    /// <summary>Whether any of 8 lanes (output row <paramref name="row"/>, columns <paramref name="col"/> + lane) exists.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Any(int row, int col, Geometry g) => (uint)row < (uint)g.OutH && col < g.OutW && col + 8 > 0;

    /// <summary>Lanes of 8 whose output position (row <paramref name="row"/>, column <paramref name="col"/> + lane) exists.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Exists256(int row, int col, Geometry g)
    {
        if ((uint)row >= (uint)g.OutH) return Vector256<float>.Zero;
        var c = Vector256<int>.Indices + Vector256.Create(col);
        return (Vector256.GreaterThanOrEqual(c, Vector256<int>.Zero) & Vector256.LessThan(c, Vector256.Create(g.OutW))).AsSingle();
    }
}
