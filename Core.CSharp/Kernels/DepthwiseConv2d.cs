using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// Direct 2-d depthwise convolution (one input channel per group, <c>F = m C</c> filters, filter <c>f</c> reading channel
/// <c>f / m</c>, at most <see cref="GemmParallel.SmallRows"/> per channel), forward and backward, without a column matrix or a
/// GEMM: the im2col path ran one product of <c>m x taps x positions</c> per channel, too thin for the micro-kernel, and paid
/// for unfolding the image.
/// </summary>
/// <remarks>
/// <para>Layout: each input plane is copied once, zero-padded, into <c>sh x sw</c> stride phases (phase <c>(a, b)</c> holds the
/// padded rows <c>r sh + a</c> and columns <c>q sw + b</c>), each <c>Wq</c> wide. Tap <c>(kh, kw)</c> then reads one phase at a
/// fixed offset for every output, and since an output row is computed <c>Wq</c> wide (the columns past OW are scratch), a tap
/// is one fused multiply-add over a single span of <c>OH x Wq</c> floats, whatever the stride, dilation or image width: short
/// rows (14 wide) no longer cost a call each.</para>
/// <para>Sums: each output element starts at zero and adds its taps in (kh, kw) order, one fused multiply-add each, then the
/// bias, as the GEMM sums a depth block. dW sums over the batch in image order (one dot product of the plane per tap and
/// image), db likewise; dx sums the filters of a channel in filter order and the taps in order. Work is split over channels
/// (dW, db) and over planes (y, dx), never inside a sum, so no result depends on the thread count.</para>
/// </remarks>
internal static class DepthwiseConv2d
{
    /// <summary>
    /// Whether this kernel takes the convolution: 2-d, one input channel per group, and at most
    /// <see cref="GemmParallel.SmallRows"/> filters per group (more fill the fused GEMM path's micro-tiles, which it keeps).
    /// </summary>
    public static bool Covers(ConvGeometry g, int channels, int filters) =>
        g.Rank == 2 && g.Groups == channels && g.Groups > 1 && filters / g.Groups <= GemmParallel.SmallRows;

    [ThreadStatic] private static float[]? t_phases, t_rows, t_gradPhases;

    private static float[] Scratch(ref float[]? buffer, int length)
    {
        if (buffer is null || buffer.Length < length) buffer = new float[Math.Max(length, 1024)];
        return buffer;
    }

    /// <summary>
    /// The numbers of one input shape, where each tap reads in the phase layout, and the forward pass over them (made once
    /// per call, or once per input shape by an inference plan; one call at a time).
    /// </summary>
    internal sealed class Plan
    {
        public readonly int N, C, M, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, Hq, Wq;

        public Plan(Shape x, Shape w, ConvGeometry g, IReadOnlyList<int> output)
        {
            (N, C, H, W) = (x[0], x[1], x[2], x[3]);
            M = w[0] / C;
            (OH, OW) = (output[0], output[1]);
            (KH, KW, SH, SW) = (g.Kernel[0], g.Kernel[1], g.Stride[0], g.Stride[1]);
            (PT, PL, DH, DW) = (g.PadBegin[0], g.PadBegin[1], g.Dilation[0], g.Dilation[1]);
            Wq = OW + (KW - 1) * DW / SW;
            // One row of slack: a tap's span of OH x Wq starts up to Wq - 1 columns into its first row.
            Hq = OH + (KH - 1) * DH / SH + 1;
        }

        public int F => C * M;

        public int Taps => KH * KW;

        public int PhaseSize => Hq * Wq;

        public int Span => OH * Wq;

        /// <summary>Where tap t's span starts: its phase's offset plus its shift inside the phase.</summary>
        public int Offset(int t)
        {
            int kh = t / KW, kw = t % KW;
            int rowOff = kh * DH, colOff = kw * DW;
            int phase = rowOff % SH * SW + colOff % SW;
            return phase * PhaseSize + rowOff / SH * Wq + colOff / SW;
        }

