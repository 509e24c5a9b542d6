using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// How 16 consecutive columns of the column matrix are read, the same for every row: <see cref="Contiguous"/> (one output
/// row: 16 consecutive floats), <see cref="Window"/> (several rows' pieces inside 32 consecutive floats: two masked loads
/// and a permute, AVX-512 only; <see cref="FullWindow"/> when plain loads stay inside the source), <see cref="Lanes"/>
/// (anything else: across images, or without AVX2; per-lane reads, missing lanes zero) or <see cref="Zero"/> (past the
/// range: zeros, so the kernel never multiplies stale memory). With AVX2 and no AVX-512 a window is read as runs of
/// consecutive floats, blended (<see cref="ColumnPacker"/>'s 256-bit part).
/// </summary>
internal enum ColumnGroupKind
{
    Zero,
    Contiguous,
    Window,
    Lanes,

    /// <summary>A <see cref="Window"/> of 16 columns whose 32 floats lie inside the source in every row: plain loads.</summary>
    FullWindow,
}

/// <summary>Packs the column matrix straight from a <see cref="ConvColumns"/> source: im2col fused with the GEMM's packing.</summary>
internal static unsafe partial class ColumnPacker
{
    /// <summary>Tests set this to run the code paths of CPUs without vectors (no AVX2) on one that has them.</summary>
    internal static bool ForcePortable { get; set; }

    /// <summary>
    /// Whether the AVX-512 paths run (windows, masked loads, permutes): not on CPUs without it, nor when tests force the
    /// paths of those (<see cref="KernelWidth.ForceVector256"/>; every kernel that asks this then takes its other path).
    /// </summary>
    internal static bool Vectorized => Avx512F.IsSupported && !ForcePortable && !KernelWidth.ForceVector256;

    /// <summary>Whether the packer's 256-bit paths run: AVX2 without AVX-512 (or forced).</summary>
    internal static bool Vectorized256 => Avx2.IsSupported && !ForcePortable && (KernelWidth.ForceVector256 || !Avx512F.IsSupported);

    /// <summary>Ints per group descriptor: kind, base offset, lane count, one spare, then 16 lane offsets.</summary>
    public const int DescriptorInts = 20;

