using System.Runtime.CompilerServices;

namespace Cnn.Core.Kernels;

/// <summary>
/// Products with at most <see cref="GemmParallel.SmallRows"/> rows of C, such as a dense layer at batch 1. Their
/// cost is reading B, not multiplying: packing B first would cost as much as the whole product, so these kernels
/// read B in place.
/// With B not transposed each element is summed in the packed kernels' depth blocks and order, bit-identical to them.
/// With B transposed, rows of A and B are dotted along k: each of the vector's lanes keeps its own FMA chain and
/// the lanes are summed at the end, an order fixed by the vector width (so not the packed kernels' bits).
/// </summary>
internal static unsafe class GemmSmallM<TOps, TV> where TOps : struct, IVectorOps<TV> where TV : struct
{
    /// <summary>Computes columns [n0, n1) of C on the calling thread.</summary>
    public static void Run(in GemmJob job, int n0, int n1)
    {
        switch (job.M)
        {
            case 1: Run<Rows1>(job, n0, n1); break;
            case 2: Run<Rows2>(job, n0, n1); break;
            case 3: Run<Rows3>(job, n0, n1); break;
            default: Run<Rows4>(job, n0, n1); break;
        }
    }

    private static void Run<TR>(in GemmJob job, int n0, int n1) where TR : struct, IConstant
    {
        if (job.TransB) Dot<TR>(job, n0, n1);
        else Axpy<TR>(job, n0, n1);
    }

    /// <summary>C rows += A(i, p) * B row p, vectorised along the row: reads each row of B once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Axpy<TR>(in GemmJob job, int n0, int n1) where TR : struct, IConstant
    {
        int w = TOps.Width;
        // A(i, p) = a[i * rowStep + p * depthStep] in either layout.
        nint rowStep = job.TransA ? 1 : job.K, depthStep = job.TransA ? job.M : 1;
        var none = default(TV);
        int j = n0;
        // Tiles of six to eight accumulators whatever the row count: with fewer independent FMA chains the
        // kernel would wait on FMA latency (one row of two vectors ran at half the speed of old axpy code).
        if (TR.Value == 1)
            for (; j + 8 * w <= n1; j += 8 * w)
                AxpyTile<TR, Vectors8, Full>(job, rowStep, depthStep, j, none);
        else if (TR.Value == 2)
            for (; j + 4 * w <= n1; j += 4 * w)
                AxpyTile<TR, Vectors4, Full>(job, rowStep, depthStep, j, none);
        else
            for (; j + 2 * w <= n1; j += 2 * w)
                AxpyTile<TR, Vectors2, Full>(job, rowStep, depthStep, j, none);
        for (; j + w <= n1; j += w)
            AxpyTile<TR, Vectors1, Full>(job, rowStep, depthStep, j, none);
        if (j < n1)
            AxpyTile<TR, Vectors1, Masked>(job, rowStep, depthStep, j, TOps.Mask(n1 - j));
    }

    /// <summary>C(i, j) (+)= dot(A row i, B row j): both contiguous along k, so B is read once, in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot<TR>(in GemmJob job, int n0, int n1) where TR : struct, IConstant
    {
        int k = job.K;
        float* a = job.A;
        if (job.TransA)
        {
            // A is k x m: gather its few columns into rows once (m * k floats) from the thread's workspace.
            float* rows = GemmPackBuffers.Current.A(job.M * k);
            for (int p = 0; p < k; p++)
                for (int i = 0; i < job.M; i++)
                    rows[(nint)i * k + p] = job.A[(nint)p * job.M + i];
            a = rows;
        }
        float* sums = stackalloc float[8];
        nint ldc = job.N;
        for (int j = n0; j < n1; j += 2)
        {
            bool pair = j + 1 < n1;
            float* b0 = job.B + (nint)j * k;
            // An odd last row of B is dotted twice rather than needing a one-row variant; the copy is discarded.
            DotTile<TR>(k, a, b0, pair ? b0 + k : b0, sums);
            for (int i = 0; i < TR.Value; i++)
            {
                float* c = job.C + i * ldc + j;
                c[0] = job.Accumulate ? c[0] + sums[2 * i] : sums[2 * i];
                if (pair) c[1] = job.Accumulate ? c[1] + sums[2 * i + 1] : sums[2 * i + 1];
            }
        }
    }

