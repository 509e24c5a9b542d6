using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// col2im's fold of whole output lines for 2-d stride-1 windows, an image row at a time: each row of the gradient is loaded
/// once per kernel row, every tap along the width is added to it in registers (masked: lanes a tap does not reach are left
/// as they are), and it is stored once. <see cref="ImToCol.FoldAddRange"/> adds tap after tap, each as a read-modify-write of
/// a row a few floats to the side of the one before, short runs (lenet5's second layer: 10 floats) that cost a full vector
/// operation and scalar tails, and whose stores the next tap's loads overlap. The additions into each element are the same
/// and in the same order (taps in row order: kernel row, then kernel column), so the bits are those of the tap-by-tap fold.
/// </summary>
internal static unsafe class FoldRows
{
    /// <summary>Whether <see cref="Add"/> covers a window: AVX-512, two spatial axes, stride 1 along the width.</summary>
    public static bool Covers(in WindowPlan p) => ColumnPacker.Vectorized && ConvColumns.Covers(p) && p.SW == 1;

    /// <summary>
    /// Adds output lines <c>[lineFirst, lineEnd)</c> of the column matrix (row r, position q at
    /// <c>cols[r * ld + offset + q - lineFirst * OutW]</c>) into one image's gradient <paramref name="dx"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Add(float* cols, int ld, int offset, int channels, in WindowPlan p, int lineFirst, int lineEnd, float* dx)
    {
        int ow = p.OutW, inW = p.InW, kw = p.KW, chunks = (inW + 15) / 16;
        // Per tap along the width and 16-column chunk of an image row: the lanes whose columns the tap reaches (the same on
        // every row); per tap, where its element for image column x lies relative to the line's start (x less the tap's shift).
        var reach = stackalloc Vector512<float>[kw * chunks];
        var inside = stackalloc Vector512<float>[chunks];
        nint* from = stackalloc nint[kw];
        for (int c = 0; c < chunks; c++)
        {
            var x = Vector512<int>.Indices + Vector512.Create(16 * c);
            inside[c] = Vector512.LessThan(x, Vector512.Create(inW)).AsSingle();
            for (int j = 0; j < kw; j++)
            {
                int offW = j * p.DW - p.PW;
                var (wLo, wHi) = WindowPlan.Outputs(inW, ow, 1, offW);
                reach[j * chunks + c] = (Vector512.GreaterThanOrEqual(x, Vector512.Create(wLo + offW)) &
                    Vector512.LessThan(x, Vector512.Create(Math.Max(wLo, wHi) + offW))).AsSingle();
                from[j] = (nint)j * ld - offW;
            }
        }
        for (int ch = 0; ch < channels; ch++)
        {
            float* plane = dx + (nint)ch * p.InH * inW;
            for (int kh = 0; kh < p.KH; kh++)
            {
                int offH = kh * p.DH - p.PH, row0 = (ch * p.KH + kh) * kw;
                var (hLo, hHi) = WindowPlan.Outputs(p.InH, p.OutH, p.SH, offH);
                int first = Math.Max(hLo, lineFirst), end = Math.Min(hHi, lineEnd);
                for (int h = first; h < end; h++)
                {
                    float* target = plane + (nint)(h * p.SH + offH) * inW;
                    // Output line h of the kernel row's first tap.
                    float* line = cols + (nint)row0 * ld + offset + (nint)(h - lineFirst) * ow;
                    for (int c = 0; c < chunks; c++)
                    {
                        int x0 = 16 * c;
                        var v = Avx512F.MaskLoad(target + x0, inside[c], Vector512<float>.Zero);
                        for (int j = 0; j < kw; j++)
                        {
                            var m = reach[j * chunks + c];
                            var t = Avx512F.MaskLoad(line + from[j] + x0, m, Vector512<float>.Zero);
                            v = Vector512.ConditionalSelect(m, v + t, v);
                        }
                        Avx512F.MaskStore(target + x0, inside[c], v);
                    }
                }
            }
        }
    }
}
