using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// The Goto/BLIS loop nest over one rectangle of C: NC columns of B > KC (<see cref="GemmDepth"/>) deep (pack B into NR-wide panels)
/// > MC rows of A (pack A into MR-tall panels) > NR x MR micro-tiles, B's panel or A's outermost of the two inner loops
/// (<see cref="IGemmKernel.APanelResident"/>). Packing absorbs all four transpose
/// cases and zero-pads the edges, so the micro-kernel sees a single layout. Hot methods skip tiered
/// compilation: their unoptimised first tier (calls for every vector load) would otherwise run for the
/// first hundreds of products.
/// </summary>
internal static unsafe class GemmDriver<TK> where TK : struct, IGemmKernel
{
    /// <summary>Computes rows [m0, m1) x columns [n0, n1) of C on the calling thread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(in GemmJob job, int m0, int m1, int n0, int n1)
    {
        int mr = TK.MR, nr = TK.NR, k = job.K;
        int kc = GemmDepth.Block(k);
        int mRange = m1 - m0, mcBlocks = CeilDiv(mRange, TK.MC);
        int mc = Math.Min(RoundUp(CeilDiv(mRange, mcBlocks), mr), TK.MC);

        // Workspaces are sized for the whole product, not this thread's range, so that a caller who takes back
        // the worker's range (of another size) never grows them after the first call: no steady-state allocation.
        var buffers = GemmPackBuffers.Current;
        float* pa = buffers.A(Math.Min(TK.MC, RoundUp(job.M, mr)) * kc);
        bool packed = job.PackedB != null;
        float* pb = packed ? null : buffers.B(Math.Min(TK.NC, RoundUp(job.N, nr)) * kc);
        nint ldc = job.N, nRound = RoundUp(job.N, nr);

        for (int jc = n0; jc < n1; jc += TK.NC)
        {
            int nc = Math.Min(TK.NC, n1 - jc);
            for (int pc = 0; pc < k; pc += kc)
            {
                int kb = Math.Min(kc, k - pc);
                bool load = job.Accumulate || pc > 0;
                // Packed beforehand: depth block pc starts after pc full-width steps, the panel of column jc at jc * kb.
                float* bBlock = packed ? job.PackedB + (nint)pc * nRound + (nint)jc * kb : pb;
                if (!packed) PackB(job, pc, kb, jc, nc, pb);
                for (int ic = m0; ic < m1; ic += mc)
                {
                    int mb = Math.Min(mc, m1 - ic);
                    PackA(job, ic, mb, pc, kb, pa);
                    if (TK.APanelResident)
                        for (int ir = 0; ir < mb; ir += mr)
                        {
                            float* aPanel = pa + (nint)ir * kb, cRow = job.C + (ic + ir) * ldc + jc;
                            int rows = Math.Min(mr, mb - ir);
                            for (int jr = 0; jr < nc; jr += nr)
                                TK.TileBeforeNext(kb, aPanel, bBlock + (nint)jr * kb, cRow + jr, ldc, rows, Math.Min(nr, nc - jr), load);
                        }
                    else
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            float* bPanel = bBlock + (nint)jr * kb;
                            int cols = Math.Min(nr, nc - jr);
                            float* cTile = job.C + ic * ldc + jc + jr;
                            for (int ir = 0; ir < mb; ir += mr)
                                TK.Tile(kb, pa + (nint)ir * kb, bPanel, cTile + ir * ldc, ldc, Math.Min(mr, mb - ir), cols, load);
                        }
                }
            }
        }
    }

    /// <summary>Packs op(A)[ic..ic+mb, pc..pc+kb] as MR-tall panels, each kb steps of MR contiguous floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(in GemmJob job, int ic, int mb, int pc, int kb, float* dst)
    {
        int mr = TK.MR;
        for (int ir = 0; ir < mb; ir += mr, dst += (nint)mr * kb)
        {
            int rows = Math.Min(mr, mb - ir);
            if (job.TransA) PackRows(job.A + (nint)pc * job.M + ic + ir, job.M, kb, rows, mr, dst);
            else PackTransposed(job.A + (nint)(ic + ir) * job.K + pc, job.K, rows, kb, mr, dst);
        }
    }

    /// <summary>
    /// Packs all of op(B) for <see cref="Run"/> with <see cref="GemmJob.PackedB"/>: depth block after depth block
    /// (<see cref="GemmDepth"/>), each as <see cref="PackB"/> lays out the whole width; <see cref="PackedLength"/> floats.
    /// </summary>
    public static void PackWhole(in GemmJob job, float* dst)
    {
        int kc = GemmDepth.Block(job.K), nRound = RoundUp(job.N, TK.NR);
        for (int pc = 0; pc < job.K; pc += kc)
            PackB(job, pc, Math.Min(kc, job.K - pc), 0, job.N, dst + (nint)pc * nRound);
    }

    /// <summary>Floats of <see cref="PackWhole"/>'s layout for a k x n operand.</summary>
    public static long PackedLength(int k, int n) => (long)k * RoundUp(n, TK.NR);

    /// <summary>Packs op(B)[pc..pc+kb, jc..jc+nc] as NR-wide panels, each kb steps of NR contiguous floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(in GemmJob job, int pc, int kb, int jc, int nc, float* dst)
    {
        int nr = TK.NR;
        if (!job.TransB && typeof(TK) != typeof(GemmKernelScalar))
        {
            // Whole panels row by row: each row of B is read once, front to back, which the hardware prefetches, rather
            // than NR floats of it per panel (a stride of a whole row from one load to the next). Measured on the Xeon
            // (32-wide panels): 0.22-0.26 against 0.27-0.30 ns a float for 1024- and 2048-wide operands.
            int whole = nc / nr * nr;
            PanelRows(job.B + (nint)pc * job.N + jc, job.N, kb, whole, dst);
            jc += whole;
            nc -= whole;
            dst += (nint)whole * kb;
        }
        for (int jr = 0; jr < nc; jr += nr, dst += (nint)nr * kb)
        {
            int cols = Math.Min(nr, nc - jr);
            if (job.TransB) PackTransposed(job.B + (nint)(jc + jr) * job.K + pc, job.K, cols, kb, nr, dst);
            else PackRows(job.B + (nint)pc * job.N + jc + jr, job.N, kb, cols, nr, dst);
        }
    }

    /// <summary>
    /// Rows <c>[0, count)</c> of <paramref name="width"/> columns (a multiple of NR) as NR-wide panels of count rows: 32-wide
    /// by two zmm for the AVX-512 kernel, 16-wide by two ymm for the AVX2 one (NR is a constant to the JIT, so each kernel's
    /// copy keeps only its own loads).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelRows(float* src, nint ld, int count, int width, float* dst)
    {
        int nr = TK.NR;
        nint panel = (nint)nr * count;
        for (int p = 0; p < count; p++, src += ld)
        {
            float* d = dst + (nint)p * nr;
            for (int j = 0; j < width; j += nr, d += panel)
                if (nr == 32)
                {
                    Vector512.Store(Vector512.Load(src + j), d);
                    Vector512.Store(Vector512.Load(src + j + 16), d + 16);
                }
                else
                {
                    Vector256.Store(Vector256.Load(src + j), d);
                    Vector256.Store(Vector256.Load(src + j + 8), d + 8);
                }
        }
    }

    /// <summary><c>dst[p * w + i] = src[p * ld + i]</c> for i &lt; width, zero up to w.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackRows(float* src, nint ld, int count, int width, int w, float* dst)
    {
        if (width == w && w % 4 == 0)
        {
            for (int p = 0; p < count; p++, src += ld, dst += w)
                for (int i = 0; i < w; i += 4)
                    Vector128.Store(Vector128.Load(src + i), dst + i);
            return;
        }
        new Span<float>(dst, count * w).Clear();
        for (int p = 0; p < count; p++, src += ld, dst += w)
            new ReadOnlySpan<float>(src, width).CopyTo(new Span<float>(dst, width));
    }

    /// <summary>
    /// <c>dst[p * w + i] = src[i * ld + p]</c> for i &lt; width, zero up to w: by <see cref="PanelTranspose"/>'s 16x16 register
    /// transposes for the AVX-512 kernel's panels, else by 4x4 ones.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackTransposed(float* src, nint ld, int width, int count, int w, float* dst)
    {
        if (typeof(TK) == typeof(GemmKernel512) && PanelTranspose.Covers(w)) PanelTranspose.Pack(src, ld, width, count, w, dst);
        else PackTransposedBy4(src, ld, width, count, w, dst);
    }

    /// <summary><see cref="PackTransposed"/> by 4x4 SSE transposes (or element by element): every CPU's path, and the reference
    /// <see cref="PanelTranspose"/> is tested against.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackTransposedBy4(float* src, nint ld, int width, int count, int w, float* dst)
    {
        if (width < w) new Span<float>(dst, count * w).Clear();
        int i = 0;
        // 4x4 register transposes: reads stay sequential along each source row. (8x8 AVX blocks measured no faster.)
        if (Sse.IsSupported)
        {
            for (; i + 4 <= width; i += 4)
                Transpose4(src + i * ld, ld, count, w, dst + i);
            // The last two rows of a 6-tall panel (the AVX2 kernel's A): pairs of 64-bit stores, not float by float.
            if (i + 2 <= width)
            {
                Transpose2(src + i * ld, ld, count, w, dst + i);
                i += 2;
            }
        }
        for (; i < width; i++)
        {
            float* s = src + i * ld;
            for (int p = 0; p < count; p++) dst[(nint)p * w + i] = s[p];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose4(float* src, nint ld, int count, int w, float* dst)
    {
        int p = 0;
        for (; p + 4 <= count; p += 4)
        {
            float* s = src + p;
            var r0 = Sse.LoadVector128(s);
            var r1 = Sse.LoadVector128(s + ld);
            var r2 = Sse.LoadVector128(s + 2 * ld);
            var r3 = Sse.LoadVector128(s + 3 * ld);
            var t0 = Sse.UnpackLow(r0, r1);
            var t1 = Sse.UnpackLow(r2, r3);
            var t2 = Sse.UnpackHigh(r0, r1);
            var t3 = Sse.UnpackHigh(r2, r3);
            float* d = dst + (nint)p * w;
            Sse.Store(d, Sse.MoveLowToHigh(t0, t1));
            Sse.Store(d + w, Sse.MoveHighToLow(t1, t0));
            Sse.Store(d + 2 * w, Sse.MoveLowToHigh(t2, t3));
            Sse.Store(d + 3 * w, Sse.MoveHighToLow(t3, t2));
        }
        for (; p < count; p++)
            for (int r = 0; r < 4; r++)
                dst[(nint)p * w + r] = src[r * ld + p];
    }

    /// <summary>Two source rows into two columns of the panel: four steps at a time by an unpack and 64-bit stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose2(float* src, nint ld, int count, int w, float* dst)
    {
        int p = 0;
        for (; p + 4 <= count; p += 4)
        {
            var r0 = Sse.LoadVector128(src + p);
            var r1 = Sse.LoadVector128(src + ld + p);
            var lo = Sse.UnpackLow(r0, r1);
            var hi = Sse.UnpackHigh(r0, r1);
            float* d = dst + (nint)p * w;
            Sse.StoreLow(d, lo);
            Sse.StoreHigh(d + w, lo);
            Sse.StoreLow(d + 2 * w, hi);
            Sse.StoreHigh(d + 3 * w, hi);
        }
        for (; p < count; p++)
        {
            dst[(nint)p * w] = src[p];
            dst[(nint)p * w + 1] = src[ld + p];
        }
    }

    private static int CeilDiv(int x, int y) => (x + y - 1) / y;

    private static int RoundUp(int x, int y) => CeilDiv(x, y) * y;
}

/// <summary>
/// How every path cuts the inner dimension: into equal blocks of at most <see cref="MaxBlock"/> steps, each summed by
/// one fused multiply-add chain from zero in k order, the blocks' sums added to C in order (as ONNX Runtime's MLAS
/// kernels do). This fixes each element's summation order, so the result does not depend on the instruction set, the
/// thread split or the tile an element lands in (the small-product kernels with B not transposed follow it too), and it
/// keeps float32 chains short: the rounding error of one chain grows with its length. Summed as one chain, VGG-16's
/// first dense layer (25,088 inputs, batch 7) was 7x further from a float64 reference than ONNX Runtime (rms 5.2e-6
/// against 0.7e-6), and the network's outputs missed ONNX Runtime's by 1.8x the export tests' tolerance; in blocks it
/// is as close as ONNX Runtime (0.7e-6). Free: the block's load of C moves from before the loop to after it.
/// </summary>
internal static class GemmDepth
{
    /// <summary>The most steps in one block: a KC x NR panel of packed B stays in L1 for every kernel.</summary>
    public const int MaxBlock = 256;

    /// <summary>
    /// The block length for depth <paramref name="k"/>: equal-sized blocks, since a last block of a few steps would pay
    /// a full load and store of C for little work.
    /// </summary>
    public static int Block(int k)
    {
        int blocks = Math.Max(1, (k + MaxBlock - 1) / MaxBlock);
        return (k + blocks - 1) / blocks;
    }
}
