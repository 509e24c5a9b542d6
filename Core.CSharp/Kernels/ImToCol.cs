using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// Unfolds one image's sliding windows into a column matrix (im2col), and folds columns back (col2im), for 1-d, 2-d
/// and 3-d windows with stride, dilation and asymmetric zero padding. The column matrix has <c>C*k1*...*kr</c> rows,
/// channel-major and then the kernel axes in order (the order of a flattened <c>[F, C, k1, ..., kr]</c> weight), and
/// one column per output position (<c>o1*...*or</c>, row-major).
/// </summary>
public static class ImToCol
{
    /// <summary>
    /// Writes the columns of one image <paramref name="x"/> (<c>channels x spatial</c>, row-major) into <paramref name="cols"/>;
    /// positions that fall in the padding become 0.
    /// </summary>
    /// <param name="x">The image, at least <c>channels * product(spatial)</c> elements.</param>
    /// <param name="channels">The number of channels.</param>
    /// <param name="spatial">The image's spatial sizes, one per axis of <paramref name="g"/>.</param>
    /// <param name="g">The window; its groups are ignored.</param>
    /// <param name="cols">The column matrix, at least <c>channels * taps * outputs</c> elements; only that prefix is written.</param>
    /// <exception cref="ShapeException">The window does not fit the image, or a buffer is too small.</exception>
    public static void Unfold(ReadOnlySpan<float> x, int channels, IReadOnlyList<int> spatial, ConvGeometry g, Span<float> cols)
    {
        var p = new WindowPlan(spatial, g, "ImToCol.Unfold");
        CheckSizes(x.Length, cols.Length, channels, p, "ImToCol.Unfold", "image");
        Unfold(x, channels, p, cols);
    }

    /// <summary>
    /// Adds the columns <paramref name="cols"/> back into the image gradient <paramref name="dx"/> (<c>channels x spatial</c>):
    /// the adjoint of <see cref="Unfold(ReadOnlySpan{float}, int, IReadOnlyList{int}, ConvGeometry, Span{float})"/>.
    /// Overlapping windows sum; entries that fall in the padding are dropped.
    /// </summary>
    /// <param name="cols">The column matrix, at least <c>channels * taps * outputs</c> elements.</param>
    /// <param name="channels">The number of channels.</param>
    /// <param name="spatial">The image's spatial sizes, one per axis of <paramref name="g"/>.</param>
    /// <param name="g">The window; its groups are ignored.</param>
    /// <param name="dx">The image to add into, at least <c>channels * product(spatial)</c> elements.</param>
    /// <exception cref="ShapeException">The window does not fit the image, or a buffer is too small.</exception>
    public static void FoldAdd(ReadOnlySpan<float> cols, int channels, IReadOnlyList<int> spatial, ConvGeometry g, Span<float> dx)
    {
        var p = new WindowPlan(spatial, g, "ImToCol.FoldAdd");
        CheckSizes(dx.Length, cols.Length, channels, p, "ImToCol.FoldAdd", "image gradient");
        FoldAdd(cols, channels, p, dx);
    }

    // The loops below skip tiered compilation (AggressiveOptimization): their first, unoptimised tier calls a helper for every
    // vector operation and ran 6x slower, long enough to show in a short run or a benchmark's warm-up.
    // They index through refs without bounds checks: every caller has checked that x (or dx) holds
    // channels * InSize elements and cols channels * Taps * OutSize (CheckSizes, or the kernels' shape checks), and
    // WindowPlan.Outputs keeps every index inside the image. A copied row is a few dozen floats, so span slicing and a
    // library call per row cost as much as the copy: against the span-per-row version this took unfold 1.6-1.8x and
    // fold-add 1.7-2.5x faster (28x28 5x5, 12x12 3x3 padded, 32x32 3x3 stride 2).
    internal static void Unfold(ReadOnlySpan<float> x, int channels, in WindowPlan p, Span<float> cols) =>
        UnfoldRange(x, channels, p, 0, p.OutSize, cols, p.OutSize, 0);

    internal static void FoldAdd(ReadOnlySpan<float> cols, int channels, in WindowPlan p, Span<float> dx) =>
        FoldAddRange(cols, p.OutSize, 0, channels, p, 0, p.OutSize, dx);