        /// <summary>Copies a plane, zero-padded, into its stride phases.</summary>
        public void Stage(ReadOnlySpan<float> plane, Span<float> phases)
        {
            for (int a = 0; a < SH; a++)
                for (int b = 0; b < SW; b++)
                {
                    var ph = phases.Slice((a * SW + b) * PhaseSize, PhaseSize);
                    for (int r = 0; r < Hq; r++)
                    {
                        var row = ph.Slice(r * Wq, Wq);
                        int ih = r * SH + a - PT;
                        if ((uint)ih >= (uint)H) { row.Clear(); continue; }
                        var src = plane.Slice(ih * W, W);
                        // Columns q read input column q SW + b - PL: zeros, the columns inside the image, zeros.
                        int first = PL - b, last = W - 1 + PL - b;
                        int lo = Math.Min(Wq, first > 0 ? (first + SW - 1) / SW : 0);
                        int hi = last < 0 ? lo : Math.Clamp(last / SW + 1, lo, Wq);
                        row[..lo].Clear();
                        if (SW == 1 && hi > lo) src.Slice(lo - first, hi - lo).CopyTo(row[lo..hi]);
                        else if (SW > 1)
                            for (int q = lo, iw = lo * SW - first; q < hi; q++, iw += SW) row[q] = src[iw];
                        row[hi..].Clear();
                    }
                }
        }

        /// <summary>dx of a plane from its phases: each input position read by one phase element (zero where none reaches it).</summary>
        public void Unstage(ReadOnlySpan<float> phases, Span<float> plane)
        {
            for (int ih = 0; ih < H; ih++)
            {
                int rp = ih + PT, r = rp / SH, a = rp % SH;
                var dst = plane.Slice(ih * W, W);
                if (r >= Hq) { dst.Clear(); continue; }
                for (int iw = 0; iw < W; iw++)
                {
                    int cp = iw + PL, q = cp / SW, b = cp % SW;
                    dst[iw] = q < Wq ? phases[(a * SW + b) * PhaseSize + r * Wq + q] : 0f;
                }
            }
        }

        /// <summary>An upstream-gradient plane, rows Wq wide with zeros past OW (those columns must add nothing).</summary>
        public void Widen(ReadOnlySpan<float> dy, Span<float> rows)
        {
            for (int oh = 0; oh < OH; oh++)
            {
                dy.Slice(oh * OW, OW).CopyTo(rows.Slice(oh * Wq, OW));
                rows.Slice(oh * Wq + OW, Wq - OW).Clear();
            }
        }

        // The forward call in progress, read by its parallel body (one delegate, made at the first call).
        private Tensor? _x, _w, _bias;
        private float[]? _y;
        private Action<int, int, int>? _forwardPlanes;

        /// <summary>y = depthwise conv(x, w) + b for this plan's shapes, into <paramref name="y"/> (every element written).</summary>
        public void Forward(Tensor x, Tensor w, Tensor? bias, float[] y)
        {
            (_x, _w, _bias, _y) = (x, w, bias, y);
            try
            {
                BatchParallel.For(N * C, _forwardPlanes ??= ForwardPlanes);
            }
            finally
            {
                (_x, _w, _bias, _y) = (null, null, null, null);
            }
        }

        private void ForwardPlanes(int chunk, int start, int end)
        {
            var (x, w, bias, y) = (_x!, _w!, _bias, _y!);
            int outPlane = OH * OW, inPlane = H * W, taps = Taps;
            var phases = Scratch(ref t_phases, SH * SW * PhaseSize);
            var rows = Scratch(ref t_rows, Span);
            for (int plane = start; plane < end; plane++)
            {
                int n = plane / C, c = plane % C;
                Stage(x.Span.Slice(plane * inPlane, inPlane), phases);
                for (int f = c * M; f < (c + 1) * M; f++)
                {
                    var acc = rows.AsSpan(0, Span);
                    acc.Clear();
                    var wf = w.Span.Slice(f * taps, taps);
                    for (int t = 0; t < taps; t++)
                        TensorPrimitives.FusedMultiplyAdd(phases.AsSpan(Offset(t), Span), wf[t], acc, acc);
                    var yp = y.AsSpan((n * F + f) * outPlane, outPlane);
                    for (int oh = 0; oh < OH; oh++)
                    {
                        var src = acc.Slice(oh * Wq, OW);
                        var dst = yp.Slice(oh * OW, OW);
                        if (bias is null) src.CopyTo(dst);
                        else ConvKernel.AddBias(src, bias[f], dst);
                    }
                }
            }
        }
    }

