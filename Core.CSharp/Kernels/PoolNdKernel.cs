namespace Cnn.Core.Kernels;

/// <summary>
/// Max and average pooling over 1, 2 or 3 spatial axes (NCL, NCHW, NCDHW), output size floored, with PyTorch's rules:
/// symmetric zero padding of at most half the kernel, padded positions never win a maximum (ties go to the first
/// maximum in row-major window order, NaN wins), and an average divides by the whole window with
/// <c>countIncludePad</c> or by the number of real input elements it covers without. Max pooling may be dilated;
/// average pooling may not (PyTorch has no dilated average pooling). The window's groups are ignored.
/// </summary>
public static class PoolNdKernel
{
    /// <summary>Takes the maximum of each window of <paramref name="x"/> and records the flat input index of each winner.</summary>
    /// <param name="x">Input <c>[N, C, spatial...]</c> with as many spatial axes as <paramref name="g"/> has.</param>
    /// <param name="g">The window: symmetric padding of at most half the kernel.</param>
    /// <exception cref="ShapeException">The input does not fit the window, padding is asymmetric or too large, or a dilated window covers only padding.</exception>
    public static PoolResult MaxForward(Tensor x, ConvGeometry g)
    {
        ArgumentNullException.ThrowIfNull(x);
        var (p, outShape) = Check(x.Shape, g, "MaxPool", dilated: true);
        int planes = x.Shape[0] * x.Shape[1], inSize = p.InSize, outSize = p.OutSize;
        var y = TensorArena.Zeroed<float>(planes * outSize);
        var arg = TensorArena.Zeroed<int>(y.Length);
        BatchParallel.For(planes, (_, start, end) =>
        {
            var xs = x.Span;
            for (int q = start; q < end; q++)
            {
                int inBase = q * inSize, o = q * outSize;
                for (int od = 0; od < p.OutD; od++)
                {
                    var (dLo, dHi) = WindowPlan.Taps1(od, p.InD, p.KD, p.SD, p.PD, p.DD);
                    int d0 = od * p.SD - p.PD;
                    for (int oh = 0; oh < p.OutH; oh++)
                    {
                        var (hLo, hHi) = WindowPlan.Taps1(oh, p.InH, p.KH, p.SH, p.PH, p.DH);
                        int h0 = oh * p.SH - p.PH;
                        for (int ow = 0; ow < p.OutW; ow++, o++)
                        {
                            var (wLo, wHi) = WindowPlan.Taps1(ow, p.InW, p.KW, p.SW, p.PW, p.DW);
                            int w0 = ow * p.SW - p.PW;
                            float best = float.NegativeInfinity;
                            int bestIdx = -1;
                            for (int kd = dLo; kd < dHi; kd++)
                            for (int kh = hLo; kh < hHi; kh++)
                            {
                                int rowBase = inBase + ((d0 + kd * p.DD) * p.InH + h0 + kh * p.DH) * p.InW + w0;
                                for (int kw = wLo; kw < wHi; kw++)
                                {
                                    int idx = rowBase + kw * p.DW;
                                    float v = xs[idx];
                                    if (bestIdx < 0 || v > best || (float.IsNaN(v) && !float.IsNaN(best))) { best = v; bestIdx = idx; }
                                }
                            }
                            y[o] = best;
                            arg[o] = bestIdx;
                        }
                    }
                }
            }
        });
        return new PoolResult(Tensor.Own(y, outShape), arg);
    }

