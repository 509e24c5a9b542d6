using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// The forward pass of a stride-1 convolution with a shallow column matrix (few input channels times taps, such as a
/// network's first layer on RGB or grey images), computed straight from the (staged) image without packing columns.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> The GEMM path packs every column-matrix element once per call and then reuses it for all F filters;
/// with K = C x taps rows that is K x OutSize packed floats for F x K x OutSize multiply-adds, so when F is a few dozen
/// and K is short the packing and the micro-kernel's per-tile load and store of C outweigh the arithmetic (keras-cifar's
/// first layer, C3 3x3 F32 on 32x32: 18 GFLOP/s on one Xeon thread, against 106-124 for its deeper layers). At stride 1
/// the values a tap reads for consecutive output columns are consecutive floats of the staged image, so this kernel loads
/// them as vectors where they lie: for three 16-position vectors of output rows and 8 filters at a time, 24 accumulators
/// take one multiply-add per row of the column matrix, in row order; bias and ReLU are applied in registers and each
/// vector is stored under the mask of its row's real positions. CPUs with AVX2 and FMA but no AVX-512 run the same loop
/// on 8-position vectors, 4 filters at a time (12 accumulators of the 16 registers; DirectConv.Vector256.cs).</para>
/// <para><b>Same bits as the GEMM path.</b> The micro-kernel computes each output as one fused multiply-add chain over
/// the rows of a depth block (<see cref="GemmDepth.Block"/>) in order, starting from zero, adds each block's sum to the
/// earlier blocks' total, then the write-out adds the bias (<see cref="ConvKernel.AddBias"/>) and applies ReLU. This
/// kernel does the same operations in the same order, so its output is bit for bit the GEMM path's, for any split between
/// threads, at either vector width (each output is one lane's chain whatever the lanes beside it).</para>
/// </remarks>
internal static unsafe partial class DirectConv
{
    /// <summary>Filters per tile of 16-lane vectors.</summary>
    private const int Filters = 8;

    /// <summary>Output vectors per tile (each of positions of one output row).</summary>
    private const int Slots = 3;

    /// <summary>
    /// The deepest column matrix this kernel takes. Measured (Xeon, N32-N64, one and two threads) against the GEMM path:
    /// 1.1-2.7x up to 288 rows on rows of 16 to 32 outputs; about even at 576 (C64 3x3); 0.93-0.99x at 1,152, where the
    /// GEMM's packed columns, reused from L1 for every filter, win over rereading the image's rows.
    /// </summary>
    public const int MaxRows = 320;

    /// <summary>Turns the kernel off, so that tests can compare it with the GEMM path it stands in for.</summary>
    internal static bool Disabled { get; set; }

    /// <summary>
    /// The vector width of the direct kernels beside the GEMM micro-kernel <paramref name="isa"/>: 16 lanes with AVX-512's,
    /// 8 with AVX2 and FMA's (or AVX-512's when <see cref="KernelWidth.ForceVector256"/>), 0 (none) with the scalar one.
    /// </summary>
    public static int Lanes(GemmInstructionSet isa) => isa switch
    {
        GemmInstructionSet.Vector512 when Avx512F.IsSupported && !KernelWidth.ForceVector256 => 16,
        GemmInstructionSet.Vector512 or GemmInstructionSet.Vector256 when Fma.IsSupported && Vector256.IsHardwareAccelerated => 8,
        _ => 0,
    };

    /// <summary>
    /// Whether the kernel covers the convolution on vectors of <paramref name="lanes"/> (<see cref="Lanes"/>): 1-d or 2-d,
    /// stride 1, one group, a shallow column matrix, and output rows at least a vector long that fill three-quarters of
    /// their vectors (measured 0.96x on 13-wide rows with 16 lanes, where the last vector of each row is mostly empty).
    /// </summary>
    public static bool Covers(in ConvColumns l, int filters, int lanes) =>
        !Disabled && lanes > 0 && l.SH == 1 && l.SW == 1 && l.Groups == 1 && l.Rows <= MaxRows && filters >= 1
        && FillsVectors(l.OutW, lanes);

    /// <summary>
    /// Whether rows of <paramref name="width"/> values are at least a vector of <paramref name="lanes"/> long and fill
    /// three-quarters of their vectors (a 13-wide row measured 0.96x the GEMM path with 16 lanes: its one vector is mostly
    /// empty).
    /// </summary>
    public static bool FillsVectors(int width, int lanes) => width >= lanes && 4 * width >= 3 * lanes * ((width + lanes - 1) / lanes);

    /// <summary>Floats a thread's stage buffer needs beyond one staged image: a row vector's overrun past the image.</summary>
    private const int StageSlack = 32;