    /// <summary>
    /// Columns [j, j + TVecs.Value * width) of C's TR rows. A masked tile is one vector whose lanes past the mask are
    /// neither read nor written. The depth is cut into the packed path's blocks (<see cref="GemmDepth"/>), each one
    /// FMA chain from zero in k order added to C: the packed kernels' order, so their bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AxpyTile<TR, TVecs, TM>(in GemmJob job, nint rowStep, nint depthStep, int j, TV mask)
        where TR : struct, IConstant where TVecs : struct, IConstant where TM : struct, IConstant
    {
        int k = job.K, kc = GemmDepth.Block(k);
        nint ldb = job.N;
        for (int pc = 0; pc < k; pc += kc)
            AxpyBlock<TR, TVecs, TM>(Math.Min(kc, k - pc), job.A + pc * depthStep, job.B + j + pc * ldb, job.C + j, rowStep, depthStep,
                ldb, job.N, mask, job.Accumulate || pc > 0);
    }

    /// <summary>C rows (+)= kb steps of A(i, p) * B row p, summed from zero and then added to C when <paramref name="add"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AxpyBlock<TR, TVecs, TM>(int kb, float* a, float* b, float* c, nint rowStep, nint depthStep, nint ldb, nint ldc,
        TV mask, bool add)
        where TR : struct, IConstant where TVecs : struct, IConstant where TM : struct, IConstant
    {
        int w = TOps.Width;
        TV r0v0 = default, r0v1 = default, r0v2 = default, r0v3 = default, r0v4 = default, r0v5 = default, r0v6 = default, r0v7 = default,
            r1v0 = default, r1v1 = default, r1v2 = default, r1v3 = default,
            r2v0 = default, r2v1 = default,
            r3v0 = default, r3v1 = default;
        for (int p = 0; p < kb; p++, a += depthStep, b += ldb)
        {
            TV b0 = Load<TM>(b, mask), b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default, av;
            if (TVecs.Value > 1) b1 = TOps.Load(b + 1 * w);
            if (TVecs.Value > 2) b2 = TOps.Load(b + 2 * w);
            if (TVecs.Value > 3) b3 = TOps.Load(b + 3 * w);
            if (TVecs.Value > 4) b4 = TOps.Load(b + 4 * w);
            if (TVecs.Value > 5) b5 = TOps.Load(b + 5 * w);
            if (TVecs.Value > 6) b6 = TOps.Load(b + 6 * w);
            if (TVecs.Value > 7) b7 = TOps.Load(b + 7 * w);
            {
                av = TOps.Broadcast(a[0 * rowStep]);
                r0v0 = TOps.MulAdd(av, b0, r0v0);
                if (TVecs.Value > 1) r0v1 = TOps.MulAdd(av, b1, r0v1);
                if (TVecs.Value > 2) r0v2 = TOps.MulAdd(av, b2, r0v2);
                if (TVecs.Value > 3) r0v3 = TOps.MulAdd(av, b3, r0v3);
                if (TVecs.Value > 4) r0v4 = TOps.MulAdd(av, b4, r0v4);
                if (TVecs.Value > 5) r0v5 = TOps.MulAdd(av, b5, r0v5);
                if (TVecs.Value > 6) r0v6 = TOps.MulAdd(av, b6, r0v6);
                if (TVecs.Value > 7) r0v7 = TOps.MulAdd(av, b7, r0v7);
            }
            if (TR.Value > 1)
            {
                av = TOps.Broadcast(a[1 * rowStep]);
                r1v0 = TOps.MulAdd(av, b0, r1v0);
                if (TVecs.Value > 1) r1v1 = TOps.MulAdd(av, b1, r1v1);
                if (TVecs.Value > 2) r1v2 = TOps.MulAdd(av, b2, r1v2);
                if (TVecs.Value > 3) r1v3 = TOps.MulAdd(av, b3, r1v3);
            }
            if (TR.Value > 2)
            {
                av = TOps.Broadcast(a[2 * rowStep]);
                r2v0 = TOps.MulAdd(av, b0, r2v0);
                if (TVecs.Value > 1) r2v1 = TOps.MulAdd(av, b1, r2v1);
            }
            if (TR.Value > 3)
            {
                av = TOps.Broadcast(a[3 * rowStep]);
                r3v0 = TOps.MulAdd(av, b0, r3v0);
                if (TVecs.Value > 1) r3v1 = TOps.MulAdd(av, b1, r3v1);
            }
        }
        if (add)
        {
            r0v0 = TOps.Add(r0v0, Load<TM>(c + 0 * ldc + 0 * w, mask));
            if (TVecs.Value > 1) r0v1 = TOps.Add(r0v1, Load<TM>(c + 0 * ldc + 1 * w, mask));
            if (TVecs.Value > 2) r0v2 = TOps.Add(r0v2, Load<TM>(c + 0 * ldc + 2 * w, mask));
            if (TVecs.Value > 3) r0v3 = TOps.Add(r0v3, Load<TM>(c + 0 * ldc + 3 * w, mask));
            if (TVecs.Value > 4) r0v4 = TOps.Add(r0v4, Load<TM>(c + 0 * ldc + 4 * w, mask));
            if (TVecs.Value > 5) r0v5 = TOps.Add(r0v5, Load<TM>(c + 0 * ldc + 5 * w, mask));
            if (TVecs.Value > 6) r0v6 = TOps.Add(r0v6, Load<TM>(c + 0 * ldc + 6 * w, mask));
            if (TVecs.Value > 7) r0v7 = TOps.Add(r0v7, Load<TM>(c + 0 * ldc + 7 * w, mask));
            if (TR.Value > 1) r1v0 = TOps.Add(r1v0, Load<TM>(c + 1 * ldc + 0 * w, mask));
            if (TR.Value > 1 && TVecs.Value > 1) r1v1 = TOps.Add(r1v1, Load<TM>(c + 1 * ldc + 1 * w, mask));
            if (TR.Value > 1 && TVecs.Value > 2) r1v2 = TOps.Add(r1v2, Load<TM>(c + 1 * ldc + 2 * w, mask));
            if (TR.Value > 1 && TVecs.Value > 3) r1v3 = TOps.Add(r1v3, Load<TM>(c + 1 * ldc + 3 * w, mask));
            if (TR.Value > 2) r2v0 = TOps.Add(r2v0, Load<TM>(c + 2 * ldc + 0 * w, mask));
            if (TR.Value > 2 && TVecs.Value > 1) r2v1 = TOps.Add(r2v1, Load<TM>(c + 2 * ldc + 1 * w, mask));
            if (TR.Value > 3) r3v0 = TOps.Add(r3v0, Load<TM>(c + 3 * ldc + 0 * w, mask));
            if (TR.Value > 3 && TVecs.Value > 1) r3v1 = TOps.Add(r3v1, Load<TM>(c + 3 * ldc + 1 * w, mask));
        }
        Store<TM>(c + 0 * ldc + 0 * w, mask, r0v0);
        if (TVecs.Value > 1) Store<TM>(c + 0 * ldc + 1 * w, mask, r0v1);
        if (TVecs.Value > 2) Store<TM>(c + 0 * ldc + 2 * w, mask, r0v2);
        if (TVecs.Value > 3) Store<TM>(c + 0 * ldc + 3 * w, mask, r0v3);
        if (TVecs.Value > 4) Store<TM>(c + 0 * ldc + 4 * w, mask, r0v4);
        if (TVecs.Value > 5) Store<TM>(c + 0 * ldc + 5 * w, mask, r0v5);
        if (TVecs.Value > 6) Store<TM>(c + 0 * ldc + 6 * w, mask, r0v6);
        if (TVecs.Value > 7) Store<TM>(c + 0 * ldc + 7 * w, mask, r0v7);
        if (TR.Value > 1) Store<TM>(c + 1 * ldc + 0 * w, mask, r1v0);
        if (TR.Value > 1 && TVecs.Value > 1) Store<TM>(c + 1 * ldc + 1 * w, mask, r1v1);
        if (TR.Value > 1 && TVecs.Value > 2) Store<TM>(c + 1 * ldc + 2 * w, mask, r1v2);
        if (TR.Value > 1 && TVecs.Value > 3) Store<TM>(c + 1 * ldc + 3 * w, mask, r1v3);
        if (TR.Value > 2) Store<TM>(c + 2 * ldc + 0 * w, mask, r2v0);
        if (TR.Value > 2 && TVecs.Value > 1) Store<TM>(c + 2 * ldc + 1 * w, mask, r2v1);
        if (TR.Value > 3) Store<TM>(c + 3 * ldc + 0 * w, mask, r3v0);
        if (TR.Value > 3 && TVecs.Value > 1) Store<TM>(c + 3 * ldc + 1 * w, mask, r3v1);
    }

    /// <summary>sums[2i + jj] = dot(A row i, B row jj) for two rows of B, k-contiguous, A rows k apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotTile<TR>(int k, float* a, float* b0, float* b1, float* sums) where TR : struct, IConstant
    {
        int w = TOps.Width;
        nint lda = k;
        TV x0 = default, x1 = default, x2 = default, x3 = default;
        TV y0 = default, y1 = default, y2 = default, y3 = default;
        int p = 0;
        for (; p + w <= k; p += w)
        {
            TV u = TOps.Load(b0 + p), v = TOps.Load(b1 + p), av;
            { av = TOps.Load(a + 0 * lda + p); x0 = TOps.MulAdd(av, u, x0); y0 = TOps.MulAdd(av, v, y0); }
            if (TR.Value > 1) { av = TOps.Load(a + 1 * lda + p); x1 = TOps.MulAdd(av, u, x1); y1 = TOps.MulAdd(av, v, y1); }
            if (TR.Value > 2) { av = TOps.Load(a + 2 * lda + p); x2 = TOps.MulAdd(av, u, x2); y2 = TOps.MulAdd(av, v, y2); }
            if (TR.Value > 3) { av = TOps.Load(a + 3 * lda + p); x3 = TOps.MulAdd(av, u, x3); y3 = TOps.MulAdd(av, v, y3); }
        }
        if (p < k)
        {
            var mask = TOps.Mask(k - p);
            TV u = TOps.LoadMasked(b0 + p, mask), v = TOps.LoadMasked(b1 + p, mask), av;
            { av = TOps.LoadMasked(a + 0 * lda + p, mask); x0 = TOps.MulAdd(av, u, x0); y0 = TOps.MulAdd(av, v, y0); }
            if (TR.Value > 1) { av = TOps.LoadMasked(a + 1 * lda + p, mask); x1 = TOps.MulAdd(av, u, x1); y1 = TOps.MulAdd(av, v, y1); }
            if (TR.Value > 2) { av = TOps.LoadMasked(a + 2 * lda + p, mask); x2 = TOps.MulAdd(av, u, x2); y2 = TOps.MulAdd(av, v, y2); }
            if (TR.Value > 3) { av = TOps.LoadMasked(a + 3 * lda + p, mask); x3 = TOps.MulAdd(av, u, x3); y3 = TOps.MulAdd(av, v, y3); }
        }
        { sums[0] = TOps.Sum(x0); sums[1] = TOps.Sum(y0); }
        if (TR.Value > 1) { sums[2] = TOps.Sum(x1); sums[3] = TOps.Sum(y1); }
        if (TR.Value > 2) { sums[4] = TOps.Sum(x2); sums[5] = TOps.Sum(y2); }
        if (TR.Value > 3) { sums[6] = TOps.Sum(x3); sums[7] = TOps.Sum(y3); }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Load<TM>(float* p, TV mask) where TM : struct, IConstant =>
        TM.Value == 1 ? TOps.LoadMasked(p, mask) : TOps.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TM>(float* p, TV mask, TV v) where TM : struct, IConstant
    {
        if (TM.Value == 1) TOps.StoreMasked(p, mask, v);
        else TOps.Store(p, v);
    }
}