    /// <summary>
    /// Writes output positions <c>[q0, q1)</c> of one image's column matrix: row r, position q goes to
    /// <c>cols[r * ld + offset + q - q0]</c>. With <c>[0, OutSize)</c>, <c>ld = OutSize</c> and offset 0 this is
    /// <see cref="Unfold(ReadOnlySpan{float}, int, in WindowPlan, Span{float})"/>; with a wider <paramref name="ld"/> several
    /// images (or parts of them) share one column matrix, so the GEMM that consumes it sees one block of columns that fits in
    /// the cache, whatever the image size.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void UnfoldRange(ReadOnlySpan<float> x, int channels, in WindowPlan p, int q0, int q1, Span<float> cols, int ld, int offset)
    {
        if (q1 <= q0) return;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float cs = ref MemoryMarshal.GetReference(cols);
        int ow = p.OutW, inW = p.InW, inHW = p.InH * inW, sw = p.SW;
        // The range is a partial first line, whole lines, and a partial last line.
        int head = q0 % ow == 0 ? 0 : Math.Min(q1, (q0 / ow + 1) * ow) - q0;
        int lineFirst = (q0 + head) / ow, lineEnd = lineFirst + (q1 - q0 - head) / ow;
        int tail = q1 - q0 - head - (lineEnd - lineFirst) * ow;
        int row = 0;
        for (int ch = 0; ch < channels; ch++)
        {
            int plane = ch * p.InSize;
            for (int kd = 0; kd < p.KD; kd++)
            {
                int offD = kd * p.DD - p.PD;
                var (dLo, dHi) = WindowPlan.Outputs(p.InD, p.OutD, p.SD, offD);
                for (int kh = 0; kh < p.KH; kh++)
                {
                    int offH = kh * p.DH - p.PH;
                    var (hLo, hHi) = WindowPlan.Outputs(p.InH, p.OutH, p.SH, offH);
                    for (int kw = 0; kw < p.KW; kw++, row++)
                    {
                        int offW = kw * p.DW - p.PW;
                        var (wLo, wHi) = WindowPlan.Outputs(inW, ow, sw, offW);
                        var tap = new Tap(plane + offD * inHW + offH * inW + offW, dLo, dHi, hLo, hHi, wLo, wHi);
                        int d = row * ld + offset;
                        if (head > 0)
                        {
                            UnfoldLine(ref xs, ref Unsafe.Add(ref cs, d), p, tap, q0 / ow, q0 % ow, q0 % ow + head);
                            d += head;
                        }
                        int run = wHi - wLo, srcStep = p.SH * inW;
                        bool edges = wLo > 0 || wHi < ow;
                        for (int line = lineFirst; line < lineEnd;)
                        {
                            // The lines of one output depth plane: padding rows above and below, and the rows that read the image.
                            int od = line / p.OutH, oh = line - od * p.OutH, ohEnd = Math.Min(p.OutH, oh + (lineEnd - line));
                            int lines = ohEnd - oh;
                            if (run <= 0 || od < dLo || od >= dHi)
                            {
                                Zero(ref Unsafe.Add(ref cs, d), lines * ow);
                                d += lines * ow;
                            }
                            else
                            {
                                int a = Math.Clamp(hLo, oh, ohEnd), b = Math.Clamp(hHi, a, ohEnd);
                                Zero(ref Unsafe.Add(ref cs, d), (a - oh) * ow);
                                d += (a - oh) * ow;
                                int src = tap.Base + od * p.SD * inHW + a * srcStep + wLo * sw;
                                for (int h = a; h < b; h++, src += srcStep, d += ow)
                                {
                                    if (edges)
                                    {
                                        Zero(ref Unsafe.Add(ref cs, d), wLo);
                                        Zero(ref Unsafe.Add(ref cs, d + wHi), ow - wHi);
                                    }
                                    if (sw == 1) Copy(ref Unsafe.Add(ref cs, d + wLo), ref Unsafe.Add(ref xs, src), run);
                                    else Gather(ref Unsafe.Add(ref cs, d + wLo), ref Unsafe.Add(ref xs, src), run, sw);
                                }
                                Zero(ref Unsafe.Add(ref cs, d), (ohEnd - b) * ow);
                                d += (ohEnd - b) * ow;
                            }
                            line += lines;
                        }
                        if (tail > 0) UnfoldLine(ref xs, ref Unsafe.Add(ref cs, d), p, tap, lineEnd, 0, tail);
                    }
                }
            }
        }
    }

    /// <summary>
    /// One tap (a row of the column matrix): where it reads the image for output (0, 0, 0) and which outputs read the image
    /// rather than padding along each axis.
    /// </summary>
    private readonly record struct Tap(int Base, int DLo, int DHi, int HLo, int HHi, int WLo, int WHi);

