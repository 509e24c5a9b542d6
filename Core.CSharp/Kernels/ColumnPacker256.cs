using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>The column packer's AVX2 path, for CPUs without AVX-512 (AMD Zen 3, Intel before Skylake-X).</summary>
internal static unsafe partial class ColumnPacker
{
    /// <summary>A window of more runs than this is gathered instead of blended.</summary>
    private const int MaxRuns = 4;

    /// <summary>
    /// <see cref="Pack"/> with 256-bit vectors. AVX2 has no two-register permute, so a window (16 columns inside 32 floats
    /// of a row, in increasing order) is read as its runs of consecutive floats: column i of run r is float
    /// <c>shift[r] + i</c> of the window, so one unaligned load per run and half puts every column of the run in its lane,
    /// and the runs are blended lane by lane. A window's columns come in one run per output row they touch (two or three
    /// for rows of 8 to 16 pixels); a window of more runs, and the columns across images, are gathered. The same floats land
    /// in the same places as on the other paths.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pack256(float* source, int* desc, int groups, int* rowOffset, int kb, int nr, float* dst)
    {
        int* shift = stackalloc int[MaxRuns];
        // Per run and half: which lanes take the run (for the blend), and which floats its load may read (a window that is
        // not full reads nothing past its last column's float).
        var take = stackalloc Vector256<float>[2 * MaxRuns];
        var readable = stackalloc Vector256<float>[2 * MaxRuns];
        for (int g = 0; g < groups; g++, desc += DescriptorInts)
        {
            int t = g * 16;
            float* d = dst + (nint)(t / nr) * nr * kb + t % nr;
            float* s = source + desc[1];
            var kind = (ColumnGroupKind)desc[0];
            switch (kind)
            {
                case ColumnGroupKind.Contiguous:
                    for (int rr = 0; rr < kb; rr++)
                    {
                        float* w = s + rowOffset[rr];
                        StoreHalves(Vector256.Load(w), Vector256.Load(w + 8), d, rr, nr, kb);
                    }
                    break;
                case ColumnGroupKind.Window or ColumnGroupKind.FullWindow:
                    {
                        int runs = Runs(desc, shift, take, readable);
                        if (runs > MaxRuns)
                        {
                            Gather(s, desc, rowOffset, kb, nr, d);
                            break;
                        }
                        if (kind == ColumnGroupKind.FullWindow)
                            for (int rr = 0; rr < kb; rr++)
                            {
                                float* w = s + rowOffset[rr];
                                var lo = Vector256.Load(w);
                                var hi = Vector256.Load(w + 8);
                                for (int r = 1; r < runs; r++)
                                {
                                    lo = Avx.BlendVariable(lo, Vector256.Load(w + shift[r]), take[2 * r]);
                                    hi = Avx.BlendVariable(hi, Vector256.Load(w + shift[r] + 8), take[2 * r + 1]);
                                }
                                StoreHalves(lo, hi, d, rr, nr, kb);
                            }
                        else
                            // Masked loads read only the window's own floats: never past the image, whatever lies beyond.
                            for (int rr = 0; rr < kb; rr++)
                            {
                                float* w = s + rowOffset[rr];
                                var lo = Avx.MaskLoad(w, readable[0]);
                                var hi = Avx.MaskLoad(w + 8, readable[1]);
                                for (int r = 1; r < runs; r++)
                                {
                                    lo = Avx.BlendVariable(lo, Avx.MaskLoad(w + shift[r], readable[2 * r]), take[2 * r]);
                                    hi = Avx.BlendVariable(hi, Avx.MaskLoad(w + shift[r] + 8, readable[2 * r + 1]), take[2 * r + 1]);
                                }
                                StoreHalves(lo, hi, d, rr, nr, kb);
                            }
                        break;
                    }
                case ColumnGroupKind.Lanes:
                    Gather(source, desc, rowOffset, kb, nr, d);
                    break;
                default:
                    for (int rr = 0; rr < kb; rr++) StoreHalves(Vector256<float>.Zero, Vector256<float>.Zero, d, rr, nr, kb);
                    break;
            }
        }
    }

    /// <summary>
    /// Splits a window's columns into runs of consecutive floats (run r starts at lane <c>start</c>, its columns at floats
    /// <c>shift[r] + lane</c>; the first run's shift is 0, its first column being the window's first float) and fills the
    /// blend and load masks of the first <see cref="MaxRuns"/>. The last run takes the lanes past the group's columns too:
    /// their floats lie past the last column, so a masked load gives zeros there, and a full window's other reads stay in
    /// its 32 floats (a run's floats start at or after its first column's offset minus its lane, which is at least 0, and
    /// end at most at the last column's float).
    /// </summary>
    /// <returns>The number of runs.</returns>
    private static int Runs(int* desc, int* shift, Vector256<float>* take, Vector256<float>* readable)
    {
        int lanes = desc[2], span = desc[3], runs = 0;
        int* off = desc + 4;
        var lane = Vector256<int>.Indices;
        for (int i = 0; i < lanes; i++)
        {
            if (i > 0 && off[i] == off[i - 1] + 1) continue;
            if (runs < MaxRuns)
            {
                shift[runs] = off[i] - i;
                for (int h = 0; h < 2; h++)
                {
                    var at = lane + Vector256.Create(8 * h);
                    take[2 * runs + h] = Vector256.GreaterThanOrEqual(at, Vector256.Create(i)).AsSingle();
                    readable[2 * runs + h] = Vector256.LessThan(at + Vector256.Create(shift[runs]), Vector256.Create(span)).AsSingle();
                }
            }
            runs++;
        }
        return runs;
    }

    /// <summary>The columns of a group one lane at a time (masked gathers): lane i from float <c>desc[4 + i]</c> of the row at <paramref name="s"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Gather(float* s, int* desc, int* rowOffset, int kb, int nr, float* d)
    {
        var loMask = VectorOps256.Mask(desc[2]);
        var hiMask = VectorOps256.Mask(desc[2] - 8);
        var loIndex = Vector256.Load(desc + 4);
        var hiIndex = Vector256.Load(desc + 12);
        for (int rr = 0; rr < kb; rr++)
        {
            float* w = s + rowOffset[rr];
            // Lanes outside the mask are not read (their offsets may be anything).
            var lo = Avx2.GatherMaskVector256(Vector256<float>.Zero, w, loIndex, loMask, 4);
            var hi = Avx2.GatherMaskVector256(Vector256<float>.Zero, w, hiIndex, hiMask, 4);
            StoreHalves(lo, hi, d, rr, nr, kb);
        }
    }

    /// <summary>Stores 16 columns of row rr as two halves: into a panel at least 16 wide, else a quarter into each of four 4-wide panels.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreHalves(Vector256<float> lo, Vector256<float> hi, float* d, int rr, int nr, int kb)
    {
        if (nr >= 16)
        {
            lo.Store(d + (nint)rr * nr);
            hi.Store(d + (nint)rr * nr + 8);
            return;
        }
        nint step = (nint)4 * kb;
        float* p = d + (nint)rr * 4;
        lo.GetLower().Store(p);
        lo.GetUpper().Store(p + step);
        hi.GetLower().Store(p + 2 * step);
        hi.GetUpper().Store(p + 3 * step);
    }
}
