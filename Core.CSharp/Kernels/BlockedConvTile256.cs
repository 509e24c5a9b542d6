using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// The register tile of <see cref="BlockedConv"/> on CPUs with AVX2 and FMA but no AVX-512: up to 3 output pixels of one
/// output row by 32 filters (four ymm per pixel, 12 accumulators), over one depth block, on the packed panels and the
/// 16-channel blocks of the AVX-512 tile (<see cref="BlockedConvTile{TStep}"/>). Each depth step broadcasts one input value
/// per pixel and multiplies it by the step's four filter vectors, read from the panel by the fused multiply-adds themselves
/// (memory operands: 12 accumulators and a broadcast leave no registers for them), as ONNX Runtime's FMA3 NCHWc kernel does.
/// </summary>
/// <remarks>
/// <para>Why 3 x 32 and not 6 x 16 (two vectors of filters, six pixels: the GEMM's 6x16 shape): the 7x7 and 14x14 rows of a
/// ResNet's deep stages split into tiles of 2-3 pixels, where a 16-filter tile keeps 4-6 chains and leaves Zen 3's two FMA
/// pipes (latency 4) half idle, while 2-3 pixels of 32 filters keep 8-12.</para>
/// <para><b>Bits.</b> Each output's sum is the AVX-512 tile's, lane by lane: a fused multiply-add chain from zero over the
/// block's steps in order, then the earlier blocks, the bias, the residual and the ReLU (<see cref="BlockedTileOutput"/>).</para>
/// </remarks>
/// <typeparam name="TStep">Floats between the input values of adjacent output pixels (pixel stride times the stride).</typeparam>
internal static unsafe class BlockedConvTile256<TStep> where TStep : struct, IConstant
{
    /// <summary>Filters per tile and per packed panel.</summary>
    public const int Filters = 32;

    /// <summary>Output pixels per tile at most.</summary>
    public const int MaxWidth = 3;

    /// <summary>
    /// <see cref="BlockedConvTile{TStep}.Depth"/> for a tile of <paramref name="width"/> pixels (1 to 3): the sums of
    /// <paramref name="k"/> steps from zero to <paramref name="t"/> (<c>[pixel][32]</c>, added to it when
    /// <paramref name="add"/>), or for the last block (<paramref name="o"/> given) to the output.
    /// </summary>
    public static void Depth(int width, float* a, int* offsets, int k, float* w, float* t, bool add, in BlockedTileOutput o, nint ahead)
    {
        switch (width)
        {
            case 3: Depth<W3>(a, offsets, k, w, t, add, o, ahead); break;
            case 2: Depth<W2>(a, offsets, k, w, t, add, o, ahead); break;
            default: Depth<W1>(a, offsets, k, w, t, add, o, ahead); break;
        }
    }

    /// <summary>
    /// One fused multiply-add chain per output over the block's steps in order, from zero. The pixels past
    /// <typeparamref name="TW"/> are dead code to the JIT. Optimised from the first call, as the AVX-512 tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Depth<TW>(float* a, int* offsets, int k, float* w, float* t, bool add, in BlockedTileOutput o, nint ahead) where TW : struct, IConstant
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
        int n = TW.Value;
        nint s = TStep.Value;
        for (int i = 0; i < k; i++, w += Filters)
        {
            // The panel's next block into L2 (see BlockedConvTile): two cache lines a step.
            if (ahead != 0)
            {
                Sse.Prefetch1(w + ahead);
                Sse.Prefetch1(w + ahead + 16);
            }
            float* p = a + offsets[i];
            var v = Vector256.Create(p[0]);
            a0 = Fma.MultiplyAdd(v, Vector256.Load(w), a0);
            a1 = Fma.MultiplyAdd(v, Vector256.Load(w + 8), a1);
            a2 = Fma.MultiplyAdd(v, Vector256.Load(w + 16), a2);
            a3 = Fma.MultiplyAdd(v, Vector256.Load(w + 24), a3);
            if (n > 1)
            {
                v = Vector256.Create(p[s]);
                b0 = Fma.MultiplyAdd(v, Vector256.Load(w), b0);
                b1 = Fma.MultiplyAdd(v, Vector256.Load(w + 8), b1);
                b2 = Fma.MultiplyAdd(v, Vector256.Load(w + 16), b2);
                b3 = Fma.MultiplyAdd(v, Vector256.Load(w + 24), b3);
            }
            if (n > 2)
            {
                v = Vector256.Create(p[2 * s]);
                c0 = Fma.MultiplyAdd(v, Vector256.Load(w), c0);
                c1 = Fma.MultiplyAdd(v, Vector256.Load(w + 8), c1);
                c2 = Fma.MultiplyAdd(v, Vector256.Load(w + 16), c2);
                c3 = Fma.MultiplyAdd(v, Vector256.Load(w + 24), c3);
            }
        }
        if (o.Y == null)
        {
            BlockedTileOutput.Put(a0, a1, t, add);
            BlockedTileOutput.Put(a2, a3, t + 16, add);
            if (n > 1)
            {
                BlockedTileOutput.Put(b0, b1, t + Filters, add);
                BlockedTileOutput.Put(b2, b3, t + Filters + 16, add);
            }
            if (n > 2)
            {
                BlockedTileOutput.Put(c0, c1, t + 2 * Filters, add);
                BlockedTileOutput.Put(c2, c3, t + 2 * Filters + 16, add);
            }
            return;
        }
        const int lanes = BlockedPlane.Lanes;
        o.Write(a0, a1, t, add, 0, 0);
        o.Write(a2, a3, t, add, 1, 0);
        if (n > 1)
        {
            o.Write(b0, b1, t + Filters, add, 0, lanes);
            o.Write(b2, b3, t + Filters, add, 1, lanes);
        }
        if (n > 2)
        {
            o.Write(c0, c1, t + 2 * Filters, add, 0, 2 * lanes);
            o.Write(c2, c3, t + 2 * Filters, add, 1, 2 * lanes);
        }
    }

    private struct W1 : IConstant { public static int Value => 1; }
    private struct W2 : IConstant { public static int Value => 2; }
    private struct W3 : IConstant { public static int Value => 3; }
}