    /// <summary>
    /// y[i, f] for images <c>[i0, i1)</c> and filters <c>[f0, f1)</c> (f0 a multiple of 8): the convolution of x with w
    /// (<c>[F, K]</c> row-major), plus the bias, then ReLU when asked, on vectors of <paramref name="lanes"/> (16 or 8,
    /// <see cref="Lanes"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(in ConvColumns l, float* x, float* w, float* bias, int f, float* y, int i0, int i1, int f0, int f1, bool relu, int lanes)
    {
        int k = l.Rows, kc = GemmDepth.Block(k), outSize = l.OutSize, outW = l.OutW, outH = outSize / outW, pitch = l.Pitch;
        int perRow = (outW + lanes - 1) / lanes, vectors = outH * perRow, filters = lanes == 16 ? Filters : Filters256;
        var buffers = ConvBuffers.Current;
        int* rowOffset = buffers.RowOffsets(k);
        for (int r = 0; r < k; r++) rowOffset[r] = l.RowOffset(r);
        float* stage = buffers.Stage(l.ImageStride + StageSlack);
        // Each output vector: where it reads (relative to a row's offset), where it writes in a plane, and its lanes.
        int* read = (int*)buffers.Scratch(3 * (vectors + Slots)), write = read + vectors + Slots, used = write + vectors + Slots;
        for (int v = 0; v < vectors + Slots; v++)
        {
            int oh = Math.Min(v / perRow, outH - 1), ow = v < vectors ? v % perRow * lanes : 0;
            read[v] = oh * pitch + ow;
            write[v] = oh * outW + ow;
            used[v] = v < vectors ? Math.Min(lanes, outW - ow) : 0;
        }
        int inImage = l.C * l.InH * l.InW;
        // Lanes past a row's end read the next row, or past the staged image: discarded, but kept finite all the same.
        new Span<float>(stage + l.ImageStride, StageSlack).Clear();
        for (int i = i0; i < i1; i++)
        {
            float* image = x + (nint)i * inImage;
            float* source;
            if (l.Staged)
            {
                l.Stage(image, stage);
                source = stage;
            }
            else if (i < l.N - 1) source = image; // the last row's overrun reads the next image's floats
            else
            {
                Buffer.MemoryCopy(image, stage, (long)inImage * sizeof(float), (long)inImage * sizeof(float));
                source = stage;
            }
            for (int fb = f0; fb < f1; fb += filters)
            {
                int count = Math.Min(filters, f1 - fb);
                for (int v = 0; v < vectors; v += Slots)
                    for (int r0 = 0; r0 < k; r0 += kc)
                    {
                        int r1 = Math.Min(k, r0 + kc);
                        float* yb = y + ((nint)i * f + fb) * outSize, bb = bias is null ? null : bias + fb;
                        if (lanes == 16)
                            Tile(source, rowOffset, r0, r1, k, w + (nint)fb * k, count, read + v, write + v, used + v, yb, outSize, bb, relu, r0 > 0, r1 == k);
                        else
                            Tile256(source, rowOffset, r0, r1, k, w + (nint)fb * k, count, read + v, write + v, used + v, yb, outSize, bb, relu, r0 > 0, r1 == k);
                    }
            }
        }
    }