    /// <summary>Outputs [owStart, owEnd) of output line <paramref name="line"/> (depth-major) for one tap, written from dst on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void UnfoldLine(ref float xs, ref float dst, in WindowPlan p, in Tap t, int line, int owStart, int owEnd)
    {
        int od = line / p.OutH, oh = line - od * p.OutH;
        int a = Math.Max(owStart, t.WLo), b = Math.Min(owEnd, t.WHi);
        if (a >= b || od < t.DLo || od >= t.DHi || oh < t.HLo || oh >= t.HHi)
        {
            Zero(ref dst, owEnd - owStart);
            return;
        }
        Zero(ref dst, a - owStart);
        int src = t.Base + od * p.SD * p.InH * p.InW + oh * p.SH * p.InW + a * p.SW;
        if (p.SW == 1) Copy(ref Unsafe.Add(ref dst, a - owStart), ref Unsafe.Add(ref xs, src), b - a);
        else Gather(ref Unsafe.Add(ref dst, a - owStart), ref Unsafe.Add(ref xs, src), b - a, p.SW);
        Zero(ref Unsafe.Add(ref dst, b - owStart), owEnd - b);
    }

    /// <summary>
    /// The adjoint of <see cref="UnfoldRange"/>: adds output positions <c>[q0, q1)</c> of a column matrix laid out as there
    /// (row r, position q at <c>cols[r * ld + offset + q - q0]</c>) into one image's gradient <paramref name="dx"/>.
    /// Folding a block of columns right after the GEMM that wrote it reads them while they are still in the cache: col2im
    /// fused with the accumulation into dx, instead of a whole image's columns written out and read back.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void FoldAddRange(ReadOnlySpan<float> cols, int ld, int offset, int channels, in WindowPlan p, int q0, int q1, Span<float> dx)
    {
        if (q1 <= q0) return;
        ref float xs = ref MemoryMarshal.GetReference(dx);
        ref float cs = ref MemoryMarshal.GetReference(cols);
        int ow = p.OutW, inW = p.InW, inHW = p.InH * inW, sw = p.SW;
        int head = q0 % ow == 0 ? 0 : Math.Min(q1, (q0 / ow + 1) * ow) - q0;
        int lineFirst = (q0 + head) / ow, lineEnd = lineFirst + (q1 - q0 - head) / ow;
        int tail = q1 - q0 - head - (lineEnd - lineFirst) * ow;
        if (head == 0 && tail == 0 && FoldRows.Covers(p))
        {
            unsafe
            {
                fixed (float* c = cols, d = dx) FoldRows.Add(c, ld, offset, channels, p, lineFirst, lineEnd, d);
            }
            return;
        }
        int row = 0;
        for (int ch = 0; ch < channels; ch++)
        {
            int plane = ch * p.InSize;
            for (int kd = 0; kd < p.KD; kd++)
            {
                int offD = kd * p.DD - p.PD;
                var (dLo, dHi) = WindowPlan.Outputs(p.InD, p.OutD, p.SD, offD);
                for (int kh = 0; kh < p.KH; kh++)
                {
                    int offH = kh * p.DH - p.PH;
                    var (hLo, hHi) = WindowPlan.Outputs(p.InH, p.OutH, p.SH, offH);
                    for (int kw = 0; kw < p.KW; kw++, row++)
                    {
                        int offW = kw * p.DW - p.PW;
                        var (wLo, wHi) = WindowPlan.Outputs(inW, ow, sw, offW);
                        int run = wHi - wLo;
                        if (run <= 0 || dLo >= dHi || hLo >= hHi) continue;
                        var tap = new Tap(plane + offD * inHW + offH * inW + offW, dLo, dHi, hLo, hHi, wLo, wHi);
                        int c = row * ld + offset;
                        if (head > 0)
                        {
                            FoldLine(ref xs, ref Unsafe.Add(ref cs, c), p, tap, q0 / ow, q0 % ow, q0 % ow + head);
                            c += head;
                        }
                        int dstStep = p.SH * inW;
                        for (int line = lineFirst; line < lineEnd;)
                        {
                            int od = line / p.OutH, oh = line - od * p.OutH, ohEnd = Math.Min(p.OutH, oh + (lineEnd - line));
                            int lines = ohEnd - oh;
                            if (od >= dLo && od < dHi)
                            {
                                int a = Math.Clamp(hLo, oh, ohEnd), b = Math.Clamp(hHi, a, ohEnd);
                                int dst = tap.Base + od * p.SD * inHW + a * dstStep + wLo * sw;
                                int cc = c + (a - oh) * ow + wLo;
                                for (int h = a; h < b; h++, dst += dstStep, cc += ow)
                                {
                                    if (sw == 1) AddTo(ref Unsafe.Add(ref xs, dst), ref Unsafe.Add(ref cs, cc), run);
                                    else ScatterAdd(ref Unsafe.Add(ref xs, dst), ref Unsafe.Add(ref cs, cc), run, sw);
                                }
                            }
                            c += lines * ow;
                            line += lines;
                        }
                        if (tail > 0) FoldLine(ref xs, ref Unsafe.Add(ref cs, c), p, tap, lineEnd, 0, tail);
                    }
                }
            }
        }
    }

