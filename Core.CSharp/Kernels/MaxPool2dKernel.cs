using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>The output of max pooling and, for the backward pass, the flat input index of each maximum.</summary>
/// <param name="Output">The pooled tensor.</param>
/// <param name="ArgMax">For each output element, the flat index into the input of the element that won.</param>
public sealed record PoolResult(Tensor Output, ReadOnlyMemory<int> ArgMax);

/// <summary>
/// 2-d max pooling over NCHW batches. Padded positions never win (implicit negative infinity, as in PyTorch);
/// ties go to the first maximum in row-major window order, and NaN wins, as in PyTorch.
/// </summary>
public static partial class MaxPool2dKernel
{
    /// <summary>Pools <paramref name="x"/> and records the winners (output size floored).</summary>
    /// <exception cref="ShapeException">The input is not NCHW, the window does not fit, or padding exceeds half the kernel.</exception>
    public static PoolResult Forward(Tensor x, Window2d g) => Forward(x, g, ceilMode: false);

    /// <summary>
    /// Pools <paramref name="x"/> and records the winners; with <paramref name="ceilMode"/> the output size is rounded
    /// up (<see cref="PoolingSize.Output(int, int, int, int, bool)"/>) and the last window, which may overhang the padded
    /// input, takes the maximum of the elements it covers.
    /// </summary>
    /// <exception cref="ShapeException">The input is not NCHW, the window does not fit, or padding exceeds half the kernel.</exception>
    public static PoolResult Forward(Tensor x, Window2d g, bool ceilMode)
    {
        ArgumentNullException.ThrowIfNull(x);
        var call = new Call(x.Shape, g, ceilMode);
        // Every element of both is written.
        var y = TensorArena.Uninitialized<float>(call.OutputShape.Size);
        var arg = TensorArena.Uninitialized<int>(y.Length);
        call.Run(x, y, arg);
        return new PoolResult(Tensor.Own(y, call.OutputShape), arg);
    }

    /// <summary>
    /// One window, rows [kiLo, kiHi) of the kernel (those inside the image), its columns clipped to the row. The first maximum
    /// in row-major window order wins; a NaN beats any number.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Window(ReadOnlySpan<float> xs, Window2d g, int w, int rowBase, int kiLo, int kiHi, int ox, out float best, out int bestIdx)
    {
        var (kjLo, kjHi) = WindowPlan.Taps1(ox, w, g.KernelW, g.StrideW, g.PadW, 1);
        int x0 = ox * g.StrideW - g.PadW;
        best = float.NegativeInfinity;
        bestIdx = -1;
        for (int ki = kiLo; ki < kiHi; ki++)
            for (int kj = kjLo; kj < kjHi; kj++)
            {
                int idx = rowBase + ki * w + x0 + kj;
                float v = xs[idx];
                if (bestIdx < 0 || v > best || (float.IsNaN(v) && !float.IsNaN(best))) { best = v; bestIdx = idx; }
            }
    }

    /// <summary>
    /// Up to sixteen neighbouring windows that lie inside their rows (horizontal stride 1 or 2; as many as
    /// <paramref name="y"/> is long), as <see cref="Window"/> takes each: the same comparisons lane by lane, so the same winners.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Windows16(ReadOnlySpan<float> xs, Window2d g, int w, int rowBase, int kiLo, int kiHi, int ox, Span<float> y, Span<int> arg)
    {
        ref float x0 = ref MemoryMarshal.GetReference(xs);
        int sw = g.StrideW;
        var lanes = Vector512<int>.Indices * sw;
        var best = Vector512<float>.Zero;
        var bestIdx = Vector512<int>.Zero;
        bool first = true;
        for (int ki = kiLo; ki < kiHi; ki++)
            for (int kj = 0; kj < g.KernelW; kj++)
            {
                int b = rowBase + ki * w + ox * sw - g.PadW + kj;
                var v = sw == 1
                    ? Vector512.LoadUnsafe(ref x0, (nuint)b)
                    : Avx512F.PermuteVar16x32x2(Vector512.LoadUnsafe(ref x0, (nuint)b), ImToCol.EvenLanes(), Vector512.LoadUnsafe(ref x0, (nuint)(b + 16)));
                var idx = Vector512.Create(b) + lanes;
                if (first)
                {
                    (best, bestIdx, first) = (v, idx, false);
                    continue;
                }
                var take = Vector512.GreaterThan(v, best) | Vector512.AndNot(Vector512.Equals(best, best), Vector512.Equals(v, v));
                best = Vector512.ConditionalSelect(take, v, best);
                bestIdx = Vector512.ConditionalSelect(take.AsInt32(), idx, bestIdx);
            }
        if (y.Length == Vector512<float>.Count)
        {
            best.StoreUnsafe(ref MemoryMarshal.GetReference(y));
            bestIdx.StoreUnsafe(ref MemoryMarshal.GetReference(arg));
            return;
        }
        Span<float> values = stackalloc float[Vector512<float>.Count];
        Span<int> winners = stackalloc int[Vector512<int>.Count];
        best.StoreUnsafe(ref MemoryMarshal.GetReference(values));
        bestIdx.StoreUnsafe(ref MemoryMarshal.GetReference(winners));
        values[..y.Length].CopyTo(y);
        winners[..arg.Length].CopyTo(arg);
    }