    /// <summary>Routes each upstream gradient to the input element that won its window (winners of several windows sum).</summary>
    /// <param name="dy">dL/dy, one element per entry of <paramref name="argMax"/>.</param>
    /// <param name="argMax">The winners <see cref="MaxForward"/> recorded.</param>
    /// <param name="inputShape">The forward input's shape.</param>
    /// <exception cref="ShapeException"><paramref name="dy"/> and <paramref name="argMax"/> differ in size, or an index is outside the input.</exception>
    public static Tensor MaxBackward(Tensor dy, ReadOnlyMemory<int> argMax, Shape inputShape)
    {
        ArgumentNullException.ThrowIfNull(dy);
        ArgumentNullException.ThrowIfNull(inputShape);
        if (dy.Size != argMax.Length)
            throw new ShapeException($"MaxPool backward: expected an upstream gradient of {argMax.Length} elements, one per recorded winner; found {dy.Shape}.");
        var dx = TensorArena.Zeroed<float>(inputShape.Size);
        var a = argMax.Span;
        var d = dy.Span;
        for (int i = 0; i < a.Length; i++)
        {
            int idx = a[i];
            if ((uint)idx >= (uint)dx.Length)
                throw new ShapeException($"MaxPool backward: winner {i} has index {idx}, outside the input {inputShape}.");
            dx[idx] += d[i];
        }
        return Tensor.Own(dx, inputShape);
    }

    /// <summary>Averages each window of <paramref name="x"/>.</summary>
    /// <param name="x">Input <c>[N, C, spatial...]</c> with as many spatial axes as <paramref name="g"/> has.</param>
    /// <param name="g">The window: undilated, symmetric padding of at most half the kernel.</param>
    /// <param name="countIncludePad">Divide by the whole window (padding included) rather than by the real elements it covers.</param>
    /// <exception cref="ShapeException">The input does not fit the window, padding is asymmetric or too large, or the window is dilated.</exception>
    public static Tensor AverageForward(Tensor x, ConvGeometry g, bool countIncludePad)
    {
        ArgumentNullException.ThrowIfNull(x);
        var (p, outShape) = Check(x.Shape, g, "AvgPool", dilated: false);
        int planes = x.Shape[0] * x.Shape[1], inSize = p.InSize, outSize = p.OutSize;
        var y = TensorArena.Zeroed<float>(planes * outSize);
        BatchParallel.For(planes, (_, start, end) =>
        {
            var xs = x.Span;
            for (int q = start; q < end; q++)
            {
                int o = q * outSize;
                var plane = xs.Slice(q * inSize, inSize);
                for (int od = 0; od < p.OutD; od++)
                {
                    var (d0, d1, dn) = Extent(od, p.InD, p.KD, p.SD, p.PD, countIncludePad);
                    for (int oh = 0; oh < p.OutH; oh++)
                    {
                        var (h0, h1, hn) = Extent(oh, p.InH, p.KH, p.SH, p.PH, countIncludePad);
                        for (int ow = 0; ow < p.OutW; ow++, o++)
                        {
                            var (w0, w1, wn) = Extent(ow, p.InW, p.KW, p.SW, p.PW, countIncludePad);
                            float sum = 0f;
                            for (int id = d0; id < d1; id++)
                            for (int ih = h0; ih < h1; ih++)
                            {
                                var row = plane.Slice((id * p.InH + ih) * p.InW, p.InW);
                                for (int iw = w0; iw < w1; iw++) sum += row[iw];
                            }
                            y[o] = sum / (dn * hn * wn);
                        }
                    }
                }
            }
        });
        return Tensor.Own(y, outShape);
    }

