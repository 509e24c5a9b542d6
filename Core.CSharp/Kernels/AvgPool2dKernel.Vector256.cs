using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>Average pooling's 2x2 backward spread on 8-lane vectors, for CPUs with AVX2 but no AVX-512.</summary>
public static partial class AvgPool2dKernel
{
    /// <summary>
    /// <see cref="SpreadRow512"/> on ymm: eight windows a step. A row's last windows go in steps of four, the last step ending
    /// at the row's end and overlapping the one before it (the overlap gets the same shares twice), so that rows of four
    /// windows or more need no masked store: those cost on AMD. Measured on one thread (loaded 2-core Zen 3), backward alone,
    /// fastest of 2000: N64 C6 28x28 36 us, N64 C16 10x10 21 us with these plain stores, 70 us and 61 us with the last
    /// windows under lane masks, 510 us and 182 us on the general loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void SpreadRow256(float* g, float* r0, float* r1, int ow)
    {
        var lowPairs = Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3);
        var highPairs = lowPairs + Vector256.Create(4);
        var four = Vector256.Create(4f);
        int ox = 0;
        for (; ox + 8 <= ow; ox += 8)
        {
            var share = Vector256<float>.Zero + Vector256.Load(g + ox) / four;
            var lo = Vector256.Shuffle(share, lowPairs);
            var hi = Vector256.Shuffle(share, highPairs);
            Vector256.Store(lo, r0 + 2 * ox);
            Vector256.Store(hi, r0 + 2 * ox + 8);
            Vector256.Store(lo, r1 + 2 * ox);
            Vector256.Store(hi, r1 + 2 * ox + 8);
        }
        if (ow >= 4)
        {
            if (ow - ox >= 4)
            {
                Spread4(g + ox, r0 + 2 * ox, r1 + 2 * ox, lowPairs, four);
                ox += 4;
            }
            if (ox < ow) Spread4(g + ow - 4, r0 + 2 * (ow - 4), r1 + 2 * (ow - 4), lowPairs, four);
        }
        else
        {
            // A row of one to three windows: one step under lane masks.
            var share = Vector256<float>.Zero + Avx.MaskLoad(g, VectorOps256.Mask(ow)) / four;
            var lanes = VectorOps256.Mask(2 * ow);
            var lo = Vector256.Shuffle(share, lowPairs);
            Avx.MaskStore(r0, lanes, lo);
            Avx.MaskStore(r1, lanes, lo);
        }
    }

    /// <summary>Four windows' shares from <paramref name="g"/>, each duplicated into its two columns of both rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Spread4(float* g, float* r0, float* r1, Vector256<int> pairs, Vector256<float> four)
    {
        var share = Vector256<float>.Zero + Vector128.Load(g).ToVector256Unsafe() / four;
        var v = Vector256.Shuffle(share, pairs);
        Vector256.Store(v, r0);
        Vector256.Store(v, r1);
    }
}