    /// <summary>Adds outputs [owStart, owEnd) of output line <paramref name="line"/> for one tap, read from src on, into the image.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FoldLine(ref float xs, ref float src, in WindowPlan p, in Tap t, int line, int owStart, int owEnd)
    {
        int od = line / p.OutH, oh = line - od * p.OutH;
        int a = Math.Max(owStart, t.WLo), b = Math.Min(owEnd, t.WHi);
        if (a >= b || od < t.DLo || od >= t.DHi || oh < t.HLo || oh >= t.HHi) return;
        int dst = t.Base + od * p.SD * p.InH * p.InW + oh * p.SH * p.InW + a * p.SW;
        if (p.SW == 1) AddTo(ref Unsafe.Add(ref xs, dst), ref Unsafe.Add(ref src, a - owStart), b - a);
        else ScatterAdd(ref Unsafe.Add(ref xs, dst), ref Unsafe.Add(ref src, a - owStart), b - a, p.SW);
    }

    /// <summary>
    /// Copies n floats. Runs are short (an output row: a few to a few dozen floats), so the tail is one more vector that
    /// overlaps the last full one rather than a scalar loop: rewriting a few floats with the same values is harmless.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Copy(ref float dst, ref float src, int n)
    {
        if (n >= Vector512<float>.Count)
        {
            int last = n - Vector512<float>.Count;
            for (int i = 0; i < last; i += Vector512<float>.Count)
                Vector512.LoadUnsafe(ref src, (nuint)i).StoreUnsafe(ref dst, (nuint)i);
            Vector512.LoadUnsafe(ref src, (nuint)last).StoreUnsafe(ref dst, (nuint)last);
        }
        else if (n >= Vector256<float>.Count)
        {
            Vector256.LoadUnsafe(ref src).StoreUnsafe(ref dst);
            Vector256.LoadUnsafe(ref src, (nuint)(n - Vector256<float>.Count)).StoreUnsafe(ref dst, (nuint)(n - Vector256<float>.Count));
        }
        else if (n >= Vector128<float>.Count)
        {
            Vector128.LoadUnsafe(ref src).StoreUnsafe(ref dst);
            Vector128.LoadUnsafe(ref src, (nuint)(n - Vector128<float>.Count)).StoreUnsafe(ref dst, (nuint)(n - Vector128<float>.Count));
        }
        else
            for (int i = 0; i < n; i++) Unsafe.Add(ref dst, i) = Unsafe.Add(ref src, i);
    }

    /// <summary>dst[i] += src[i] for i &lt; n: whole vectors, then halves and quarters of one, then at most three scalars.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddTo(ref float dst, ref float src, int n)
    {
        int i = 0;
        for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            (Vector512.LoadUnsafe(ref dst, (nuint)i) + Vector512.LoadUnsafe(ref src, (nuint)i)).StoreUnsafe(ref dst, (nuint)i);
        if (i <= n - Vector256<float>.Count)
        {
            (Vector256.LoadUnsafe(ref dst, (nuint)i) + Vector256.LoadUnsafe(ref src, (nuint)i)).StoreUnsafe(ref dst, (nuint)i);
            i += Vector256<float>.Count;
        }
        if (i <= n - Vector128<float>.Count)
        {
            (Vector128.LoadUnsafe(ref dst, (nuint)i) + Vector128.LoadUnsafe(ref src, (nuint)i)).StoreUnsafe(ref dst, (nuint)i);
            i += Vector128<float>.Count;
        }
        for (; i < n; i++) Unsafe.Add(ref dst, i) += Unsafe.Add(ref src, i);
    }