    /// <summary>Spreads each upstream gradient, divided by its window's divisor, over the input elements the window covers.</summary>
    /// <param name="dy">dL/dy, the forward output's shape.</param>
    /// <param name="inputShape">The forward input's shape.</param>
    /// <param name="g">The forward window.</param>
    /// <param name="countIncludePad">The forward's divisor rule.</param>
    /// <exception cref="ShapeException">The input shape does not fit the window, or <paramref name="dy"/> is not the forward output's shape.</exception>
    public static Tensor AverageBackward(Tensor dy, Shape inputShape, ConvGeometry g, bool countIncludePad)
    {
        ArgumentNullException.ThrowIfNull(dy);
        var (p, outShape) = Check(inputShape, g, "AvgPool backward", dilated: false);
        if (dy.Shape != outShape)
            throw new ShapeException($"AvgPool backward: expected an upstream gradient of shape {outShape} for input {inputShape}; found {dy.Shape}.");
        int planes = inputShape[0] * inputShape[1], inSize = p.InSize, outSize = p.OutSize;
        var dx = TensorArena.Zeroed<float>(inputShape.Size);
        BatchParallel.For(planes, (_, start, end) =>
        {
            var ds = dy.Span;
            for (int q = start; q < end; q++)
            {
                int o = q * outSize;
                var plane = dx.AsSpan(q * inSize, inSize);
                for (int od = 0; od < p.OutD; od++)
                {
                    var (d0, d1, dn) = Extent(od, p.InD, p.KD, p.SD, p.PD, countIncludePad);
                    for (int oh = 0; oh < p.OutH; oh++)
                    {
                        var (h0, h1, hn) = Extent(oh, p.InH, p.KH, p.SH, p.PH, countIncludePad);
                        for (int ow = 0; ow < p.OutW; ow++, o++)
                        {
                            var (w0, w1, wn) = Extent(ow, p.InW, p.KW, p.SW, p.PW, countIncludePad);
                            float share = ds[o] / (dn * hn * wn);
                            for (int id = d0; id < d1; id++)
                            for (int ih = h0; ih < h1; ih++)
                            {
                                var row = plane.Slice((id * p.InH + ih) * p.InW, p.InW);
                                for (int iw = w0; iw < w1; iw++) row[iw] += share;
                            }
                        }
                    }
                }
            }
        });
        return Tensor.Own(dx, inputShape);
    }

    // The input range [lo, hi) an undilated window o covers on one axis, and its share of the divisor. In floor mode
    // with padding at most half the kernel the window lies inside the padded input, so with padding counted the share is the kernel.
    private static (int Lo, int Hi, int Divisor) Extent(int o, int size, int kernel, int stride, int pad, bool countIncludePad)
    {
        int start = o * stride - pad;
        int lo = Math.Max(start, 0), hi = Math.Min(start + kernel, size);
        return (lo, hi, countIncludePad ? kernel : hi - lo);
    }

    private static (WindowPlan Plan, Shape Output) Check(Shape x, ConvGeometry g, string kind, bool dilated)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(g);
        g.Validate(kind);
        string op = $"{kind}{g.Rank}d";
        if (x.Rank != g.Rank + 2)
            throw new ShapeException($"{op}: expected an input of rank {g.Rank + 2} (batch, channels and {g.Rank} spatial axes); found {x}.");
        if (!g.SymmetricPadding)
            throw new ShapeException($"{op}: pooling pads both ends of an axis alike; found padding before [{string.Join(", ", g.PadBegin)}] and after [{string.Join(", ", g.PadEnd)}].");
        for (int a = 0; a < g.Rank; a++)
        {
            if (2 * g.PadBegin[a] > g.Kernel[a])
                throw new ShapeException($"{op}: padding must be at most half the kernel (PyTorch's limit); found {g} for input {x}.");
            if (!dilated && g.Dilation[a] != 1)
                throw new ShapeException($"{op}: average pooling cannot be dilated; found {g}.");
        }
        var spatial = x.ToArray()[2..];
        var plan = new WindowPlan(spatial, g, $"{op} with input {x}");
        var o = plan.Output;
        for (int a = 0; a < g.Rank; a++)
            for (int i = 0; i < o[a]; i++)
            {
                var (lo, hi) = WindowPlan.Taps1(i, spatial[a], g.Kernel[a], g.Stride[a], g.PadBegin[a], g.Dilation[a]);
                if (lo >= hi)
                    throw new ShapeException($"{op}: output {i} of spatial axis {a} covers only padding (input {x}, window {g}).");
            }
        var dims = x.ToArray();
        for (int a = 0; a < g.Rank; a++) dims[2 + a] = o[a];
        return (plan, new Shape(dims));
    }
}