    /// <summary>
    /// <see cref="Windows16"/> on ymm (AVX2): up to eight windows, a stride of 2 taking the even lanes of two loads by an
    /// in-lane shuffle put back in order by a permute of 64-bit pairs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Windows8(ReadOnlySpan<float> xs, Window2d g, int w, int rowBase, int kiLo, int kiHi, int ox, Span<float> y, Span<int> arg)
    {
        ref float x0 = ref MemoryMarshal.GetReference(xs);
        int sw = g.StrideW;
        var lanes = Vector256<int>.Indices * sw;
        var best = Vector256<float>.Zero;
        var bestIdx = Vector256<int>.Zero;
        bool first = true;
        for (int ki = kiLo; ki < kiHi; ki++)
            for (int kj = 0; kj < g.KernelW; kj++)
            {
                int b = rowBase + ki * w + ox * sw - g.PadW + kj;
                var v = Vector256.LoadUnsafe(ref x0, (nuint)b);
                if (sw == 2)
                    v = Avx2.Permute4x64(Avx.Shuffle(v, Vector256.LoadUnsafe(ref x0, (nuint)(b + 8)), 0b10_00_10_00).AsDouble(), 0b11_01_10_00).AsSingle();
                var idx = Vector256.Create(b) + lanes;
                if (first)
                {
                    (best, bestIdx, first) = (v, idx, false);
                    continue;
                }
                var take = Vector256.GreaterThan(v, best) | Vector256.AndNot(Vector256.Equals(best, best), Vector256.Equals(v, v));
                best = Vector256.ConditionalSelect(take, v, best);
                bestIdx = Vector256.ConditionalSelect(take.AsInt32(), idx, bestIdx);
            }
        if (y.Length == Vector256<float>.Count)
        {
            best.StoreUnsafe(ref MemoryMarshal.GetReference(y));
            bestIdx.StoreUnsafe(ref MemoryMarshal.GetReference(arg));
            return;
        }
        Span<float> values = stackalloc float[Vector256<float>.Count];
        Span<int> winners = stackalloc int[Vector256<int>.Count];
        best.StoreUnsafe(ref MemoryMarshal.GetReference(values));
        bestIdx.StoreUnsafe(ref MemoryMarshal.GetReference(winners));
        values[..y.Length].CopyTo(y);
        winners[..arg.Length].CopyTo(arg);
    }

    /// <summary>Routes each upstream gradient to the input element that won its window.</summary>
    public static Tensor Backward(Tensor dy, ReadOnlyMemory<int> argMax, Shape inputShape)
    {
        if (dy.Size != argMax.Length)
            throw new ShapeException($"MaxPool2d backward: expected an upstream gradient of {argMax.Length} elements; found {dy.Shape}.");
        // A window never leaves its plane, so planes are independent: each is cleared and filled by one worker while it
        // is in the cache (one pass over memory, not a clear of the whole gradient and then a scatter), and its elements
        // get their sums in the same order as a serial loop.
        if (inputShape.Rank != 4 || inputShape[0] * inputShape[1] == 0 || dy.Size % (inputShape[0] * inputShape[1]) != 0)
            throw new ShapeException($"MaxPool2d backward: expected an NCHW input shape whose planes divide the {dy.Size} upstream gradients; found {inputShape}.");
        int planes = inputShape[0] * inputShape[1], inPlane = inputShape[2] * inputShape[3], outPlane = dy.Size / planes;
        var dx = TensorArena.Uninitialized<float>(inputShape.Size);
        BatchParallel.For(planes, (_, start, end) =>
        {
            var a = argMax.Span;
            var d = dy.Span;
            dx.AsSpan(start * inPlane, (end - start) * inPlane).Clear();
            for (int i = start * outPlane; i < end * outPlane; i++) dx[a[i]] += d[i];
        });
        return Tensor.Own(dx, inputShape);
    }
}