    /// <summary>
    /// Describes the 16-column groups of columns <c>[u0, u0 + count)</c> of a unit of consecutive images (column u: image
    /// u / OutSize of the unit, whose source starts <see cref="ConvColumns.ImageStride"/> after the previous one's), padded
    /// with zero groups up to <paramref name="groups"/>. Offsets are relative to the unit's first image, so one description
    /// serves every unit of the same shape.
    /// </summary>
    /// <param name="l">The source layout.</param>
    /// <param name="u0">The first column, relative to the unit.</param>
    /// <param name="count">Columns to describe.</param>
    /// <param name="groups">Groups to write (at least ceil(count / 16)).</param>
    /// <param name="desc">The descriptors, <see cref="DescriptorInts"/> ints per group.</param>
    /// <param name="readable">Floats readable from the unit's start in every case (its images, and the slack of a staging
    /// buffer): a window whose 32 floats stay below this in every row needs no masked loads.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Describe(in ConvColumns l, int u0, int count, int groups, int* desc, long readable)
    {
        bool window = Vectorized || Vectorized256;
        int outW = l.OutW, outH = l.OutSize / l.OutW;
        int image = u0 / l.OutSize, q = u0 - image * l.OutSize, oh = q / outW, ow = q - oh * outW;
        for (int g = 0; g < groups; g++, desc += DescriptorInts)
        {
            int lanes = Math.Clamp(count - g * 16, 0, 16);
            if (lanes == 0)
            {
                desc[0] = (int)ColumnGroupKind.Zero;
                continue;
            }
            int* off = desc + 4;
            for (int i = 0; i < lanes; i++)
            {
                off[i] = image * l.ImageStride + oh * l.Pitch + ow;
                if (++ow == outW)
                {
                    ow = 0;
                    if (++oh == outH) { oh = 0; image++; }
                }
            }
            bool contiguous = lanes == 16, inWindow = window;
            for (int i = 1; i < lanes; i++)
            {
                int d = off[i] - off[0];
                contiguous &= d == i;
                inWindow &= d > off[i - 1] - off[0] && d < 32;
            }
            bool full = lanes == 16 && off[0] + 32L + l.MaxRowOffset <= readable;
            desc[0] = (int)(contiguous ? ColumnGroupKind.Contiguous
                : inWindow ? (full ? ColumnGroupKind.FullWindow : ColumnGroupKind.Window)
                : ColumnGroupKind.Lanes);
            desc[1] = off[0];
            desc[2] = lanes;
            // A window reads exactly the floats from its first lane's to its last lane's (masked loads), nothing past them.
            desc[3] = off[lanes - 1] - off[0] + 1;
            if (inWindow && !contiguous)
            {
                for (int i = lanes - 1; i >= 0; i--) off[i] -= off[0];
                // Lanes past the range read lane 0 and are masked to zero.
                for (int i = lanes; i < 16; i++) off[i] = 0;
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="kb"/> rows of the described columns, row rr read at <c>rowOffset[rr]</c>
    /// (<see cref="ConvColumns.RowOffset"/>), into panels <paramref name="nr"/> wide: row rr, column t at
    /// <c>dst[(t / nr) * nr * kb + rr * nr + t % nr]</c> (the GEMM's packed B for one depth block; with nr a multiple of 16
    /// at least the width, a row-major block).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pack(float* source, int* desc, int groups, int* rowOffset, int kb, int nr, float* dst)
    {
        if (!Vectorized)
        {
            if (Vectorized256) Pack256(source, desc, groups, rowOffset, kb, nr, dst);
            else PackPortable(source, desc, groups, rowOffset, kb, nr, dst);
            return;
        }
        float* v = stackalloc float[16];
        for (int g = 0; g < groups; g++, desc += DescriptorInts)
        {
            // Group by group: a group's rows go to one stretch of its panel.
            int t = g * 16;
            float* d = dst + (nint)(t / nr) * nr * kb + t % nr;
            float* s = source + desc[1];
            switch ((ColumnGroupKind)desc[0])
            {
                case ColumnGroupKind.Contiguous:
                    for (int rr = 0; rr < kb; rr++) Store16(Vector512.Load(s + rowOffset[rr]), d, rr, nr, kb);
                    break;
                case ColumnGroupKind.FullWindow:
                    {
                        var idx = Vector512.Load(desc + 4);
                        for (int rr = 0; rr < kb; rr++)
                        {
                            float* w = s + rowOffset[rr];
                            Store16(Avx512F.PermuteVar16x32x2(Vector512.Load(w), idx, Vector512.Load(w + 16)), d, rr, nr, kb);
                        }
                        break;
                    }
                case ColumnGroupKind.Window:
                    {
                        // Masked loads read only the window's own floats: never past the image, whatever lies beyond.
                        var idx = Vector512.Load(desc + 4);
                        var loMask = Mask(Math.Min(16, desc[3]));
                        var hiMask = Mask(desc[3] - 16);
                        var lanes = Mask(desc[2]);
                        for (int rr = 0; rr < kb; rr++)
                        {
                            float* w = s + rowOffset[rr];
                            var packed = Avx512F.PermuteVar16x32x2(Avx512F.MaskLoad(w, loMask, Vector512<float>.Zero), idx,
                                Avx512F.MaskLoad(w + 16, hiMask, Vector512<float>.Zero));
                            Store16(packed & lanes, d, rr, nr, kb);
                        }
                        break;
                    }
                case ColumnGroupKind.Lanes:
                    for (int rr = 0; rr < kb; rr++)
                    {
                        float* row = source + rowOffset[rr];
                        for (int i = 0; i < 16; i++) v[i] = i < desc[2] ? row[desc[4 + i]] : 0f;
                        Store16(Vector512.Load(v), d, rr, nr, kb);
                    }
                    break;
                default:
                    for (int rr = 0; rr < kb; rr++) Store16(Vector512<float>.Zero, d, rr, nr, kb);
                    break;
            }
        }
    }

    /// <summary><see cref="Pack"/> without vectors (no windows are described then): float by float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackPortable(float* source, int* desc, int groups, int* rowOffset, int kb, int nr, float* dst)
    {
        float* v = stackalloc float[16];
        for (int g = 0; g < groups; g++, desc += DescriptorInts)
        {
            int t = g * 16;
            float* d = dst + (nint)(t / nr) * nr * kb + t % nr;
            var kind = (ColumnGroupKind)desc[0];
            for (int rr = 0; rr < kb; rr++)
            {
                float* row = source + rowOffset[rr];
                for (int i = 0; i < 16; i++)
                    v[i] = kind switch
                    {
                        ColumnGroupKind.Contiguous => row[desc[1] + i],
                        ColumnGroupKind.Lanes when i < desc[2] => row[desc[4 + i]],
                        _ => 0f,
                    };
                CopyLanes(v, d, rr, nr, kb);
            }
        }
    }

    /// <summary>
    /// The adjoint of <see cref="Pack"/> (col2im): adds rows <c>[0, rows)</c> of a row-major block of columns
    /// (<paramref name="src"/>, <paramref name="ld"/> floats a row, the described columns) into the source layout at
    /// <paramref name="dst"/>, which must have 32 floats of slack past its end (a staged gradient). Row by row, so every element of dst receives its terms in increasing row order, as
    /// <see cref="ImToCol.FoldAdd(ReadOnlySpan{float}, int, in WindowPlan, Span{float})"/> adds them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void FoldAdd(float* src, int ld, int* desc, int groups, int* rowOffset, int rows, int taps, float* dst)
    {
        bool vectors = Vectorized, vectors256 = Vectorized256;
        // Per window group: which of its 16 columns each of the 32 window floats takes (16: none), and which it covers.
        int* spread = stackalloc int[groups * 32];
        for (int g = 0; g < groups; g++)
        {
            int* sp = spread + g * 32, dg = desc + g * DescriptorInts;
            for (int w = 0; w < 32; w++) sp[w] = 16;
            if (dg[0] is (int)ColumnGroupKind.Window or (int)ColumnGroupKind.FullWindow)
                for (int i = 0; i < dg[2]; i++) sp[dg[4 + i]] = i;
        }
        // Four channels at a time, tap-major among them (tap 0 of each, then tap 1, ...): consecutive rows add into
        // different channels, so an add seldom waits for the store of the one before (rows of neighbouring taps of one
        // channel overlap in dst), and the four channels' part of dst stays in L1. Each element of dst still gets its terms
        // in increasing row order: its channel is fixed and its taps come in order.
        int channels = rows / taps;
        for (int c0 = 0; c0 < channels; c0 += 4)
        {
            int c1 = Math.Min(channels, c0 + 4);
            for (int tap = 0; tap < taps; tap++)
                for (int c = c0; c < c1; c++)
                {
                    int rr = c * taps + tap;
                    FoldRow(src + (nint)rr * ld, dst + rowOffset[rr], desc, groups, spread, vectors, vectors256);
                }
        }
    }

    /// <summary>One row of <see cref="FoldAdd"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FoldRow(float* row, float* target, int* desc, int groups, int* spread, bool vectors, bool vectors256)
    {
        // Even groups, then odd ones: a window's store and the next window's load would overlap (a window spans up to 32
        // floats, groups start at least 16 apart), and the load would wait for the store. Each float of dst is in one
        // group's columns at most, so the order does not change any sum.
        for (int g = 0; g < groups; g = g + 2 < groups || (g & 1) == 1 ? g + 2 : 1)
        {
            int* d = desc + g * DescriptorInts;
            float* s = row + g * 16, t = target + d[1];
            switch ((ColumnGroupKind)d[0])
            {
                case ColumnGroupKind.Contiguous:
                    if (vectors) (Vector512.Load(t) + Vector512.Load(s)).Store(t);
                    else if (vectors256)
                    {
                        (Vector256.Load(t) + Vector256.Load(s)).Store(t);
                        (Vector256.Load(t + 8) + Vector256.Load(s + 8)).Store(t + 8);
                    }
                    else
                        for (int i = 0; i < 16; i++) t[i] += s[i];
                    break;
                case ColumnGroupKind.Window:
                case ColumnGroupKind.FullWindow:
                    if (!vectors)
                    {
                        // AVX2: the window's columns one by one (the same adds: the vector path's other floats add -0).
                        for (int i = 0; i < d[2]; i++) t[d[4 + i]] += s[i];
                        break;
                    }
                    {
                        // Spread the columns over the window and add the whole window: where no column lands the term is
                        // -0, which leaves every float as it was (x + -0 is x, for x = +0 and -0 too). Plain loads and
                        // stores (measured 17% faster than masked ones on this fold); the window's 32 floats exist: dst
                        // is a staged gradient, which has slack past its end.
                        var v = Avx512F.MaskLoad(s, Mask(d[2]), Vector512<float>.Zero);
                        var lo = Vector512.Load(spread + g * 32);
                        var hi = Vector512.Load(spread + g * 32 + 16);
                        var none = Vector512.Create(-0f);
                        (Vector512.Load(t) + Avx512F.PermuteVar16x32x2(v, lo, none)).Store(t);
                        (Vector512.Load(t + 16) + Avx512F.PermuteVar16x32x2(v, hi, none)).Store(t + 16);
                        break;
                    }
                case ColumnGroupKind.Lanes:
                    {
                        int* off = d + 4;
                        for (int i = 0; i < d[2]; i++) target[off[i]] += s[i];
                        break;
                    }
            }
        }
    }

    /// <summary>All bits set in the first <paramref name="count"/> lanes (none when count &lt;= 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Mask(int count) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    /// <summary>Stores 16 columns of row rr: one vector in a panel at least 16 wide, else a quarter into each of four 4-wide panels.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16(Vector512<float> v, float* d, int rr, int nr, int kb)
    {
        if (nr >= 16)
        {
            v.Store(d + (nint)rr * nr);
            return;
        }
        nint step = (nint)4 * kb;
        float* p = d + (nint)rr * 4;
        v.GetLower().GetLower().Store(p);
        v.GetLower().GetUpper().Store(p + step);
        v.GetUpper().GetLower().Store(p + 2 * step);
        v.GetUpper().GetUpper().Store(p + 3 * step);
    }

    /// <summary>Stores 16 floats as <see cref="Store16"/> does, without vectors wider than 128 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyLanes(float* s, float* d, int rr, int nr, int kb)
    {
        if (nr >= 16)
        {
            new ReadOnlySpan<float>(s, 16).CopyTo(new Span<float>(d + (nint)rr * nr, 16));
            return;
        }
        nint step = (nint)4 * kb;
        float* p = d + (nint)rr * 4;
        for (int q = 0; q < 4; q++, p += step, s += 4)
            for (int i = 0; i < 4; i++) p[i] = s[i];
    }
}