    /// <summary><c>dst[i] = src[i * stride]</c> for i &lt; n. Stride 2 (downsampling layers) takes 16 at a time with AVX-512.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void Gather(ref float dst, ref float src, int n, int stride)
    {
        if (stride == 2 && Avx512F.IsSupported)
        {
            // Masked loads read only the elements the outputs need (2*count - 1 of them), so nothing past the run is touched.
            fixed (float* d = &dst, s = &src)
                for (int i = 0; i < n; i += 16)
                {
                    int count = Math.Min(16, n - i), need = 2 * count - 1;
                    var lo = Avx512F.MaskLoad(s + 2 * i, Lanes(Math.Min(16, need)), Vector512<float>.Zero);
                    var hi = need > 16 ? Avx512F.MaskLoad(s + 2 * i + 16, Lanes(need - 16), Vector512<float>.Zero) : Vector512<float>.Zero;
                    var v = Avx512F.PermuteVar16x32x2(lo, EvenLanes(), hi);
                    if (count == 16) Vector512.Store(v, d + i);
                    else Avx512F.MaskStore(d + i, Lanes(count), v);
                }
            return;
        }
        for (int i = 0; i < n; i++) Unsafe.Add(ref dst, i) = Unsafe.Add(ref src, (nint)i * stride);
    }

    /// <summary>
    /// <c>dst[i * stride] += src[i]</c> for i &lt; n: each element of dst gets one addition, so the vector path for stride 2
    /// (masked to the even lanes it writes) gives the scalar loop's results.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void ScatterAdd(ref float dst, ref float src, int n, int stride)
    {
        if (stride == 2 && Avx512F.IsSupported)
        {
            fixed (float* d = &dst, s = &src)
                for (int i = 0; i < n; i += 16)
                {
                    int count = Math.Min(16, n - i), need = 2 * count - 1;
                    var v = count == 16 ? Vector512.Load(s + i) : Avx512F.MaskLoad(s + i, Lanes(count), Vector512<float>.Zero);
                    var loMask = EvenMask() & Lanes(Math.Min(16, need));
                    float* lo = d + 2 * i;
                    Avx512F.MaskStore(lo, loMask, Avx512F.MaskLoad(lo, loMask, Vector512<float>.Zero) + Vector512.Shuffle(v, SpreadLow()));
                    if (need > 16)
                    {
                        var hiMask = EvenMask() & Lanes(need - 16);
                        Avx512F.MaskStore(lo + 16, hiMask, Avx512F.MaskLoad(lo + 16, hiMask, Vector512<float>.Zero) + Vector512.Shuffle(v, SpreadHigh()));
                    }
                }
            return;
        }
        for (int i = 0; i < n; i++) Unsafe.Add(ref dst, (nint)i * stride) += Unsafe.Add(ref src, i);
    }

    /// <summary>A mask of the first <paramref name="count"/> lanes (all bits set in a lane selects it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Lanes(int count) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    // The constant vectors below are computed where they are used, not read from static fields: these methods skip tiered
    // compilation, so they can be compiled before the type is initialised, and would then check the initialisation at
    // every use (measured, in the staging of ConvColumns: 1.6x slower with static readonly vectors).

    /// <summary>Lanes 0, 2, ..., 30 of two concatenated vectors (also max pooling's stride-2 gather).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<int> EvenLanes() => Vector512<int>.Indices * 2;

    /// <summary>The even lanes of a vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> EvenMask() => Vector512.Equals(Vector512<int>.Indices & Vector512.Create(1), Vector512<int>.Zero).AsSingle();

    /// <summary>Lane 2j takes element j (j &lt; 8), and lane 2j + 1 too (masked out): the first half spread to the even lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> SpreadLow() => Vector512<int>.Indices >> 1;

    /// <summary>The second half spread to the even lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> SpreadHigh() => (Vector512<int>.Indices >> 1) + Vector512.Create(8);

    /// <summary>Zeroes n floats; padding runs are usually a float or two, a whole padded row now and then.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Zero(ref float dst, int n)
    {
        if (n >= Vector512<float>.Count)
        {
            MemoryMarshal.CreateSpan(ref dst, n).Clear();
            return;
        }
        for (int i = 0; i < n; i++) Unsafe.Add(ref dst, i) = 0f;
    }

    private static void CheckSizes(int imageLength, int colsLength, int channels, in WindowPlan p, string op, string image)
    {
        if (channels < 1) throw new ShapeException($"{op}: expected at least 1 channel; found {channels}.");
        long need = (long)channels * p.InSize, colNeed = (long)channels * p.Taps * p.OutSize;
        if (imageLength < need)
            throw new ShapeException($"{op}: the {image} needs {channels} x {p.InSize} = {need} elements; found {imageLength}.");
        if (colsLength < colNeed)
            throw new ShapeException($"{op}: the column matrix needs {channels * p.Taps} x {p.OutSize} = {colNeed} elements; found {colsLength}.");
    }
}
