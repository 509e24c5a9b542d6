using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// <see cref="DirectConv"/>'s tile on 8-lane vectors, for CPUs with AVX2 and FMA but no AVX-512: 4 filters x 3 output
/// vectors make 12 accumulators, with the three image vectors and one broadcast weight 16 of the 16 registers. Each output
/// is the same chain as on 16 lanes, so the same bits.
/// </summary>
internal static unsafe partial class DirectConv
{
    /// <summary>Filters per tile of 8-lane vectors.</summary>
    private const int Filters256 = 4;

    /// <summary>
    /// Four filters (the last <c>4 - count</c> repeat filter <c>count - 1</c> and are not written) times three 8-lane
    /// output vectors: each output one fused multiply-add chain over the rows from zero, then plus the bias, then ReLU.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile256(float* source, int* rowOffset, int r0, int r1, int k, float* w, int count, int* read, int* write, int* lanes, float* y,
        int plane, float* bias, bool relu, bool accumulate, bool final)
    {
        int last = count - 1;
        float* w1 = w + Math.Min(1, last) * k, w2 = w + Math.Min(2, last) * k, w3 = w + Math.Min(3, last) * k;
        float* s0 = source + read[0], s1 = source + read[1], s2 = source + read[2];
        Vector256<float> a0 = default, a1 = default, a2 = default, b0 = default, b1 = default, b2 = default;
        Vector256<float> c0 = default, c1 = default, c2 = default, d0 = default, d1 = default, d2 = default;
        for (int r = r0; r < r1; r++)
        {
            int o = rowOffset[r];
            var x0 = Vector256.Load(s0 + o);
            var x1 = Vector256.Load(s1 + o);
            var x2 = Vector256.Load(s2 + o);
            Vector256<float> v;
            v = Vector256.Create(w[r]); a0 = Fma.MultiplyAdd(v, x0, a0); a1 = Fma.MultiplyAdd(v, x1, a1); a2 = Fma.MultiplyAdd(v, x2, a2);
            v = Vector256.Create(w1[r]); b0 = Fma.MultiplyAdd(v, x0, b0); b1 = Fma.MultiplyAdd(v, x1, b1); b2 = Fma.MultiplyAdd(v, x2, b2);
            v = Vector256.Create(w2[r]); c0 = Fma.MultiplyAdd(v, x0, c0); c1 = Fma.MultiplyAdd(v, x1, c1); c2 = Fma.MultiplyAdd(v, x2, c2);
            v = Vector256.Create(w3[r]); d0 = Fma.MultiplyAdd(v, x0, d0); d1 = Fma.MultiplyAdd(v, x1, d1); d2 = Fma.MultiplyAdd(v, x2, d2);
        }
        // No calls from here on (see Tile).
        var m0 = VectorOps256.Mask(lanes[0]);
        var m1 = VectorOps256.Mask(lanes[1]);
        var m2 = VectorOps256.Mask(lanes[2]);
        float* y0 = y + write[0], y1 = y + write[1], y2 = y + write[2];
        Put256(a0, a1, a2, 0, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
        if (count > 1) Put256(b0, b1, b2, 1, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
        if (count > 2) Put256(c0, c1, c2, 2, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
        if (count > 3) Put256(d0, d1, d2, 3, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
    }

    /// <summary>One filter's three 8-lane output vectors: plus its bias, ReLU, stored under their lane masks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put256(Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, int filter, float* y0, float* y1, float* y2, int plane,
        Vector256<float> m0, Vector256<float> m1, Vector256<float> m2, float* bias, bool relu, bool accumulate, bool final)
    {
        nint at = (nint)filter * plane;
        if (accumulate)
        {
            // The earlier depth blocks' sum, added as the GEMM's micro-kernel adds it: this block's sum + C.
            v0 += Avx.MaskLoad(y0 + at, m0);
            v1 += Avx.MaskLoad(y1 + at, m1);
            v2 += Avx.MaskLoad(y2 + at, m2);
        }
        if (final)
        {
            if (bias is not null)
            {
                var b = Vector256.Create(bias[filter]);
                v0 += b;
                v1 += b;
                v2 += b;
            }
            if (relu)
            {
                v0 = Relu(v0);
                v1 = Relu(v1);
                v2 = Relu(v2);
            }
        }
        Store(y0 + at, m0, v0);
        Store(y1 + at, m1, v1);
        Store(y2 + at, m2, v2);
    }

    /// <summary>
    /// Stores the lanes of <paramref name="mask"/>: a plain store when all 8 are set (a masked store is slow on AMD CPUs,
    /// and a tile of a shallow layer has few rows of multiply-adds to hide 12 of them), else a masked one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* at, Vector256<float> mask, Vector256<float> v)
    {
        if (mask.AsInt32() == Vector256<int>.AllBitsSet) v.Store(at);
        else Avx.MaskStore(at, mask, v);
    }

    /// <summary><see cref="Relu(Vector512{float})"/> on 8 lanes, with the same bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Relu(Vector256<float> v) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(v, Vector256<float>.Zero) | ~Vector256.Equals(v, v), v, Vector256<float>.Zero);
}
