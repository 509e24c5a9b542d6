using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// The 2x2 stride-2 unpadded pooling window, the common one (LeNet-5, VGG, the Keras networks), on a kernel of its own:
/// sixteen windows a step from two 32-float loads of each of their two rows (eight from two 16-float loads with AVX2
/// alone), split into even and odd columns, reduced by <typeparamref name="TOp"/> in the window's row-major order with the
/// general kernel's arithmetic, so the bits are the general kernel's. On zmm a step's loads may run past its row (never past
/// the input) and its store is masked to the row's windows; on ymm the last step overlaps the one before instead.
/// </summary>
/// <typeparam name="TOp">The reduction of a window's four elements (a, b in its first row; c, d in its second).</typeparam>
internal static unsafe class Pool2x2<TOp> where TOp : struct, Pool2x2<TOp>.IOp
{
    /// <summary>A window's reduction, lane by lane and for one window.</summary>
    public interface IOp
    {
        static abstract Vector512<float> Reduce(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d);

        static abstract Vector256<float> Reduce(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d);

        static abstract float Reduce(float a, float b, float c, float d);
    }

    /// <summary>Whether the window is 2x2, stride 2, unpadded, with whole windows only.</summary>
    public static bool Fits(Window2d g, int h, int w, int oh, int ow) =>
        g is { KernelH: 2, KernelW: 2, StrideH: 2, StrideW: 2, PadH: 0, PadW: 0 } && 2 * oh <= h && 2 * ow <= w;

    /// <summary>Whether the kernel takes the window (<see cref="Fits"/>) on this CPU: AVX-512, or AVX2 with FMA.</summary>
    public static bool Covers(Window2d g, int h, int w, int oh, int ow) => Fits(g, h, w, oh, ow) && (KernelWidth.Wide || KernelWidth.Narrow);

    /// <summary>Pools planes <c>[start, end)</c> of <paramref name="x"/> (<c>h x w</c> each) into <paramref name="y"/> (<c>oh x ow</c> each).</summary>
    public static void Run(Tensor x, float[] y, int h, int w, int oh, int ow, int start, int end)
    {
        if (KernelWidth.Wide) Run512(x, y, h, w, oh, ow, start, end);
        else Run256(x, y, h, w, oh, ow, start, end);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run512(Tensor x, float[] y, int h, int w, int oh, int ow, int start, int end)
    {
        fixed (float* px = x.Span, py = y)
        {
            float* last = px + x.Size;
            var even = Vector512<int>.Indices * 2;
            var odd = even + Vector512<int>.One;
            for (int p = start; p < end; p++)
                for (int oy = 0; oy < oh; oy++)
                {
                    float* r0 = px + ((nint)p * h + 2 * oy) * w, r1 = r0 + w, o = py + ((nint)p * oh + oy) * ow;
                    int ox = 0;
                    for (; ox < ow && r1 + 2 * ox + 32 <= last; ox += 16)
                    {
                        var a0 = Vector512.Load(r0 + 2 * ox);
                        var a1 = Vector512.Load(r0 + 2 * ox + 16);
                        var b0 = Vector512.Load(r1 + 2 * ox);
                        var b1 = Vector512.Load(r1 + 2 * ox + 16);
                        var v = TOp.Reduce(Avx512F.PermuteVar16x32x2(a0, even, a1), Avx512F.PermuteVar16x32x2(a0, odd, a1),
                            Avx512F.PermuteVar16x32x2(b0, even, b1), Avx512F.PermuteVar16x32x2(b0, odd, b1));
                        int count = ow - ox;
                        if (count >= 16) v.Store(o + ox);
                        else Avx512F.MaskStore(o + ox, ImToCol.Lanes(count), v);
                    }
                    // The input's last rows, where 32 floats would run past it.
                    for (; ox < ow; ox++) o[ox] = TOp.Reduce(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]);
                }
        }
    }

    /// <summary>
    /// <see cref="Run512"/> on ymm: eight windows a step. The even and odd columns come out of an in-lane shuffle in the
    /// order of windows 0, 1, 4, 5, 2, 3, 6, 7, the same for all four operands, so the lane-wise reduction is put in
    /// order once, after it. A row's last windows take one more step ending at the row's end, overlapping the one before
    /// (the overlap gets the same values twice), and rows of four to seven windows steps of four, so that neither loads nor
    /// stores leave the row and no store is masked: those cost on AMD. Rows of one to three windows go one by one. Measured
    /// on one thread (loaded 2-core Zen 3), average pooling forward, fastest of 2000: N64 C6 28x28 36 us, N64 C16 10x10
    /// 26.5 us, against 57 and 42 us with the last step's store under a lane mask.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run256(Tensor x, float[] y, int h, int w, int oh, int ow, int start, int end)
    {
        fixed (float* px = x.Span, py = y)
            for (int p = start; p < end; p++)
                for (int oy = 0; oy < oh; oy++)
                {
                    float* r0 = px + ((nint)p * h + 2 * oy) * w, r1 = r0 + w, o = py + ((nint)p * oh + oy) * ow;
                    if (ow >= 8)
                    {
                        int ox = 0;
                        for (; ox + 8 <= ow; ox += 8) Step8(r0 + 2 * ox, r1 + 2 * ox, o + ox);
                        if (ox < ow) Step8(r0 + 2 * (ow - 8), r1 + 2 * (ow - 8), o + ow - 8);
                    }
                    else if (ow >= 4)
                    {
                        Step4(r0, r1, o);
                        Step4(r0 + 2 * (ow - 4), r1 + 2 * (ow - 4), o + ow - 4);
                    }
                    else
                        for (int ox = 0; ox < ow; ox++) o[ox] = TOp.Reduce(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]);
                }
    }

    /// <summary>Eight windows from sixteen floats of each row into <paramref name="o"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step8(float* r0, float* r1, float* o)
    {
        var a0 = Vector256.Load(r0);
        var a1 = Vector256.Load(r0 + 8);
        var b0 = Vector256.Load(r1);
        var b1 = Vector256.Load(r1 + 8);
        var v = TOp.Reduce(Avx.Shuffle(a0, a1, 0b10_00_10_00), Avx.Shuffle(a0, a1, 0b11_01_11_01),
            Avx.Shuffle(b0, b1, 0b10_00_10_00), Avx.Shuffle(b0, b1, 0b11_01_11_01));
        Avx2.Permute4x64(v.AsDouble(), 0b11_01_10_00).AsSingle().Store(o);
    }

    /// <summary>
    /// Four windows from eight floats of each row into <paramref name="o"/>: the shuffle of <see cref="Step8"/> with both
    /// operands one vector, which leaves windows 0, 1 in the low lane and 2, 3 in the high one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step4(float* r0, float* r1, float* o)
    {
        var a = Vector256.Load(r0);
        var b = Vector256.Load(r1);
        var v = TOp.Reduce(Avx.Shuffle(a, a, 0b10_00_10_00), Avx.Shuffle(a, a, 0b11_01_11_01),
            Avx.Shuffle(b, b, 0b10_00_10_00), Avx.Shuffle(b, b, 0b11_01_11_01));
        Avx2.Permute4x64(v.AsDouble(), 0b11_01_10_00).AsSingle().GetLower().Store(o);
    }
}