    /// <summary>y = depthwise conv(x, w) + b into <c>[N, F, OH, OW]</c> sized by <paramref name="output"/>.</summary>
    public static float[] Forward(Tensor x, Tensor w, Tensor? bias, ConvGeometry g, IReadOnlyList<int> output)
    {
        var p = new Plan(x.Shape, w.Shape, g, output);
        var y = TensorArena.Uninitialized<float>(p.N * p.F * p.OH * p.OW);
        p.Forward(x, w, bias, y);
        return y;
    }

    /// <summary>dx (when asked), dW and db of a depthwise convolution.</summary>
    public static (float[]? Input, float[] Weight, float[]? Bias) Backward(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g, IReadOnlyList<int> output,
        bool inputGradient)
    {
        var p = new Plan(x.Shape, w.Shape, g, output);
        int outPlane = p.OH * p.OW, inPlane = p.H * p.W, taps = p.Taps;
        var dw = TensorArena.Uninitialized<float>(p.F * taps);
        var db = hasBias ? TensorArena.Uninitialized<float>(p.F) : null;
        BatchParallel.For(p.C, (_, start, end) =>
        {
            var phases = Scratch(ref t_phases, p.SH * p.SW * p.PhaseSize);
            var rows = Scratch(ref t_rows, p.Span);
            for (int c = start; c < end; c++)
            {
                dw.AsSpan(c * p.M * taps, p.M * taps).Clear();
                if (db is not null) db.AsSpan(c * p.M, p.M).Clear();
                for (int n = 0; n < p.N; n++)
                {
                    p.Stage(x.Span.Slice((n * p.C + c) * inPlane, inPlane), phases);
                    for (int f = c * p.M; f < (c + 1) * p.M; f++)
                    {
                        var dyp = dy.Span.Slice((n * p.F + f) * outPlane, outPlane);
                        if (db is not null) db[f] += TensorPrimitives.Sum(dyp);
                        var wide = rows.AsSpan(0, p.Span);
                        p.Widen(dyp, wide);
                        for (int t = 0; t < taps; t++)
                            dw[f * taps + t] += TensorPrimitives.Dot(wide, phases.AsSpan(p.Offset(t), p.Span));
                    }
                }
            }
        });
        float[]? dx = null;
        if (inputGradient)
        {
            dx = TensorArena.Uninitialized<float>(p.N * p.C * inPlane);
            BatchParallel.For(p.N * p.C, (_, start, end) =>
            {
                var grad = Scratch(ref t_gradPhases, p.SH * p.SW * p.PhaseSize);
                var rows = Scratch(ref t_rows, p.Span);
                for (int plane = start; plane < end; plane++)
                {
                    int n = plane / p.C, c = plane % p.C;
                    var gp = grad.AsSpan(0, p.SH * p.SW * p.PhaseSize);
                    gp.Clear();
                    for (int f = c * p.M; f < (c + 1) * p.M; f++)
                    {
                        var wide = rows.AsSpan(0, p.Span);
                        p.Widen(dy.Span.Slice((n * p.F + f) * outPlane, outPlane), wide);
                        var wf = w.Span.Slice(f * taps, taps);
                        for (int t = 0; t < taps; t++)
                        {
                            var dst = gp.Slice(p.Offset(t), p.Span);
                            TensorPrimitives.FusedMultiplyAdd(wide, wf[t], dst, dst);
                        }
                    }
                    p.Unstage(gp, dx.AsSpan(plane * inPlane, inPlane));
                }
            });
        }
        return (dx, dw, db);
    }
}
