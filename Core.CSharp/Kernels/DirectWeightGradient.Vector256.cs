using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// <see cref="DirectWeightGradient"/>'s tile on 8-lane vectors, for CPUs with AVX2 and FMA but no AVX-512: 4 filters x 3
/// column-matrix rows make 12 accumulators, with three image vectors and one of dY 16 of the 16 registers.
/// </summary>
internal static unsafe partial class DirectWeightGradient
{
    /// <summary>Column-matrix rows (columns of dW) per tile of 8-lane vectors.</summary>
    private const int Taps256 = 3;

    /// <summary>
    /// Four filters (dY planes at <paramref name="d"/> and the three offsets) x three column-matrix rows over 8-lane vectors
    /// <c>[j0, j1)</c> of output rows <c>[h0, h1)</c>, added to their lane sums (<paramref name="sums"/>: filter a's row b at
    /// <c>a * ld + b * 8</c>), as <see cref="Tile{TM}"/> does on 16 lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile256<TM>(float* source, int* rowOffset, float* d, nint d1, nint d2, nint d3, Rows g, int h0, int h1, int j0, int j1,
        float* sums, int ld) where TM : struct, IConstant
    {
        if (j0 >= j1) return;
        float* s0 = source + rowOffset[0], s1 = source + rowOffset[1], s2 = source + rowOffset[2];
        float* t0 = sums, t1 = sums + ld, t2 = sums + 2 * ld, t3 = sums + 3 * ld;
        var a0 = Vector256.Load(t0); var a1 = Vector256.Load(t0 + 8); var a2 = Vector256.Load(t0 + 16);
        var b0 = Vector256.Load(t1); var b1 = Vector256.Load(t1 + 8); var b2 = Vector256.Load(t1 + 16);
        var c0 = Vector256.Load(t2); var c1 = Vector256.Load(t2 + 8); var c2 = Vector256.Load(t2 + 16);
        var e0 = Vector256.Load(t3); var e1 = Vector256.Load(t3 + 8); var e2 = Vector256.Load(t3 + 16);
        var m = VectorOps256.Mask(g.Tail);
        for (int img = 0; img < g.Images; img++)
        {
            for (int h = h0; h < h1; h++)
            {
                nint at = img * g.ImageStride + (nint)h * g.Pitch + 8 * j0, to = img * g.DyStride + (nint)h * g.OutW + 8 * j0;
                for (int j = j0; j < j1; j++, at += 8, to += 8)
                {
                    var x0 = Load256<TM>(s0 + at, m); var x1 = Load256<TM>(s1 + at, m); var x2 = Load256<TM>(s2 + at, m);
                    var y = Load256<TM>(d + to, m);
                    a0 = Fma.MultiplyAdd(y, x0, a0); a1 = Fma.MultiplyAdd(y, x1, a1); a2 = Fma.MultiplyAdd(y, x2, a2);
                    y = Load256<TM>(d + d1 + to, m);
                    b0 = Fma.MultiplyAdd(y, x0, b0); b1 = Fma.MultiplyAdd(y, x1, b1); b2 = Fma.MultiplyAdd(y, x2, b2);
                    y = Load256<TM>(d + d2 + to, m);
                    c0 = Fma.MultiplyAdd(y, x0, c0); c1 = Fma.MultiplyAdd(y, x1, c1); c2 = Fma.MultiplyAdd(y, x2, c2);
                    y = Load256<TM>(d + d3 + to, m);
                    e0 = Fma.MultiplyAdd(y, x0, e0); e1 = Fma.MultiplyAdd(y, x1, e1); e2 = Fma.MultiplyAdd(y, x2, e2);
                }
            }
        }
        a0.Store(t0); a1.Store(t0 + 8); a2.Store(t0 + 16);
        b0.Store(t1); b1.Store(t1 + 8); b2.Store(t1 + 16);
        c0.Store(t2); c1.Store(t2 + 8); c2.Store(t2 + 16);
        e0.Store(t3); e1.Store(t3 + 8); e2.Store(t3 + 16);
    }

    /// <summary>A vector of 8, its lanes past <paramref name="mask"/> loaded as zero when <typeparamref name="TM"/> is <see cref="Masked"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Load256<TM>(float* p, Vector256<float> mask) where TM : struct, IConstant =>
        TM.Value == 1 ? Avx.MaskLoad(p, mask) : Vector256.Load(p);
}