    /// <summary>
    /// Eight filters (the last <c>8 - count</c> repeat filter <c>count - 1</c> and are not written) times three output
    /// vectors: each output one fused multiply-add chain over the rows from zero, then plus the bias, then ReLU.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile(float* source, int* rowOffset, int r0, int r1, int k, float* w, int count, int* read, int* write, int* lanes, float* y,
        int plane, float* bias, bool relu, bool accumulate, bool final)
    {
        int last = count - 1;
        float* w1 = w + Math.Min(1, last) * k, w2 = w + Math.Min(2, last) * k, w3 = w + Math.Min(3, last) * k;
        float* w4 = w + Math.Min(4, last) * k, w5 = w + Math.Min(5, last) * k, w6 = w + Math.Min(6, last) * k, w7 = w + Math.Min(7, last) * k;
        float* s0 = source + read[0], s1 = source + read[1], s2 = source + read[2];
        Vector512<float> a0 = default, a1 = default, a2 = default, b0 = default, b1 = default, b2 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, d0 = default, d1 = default, d2 = default;
        Vector512<float> e0 = default, e1 = default, e2 = default, g0 = default, g1 = default, g2 = default;
        Vector512<float> h0 = default, h1 = default, h2 = default, j0 = default, j1 = default, j2 = default;
        for (int r = r0; r < r1; r++)
        {
            int o = rowOffset[r];
            var x0 = Vector512.Load(s0 + o);
            var x1 = Vector512.Load(s1 + o);
            var x2 = Vector512.Load(s2 + o);
            Vector512<float> v;
            v = Vector512.Create(w[r]); a0 = Avx512F.FusedMultiplyAdd(v, x0, a0); a1 = Avx512F.FusedMultiplyAdd(v, x1, a1); a2 = Avx512F.FusedMultiplyAdd(v, x2, a2);
            v = Vector512.Create(w1[r]); b0 = Avx512F.FusedMultiplyAdd(v, x0, b0); b1 = Avx512F.FusedMultiplyAdd(v, x1, b1); b2 = Avx512F.FusedMultiplyAdd(v, x2, b2);
            v = Vector512.Create(w2[r]); c0 = Avx512F.FusedMultiplyAdd(v, x0, c0); c1 = Avx512F.FusedMultiplyAdd(v, x1, c1); c2 = Avx512F.FusedMultiplyAdd(v, x2, c2);
            v = Vector512.Create(w3[r]); d0 = Avx512F.FusedMultiplyAdd(v, x0, d0); d1 = Avx512F.FusedMultiplyAdd(v, x1, d1); d2 = Avx512F.FusedMultiplyAdd(v, x2, d2);
            v = Vector512.Create(w4[r]); e0 = Avx512F.FusedMultiplyAdd(v, x0, e0); e1 = Avx512F.FusedMultiplyAdd(v, x1, e1); e2 = Avx512F.FusedMultiplyAdd(v, x2, e2);
            v = Vector512.Create(w5[r]); g0 = Avx512F.FusedMultiplyAdd(v, x0, g0); g1 = Avx512F.FusedMultiplyAdd(v, x1, g1); g2 = Avx512F.FusedMultiplyAdd(v, x2, g2);
            v = Vector512.Create(w6[r]); h0 = Avx512F.FusedMultiplyAdd(v, x0, h0); h1 = Avx512F.FusedMultiplyAdd(v, x1, h1); h2 = Avx512F.FusedMultiplyAdd(v, x2, h2);
            v = Vector512.Create(w7[r]); j0 = Avx512F.FusedMultiplyAdd(v, x0, j0); j1 = Avx512F.FusedMultiplyAdd(v, x1, j1); j2 = Avx512F.FusedMultiplyAdd(v, x2, j2);
        }
        // No calls from here on: every vector register is caller-saved, and a call after the loop would make the JIT
        // spill the accumulators inside it.
        var m0 = ImToCol.Lanes(lanes[0]);
        var m1 = ImToCol.Lanes(lanes[1]);
        var m2 = ImToCol.Lanes(lanes[2]);
        float* y0 = y + write[0], y1 = y + write[1], y2 = y + write[2];
        Put(a0, a1, a2, 0, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
        if (count > 1) Put(b0, b1, b2, 1, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
        if (count > 2) Put(c0, c1, c2, 2, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
        if (count > 3) Put(d0, d1, d2, 3, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
        if (count > 4) Put(e0, e1, e2, 4, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
        if (count > 5) Put(g0, g1, g2, 5, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
        if (count > 6) Put(h0, h1, h2, 6, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
        if (count > 7) Put(j0, j1, j2, 7, y0, y1, y2, plane, m0, m1, m2, bias, relu, accumulate, final);
    }

    /// <summary>One filter's three output vectors: plus its bias, ReLU, stored under their lane masks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, int filter, float* y0, float* y1, float* y2, int plane,
        Vector512<float> m0, Vector512<float> m1, Vector512<float> m2, float* bias, bool relu, bool accumulate, bool final)
    {
        nint at = (nint)filter * plane;
        if (accumulate)
        {
            // The earlier depth blocks' sum, added as the GEMM's micro-kernel adds it: this block's sum + C.
            v0 += Avx512F.MaskLoad(y0 + at, m0, Vector512<float>.Zero);
            v1 += Avx512F.MaskLoad(y1 + at, m1, Vector512<float>.Zero);
            v2 += Avx512F.MaskLoad(y2 + at, m2, Vector512<float>.Zero);
        }
        if (!final)
        {
            Avx512F.MaskStore(y0 + at, m0, v0);
            Avx512F.MaskStore(y1 + at, m1, v1);
            Avx512F.MaskStore(y2 + at, m2, v2);
            return;
        }
        if (bias is not null)
        {
            var b = Vector512.Create(bias[filter]);
            v0 += b;
            v1 += b;
            v2 += b;
        }
        if (relu)
        {
            v0 = Relu(v0);
            v1 = Relu(v1);
            v2 = Relu(v2);
        }
        Avx512F.MaskStore(y0 + at, m0, v0);
        Avx512F.MaskStore(y1 + at, m1, v1);
        Avx512F.MaskStore(y2 + at, m2, v2);
    }

    /// <summary>
    /// <c>max(v, 0)</c> with TensorPrimitives.Max(x, 0)'s bits: NaN stays NaN and -0 becomes +0 (also
    /// <see cref="ChannelTileConv"/>'s write-out).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Relu(Vector512<float> v) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(v, Vector512<float>.Zero) | ~Vector512.Equals(v, v), v, Vector512<float>.Zero);
}
