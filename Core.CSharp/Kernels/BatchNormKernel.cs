using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Cnn.Core.Kernels;

/// <summary>The output of batch normalisation in training mode and the batch statistics, per channel.</summary>
/// <param name="Output">The normalised, scaled and shifted input.</param>
/// <param name="Mean">The batch mean of each channel, <c>[C]</c>.</param>
/// <param name="Variance">The biased batch variance of each channel (divided by the count, not count - 1), <c>[C]</c>.</param>
/// <param name="InvStd"><c>1 / sqrt(Variance + epsilon)</c>, <c>[C]</c>.</param>
public sealed record BatchNormTrainResult(Tensor Output, Tensor Mean, Tensor Variance, Tensor InvStd);

/// <summary>The gradients of batch normalisation.</summary>
/// <param name="Input">dL/dx, the input's shape.</param>
/// <param name="Gamma">dL/dgamma, <c>[C]</c>.</param>
/// <param name="Beta">dL/dbeta, <c>[C]</c>.</param>
public sealed record BatchNormGradients(Tensor Input, Tensor Gamma, Tensor Beta);

/// <summary>
/// Batch normalisation over channel axis 1 with statistics over every other axis, so one kernel serves
/// <c>[N, C]</c> (BatchNorm1d), <c>[N, C, L]</c>, <c>[N, C, H, W]</c> (BatchNorm2d) and <c>[N, C, D, H, W]</c> (BatchNorm3d):
/// <c>y = (x - mean) / sqrt(var + epsilon) * gamma + beta</c>, as PyTorch's <c>batch_norm</c>.
/// Statistics and parameter gradients are accumulated in double.
/// </summary>
public static class BatchNormKernel
{
    /// <summary>Channels per worker whose sums live on the stack (three lane sets of 64 bytes a channel: 48 KB at most).</summary>
    private const int StackChannels = 256;

    /// <summary>Normalises with the batch's own statistics (training mode) and returns them for the backward pass.</summary>
    /// <exception cref="ShapeException">The input has rank below 2, or gamma or beta is not <c>[C]</c>.</exception>
    /// <exception cref="CnnException">A channel has only one value (N times the spatial size is 1), or epsilon is negative.</exception>
    public static BatchNormTrainResult Train(Tensor x, Tensor gamma, Tensor beta, float epsilon) => Train(x, gamma, beta, epsilon, relu: false);

    /// <summary>
    /// <see cref="Train(Tensor, Tensor, Tensor, float)"/>, then <c>max(y, 0)</c> when <paramref name="relu"/>: each plane is
    /// rectified by <see cref="Activations.Relu"/>'s own function while it is in the cache, so the output is that of a ReLU
    /// layer after batch normalisation, bit for bit, without a pass over memory and an activation of its own.
    /// </summary>
    internal static BatchNormTrainResult Train(Tensor x, Tensor gamma, Tensor beta, float epsilon, bool relu)
    {
        var (n, c, s) = Layout("BatchNorm (train)", x, gamma, beta, null, null, epsilon);
        long count = (long)n * s;
        if (count < 2)
            throw new CnnException($"BatchNorm (train): expected more than one value per channel to take a variance over; found input {x.Shape} (N x spatial = {count}).");
        var mean = TensorArena.Zeroed<float>(c);
        var variance = TensorArena.Zeroed<float>(c);
        var invStd = TensorArena.Zeroed<float>(c);
        var y = TensorArena.Uninitialized<float>(x.Size);
        // Each worker owns a range of channels and walks the batch image by image (the range's planes are contiguous in
        // each image), so every pass reads memory in order; each channel's lanes still add its planes in image order.
        BatchParallel.For(c, (_, start, end) =>
        {
            var xs = x.Span;
            int width = end - start;
            // Per-channel scratch on the stack (up to StackChannels channels per worker): a training step allocates
            // nothing here, where the arrays came to 20 KB a layer pair at 64 channels.
            Span<BatchNormSums.Lanes> sums = width <= StackChannels ? stackalloc BatchNormSums.Lanes[width] : new BatchNormSums.Lanes[width];
            for (int i = 0; i < n; i++)
                for (int ch = start; ch < end; ch++) BatchNormSums.Sum(Plane(xs, i, ch, c, s), ref sums[ch - start]);
            Span<double> means = width <= StackChannels ? stackalloc double[width] : new double[width];
            for (int ch = start; ch < end; ch++) means[ch - start] = sums[ch - start].Total() / count;
            Span<BatchNormSums.Lanes> squares = width <= StackChannels ? stackalloc BatchNormSums.Lanes[width] : new BatchNormSums.Lanes[width];
            for (int i = 0; i < n; i++)
                for (int ch = start; ch < end; ch++) BatchNormSums.SquaredDeviation(Plane(xs, i, ch, c, s), means[ch - start], ref squares[ch - start]);
            Span<float> scales = width <= StackChannels ? stackalloc float[width] : new float[width];
            Span<float> shifts = width <= StackChannels ? stackalloc float[width] : new float[width];
            for (int ch = start; ch < end; ch++)
            {
                double m = means[ch - start], v = squares[ch - start].Total() / count;
                double istd = 1.0 / Math.Sqrt(v + epsilon);
                mean[ch] = (float)m;
                variance[ch] = (float)v;
                invStd[ch] = (float)istd;
                // y = (x - mf) * a + (beta - (m - mf) * a) with mf the mean rounded to float32: x - mf is exact for x
                // near the mean, so a large mean relative to the spread costs no accuracy (LibTorch's x * a + (beta -
                // m * a) loses ulp(m * a), which is ulp(500) at mean 10 and spread 0.05).
                double a = istd * gamma[ch];
                scales[ch - start] = (float)a;
                shifts[ch - start] = (float)(beta[ch] - (m - mean[ch]) * a);
            }
            for (int i = 0; i < n; i++)
                for (int ch = start; ch < end; ch++)
                {
                    var plane = y.AsSpan((i * c + ch) * s, s);
                    ShiftScaleShift(Plane(xs, i, ch, c, s), mean[ch], scales[ch - start], shifts[ch - start], plane);
                    if (relu) FusedActivation.Relu.ApplyInPlace(plane);
                }
        });
        var cs = new Shape(c);
        return new BatchNormTrainResult(Tensor.Own(y, x.Shape), Tensor.Own(mean, cs), Tensor.Own(variance, cs), Tensor.Own(invStd, cs));
    }

    /// <summary>
    /// The pullback of training-mode batch normalisation, through the batch statistics:
    /// <c>dbeta = sum(dy)</c>, <c>dgamma = sum(dy * xhat)</c>,
    /// <c>dx = gamma * invStd * (dy - dbeta / M - xhat * dgamma / M)</c> with <c>M</c> the values per channel.
    /// </summary>
    /// <exception cref="ShapeException">The shapes do not match the forward pass.</exception>
    public static BatchNormGradients TrainBackward(Tensor x, Tensor gamma, BatchNormTrainResult forward, Tensor dy) =>
        TrainBackward(x, gamma, forward, dy, reluOutput: null);

    /// <summary>
    /// <see cref="TrainBackward(Tensor, Tensor, BatchNormTrainResult, Tensor)"/> of <c>relu(batchNorm(x))</c> when
    /// <paramref name="reluOutput"/> (the forward output with <c>relu: true</c>) is given: the upstream gradient is masked as
    /// <see cref="Activations.ReluBackward"/> masks it, plane by plane into dx during the pass that sums it, and dx is then
    /// computed in place, so the bits are those of the two layers' pullbacks one after the other.
    /// </summary>
    internal static BatchNormGradients TrainBackward(Tensor x, Tensor gamma, BatchNormTrainResult forward, Tensor dy, Tensor? reluOutput)
    {
        ArgumentNullException.ThrowIfNull(forward);
        var (n, c, s) = Layout("BatchNorm (train) backward", x, gamma, null, forward.Mean, forward.InvStd, 0f);
        SameShape("BatchNorm (train) backward", x, dy);
        if (reluOutput is not null) SameShape("BatchNorm (train) backward", x, reluOutput);
        long count = (long)n * s;
        var dx = TensorArena.Uninitialized<float>(x.Size);
        var dgamma = TensorArena.Zeroed<float>(c);
        var dbeta = TensorArena.Zeroed<float>(c);
        // As in the forward pass: a range of channels per worker, the batch walked image by image.
        BatchParallel.For(c, (_, start, end) =>
        {
            var xs = x.Span;
            var ds = dy.Span;
            int width = end - start;
            Span<BatchNormSums.Lanes> sumDys = width <= StackChannels ? stackalloc BatchNormSums.Lanes[width] : new BatchNormSums.Lanes[width];
            Span<BatchNormSums.Lanes> dots = width <= StackChannels ? stackalloc BatchNormSums.Lanes[width] : new BatchNormSums.Lanes[width];
            Span<BatchNormSums.Lanes> deviations = width <= StackChannels ? stackalloc BatchNormSums.Lanes[width] : new BatchNormSums.Lanes[width];
            for (int i = 0; i < n; i++)
                for (int ch = start; ch < end; ch++)
                {
                    int o = ch - start;
                    var d = Plane(ds, i, ch, c, s);
                    if (reluOutput is not null)
                    {
                        var masked = dx.AsSpan((i * c + ch) * s, s);
                        Activations.ReluMask(Plane(reluOutput.Span, i, ch, c, s), d, masked);
                        d = masked;
                    }
                    BatchNormSums.DeviationDot(Plane(xs, i, ch, c, s), d, forward.Mean[ch], ref sumDys[o], ref dots[o], ref deviations[o]);
                }
            Span<float> scales = width <= StackChannels ? stackalloc float[width] : new float[width];
            Span<float> shifts = width <= StackChannels ? stackalloc float[width] : new float[width];
            Span<float> slopes = width <= StackChannels ? stackalloc float[width] : new float[width];
            for (int ch = start; ch < end; ch++)
            {
                int o = ch - start;
                double istd = forward.InvStd[ch];
                double sumDy = sumDys[o].Total(), dot = dots[o].Total(), sumDev = deviations[o].Total();
                // The saved mean m is the true mean rounded to float32, off by delta = sum(x - m) / M, which is tiny but
                // divided by a spread that may be tinier. Both uses of m are corrected: sum(dy * (x - mean)) =
                // sum(dy * (x - m)) - delta * sum(dy), and x - mean = (x - m) - delta, where x - m is exact in float32
                // for x near m, and -delta is folded into the per-channel constant below.
                double delta = sumDev / count;
                dot -= delta * sumDy;
                dbeta[ch] = (float)sumDy;
                dgamma[ch] = (float)(dot * istd);
                // dx = ((dy - sum(dy)/M) - (x - mean) * k) * gamma * invStd, with k = sum(dy * (x - mean)) * invStd^2 / M.
                double k = dot * istd * istd / count;
                slopes[o] = (float)-k;
                shifts[o] = (float)(sumDy / count - delta * k);
                scales[o] = (float)(istd * gamma[ch]);
            }
            for (int i = 0; i < n; i++)
                for (int ch = start; ch < end; ch++)
                {
                    int o = ch - start;
                    var plane = dx.AsSpan((i * c + ch) * s, s);
                    // With a ReLU, dx holds the masked upstream gradient: read and overwritten element by element.
                    InputGradient(Plane(xs, i, ch, c, s), reluOutput is null ? Plane(ds, i, ch, c, s) : plane, forward.Mean[ch], slopes[o], shifts[o], scales[o], plane);
                }
        });
        var cs = new Shape(c);
        return new BatchNormGradients(Tensor.Own(dx, x.Shape), Tensor.Own(dgamma, cs), Tensor.Own(dbeta, cs));
    }

    /// <summary>Normalises with the running statistics (evaluation mode): an affine map per channel.</summary>
    /// <exception cref="ShapeException">The input has rank below 2, or a parameter or statistic is not <c>[C]</c>.</exception>
    public static Tensor Eval(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVariance, float epsilon)
    {
        var (n, c, s) = Layout("BatchNorm (eval)", x, gamma, beta, runningMean, runningVariance, epsilon);
        var scale = TensorArena.Zeroed<float>(c);
        var shift = TensorArena.Zeroed<float>(c);
        for (int ch = 0; ch < c; ch++)
        {
            double a = gamma[ch] / Math.Sqrt((double)runningVariance[ch] + epsilon);
            scale[ch] = (float)a;
            shift[ch] = (float)(beta[ch] - runningMean[ch] * a);
        }
        var y = TensorArena.Zeroed<float>(x.Size);
        BatchParallel.For(n * c, (_, start, end) =>
        {
            for (int p = start; p < end; p++)
                Affine(x.Span.Slice(p * s, s), scale[p % c], shift[p % c], y.AsSpan(p * s, s));
        });
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>
    /// The pullback of evaluation-mode batch normalisation (the running statistics are constants):
    /// <c>dx = dy * gamma / sqrt(runningVariance + epsilon)</c>, <c>dgamma = sum(dy * xhat)</c>, <c>dbeta = sum(dy)</c>.
    /// </summary>
    /// <exception cref="ShapeException">The shapes do not fit.</exception>
    public static BatchNormGradients EvalBackward(Tensor x, Tensor gamma, Tensor runningMean, Tensor runningVariance, float epsilon, Tensor dy)
    {
        var (n, c, s) = Layout("BatchNorm (eval) backward", x, gamma, null, runningMean, runningVariance, epsilon);
        SameShape("BatchNorm (eval) backward", x, dy);
        var dx = TensorArena.Zeroed<float>(x.Size);
        var dgamma = TensorArena.Zeroed<float>(c);
        var dbeta = TensorArena.Zeroed<float>(c);
        BatchParallel.For(c, (_, start, end) =>
        {
            var xs = x.Span;
            var ds = dy.Span;
            for (int ch = start; ch < end; ch++)
            {
                double istd = 1.0 / Math.Sqrt((double)runningVariance[ch] + epsilon);
                double m = runningMean[ch];
                var sumDy = new BatchNormSums.Lanes();
                var dot = new BatchNormSums.Lanes();
                var deviation = new BatchNormSums.Lanes();
                float w = (float)(istd * gamma[ch]);
                for (int i = 0; i < n; i++)
                {
                    var d = Plane(ds, i, ch, c, s);
                    BatchNormSums.DeviationDot(Plane(xs, i, ch, c, s), d, m, ref sumDy, ref dot, ref deviation);
                    TensorPrimitives.Multiply(d, w, dx.AsSpan((i * c + ch) * s, s));
                }
                dbeta[ch] = (float)sumDy.Total();
                dgamma[ch] = (float)(dot.Total() * istd);
            }
        });
        var cs = new Shape(c);
        return new BatchNormGradients(Tensor.Own(dx, x.Shape), Tensor.Own(dgamma, cs), Tensor.Own(dbeta, cs));
    }

    /// <summary>
    /// The running-statistic update <c>(1 - momentum) * running + momentum * batchStatistic</c>, element-wise (PyTorch's
    /// convention: momentum is the weight of the new batch, 0.1 by default; Keras and ONNX weight the old value instead).
    /// </summary>
    /// <exception cref="ShapeException">The two shapes differ.</exception>
    public static Tensor UpdateRunning(Tensor running, Tensor batchStatistic, float momentum)
    {
        if (running.Shape != batchStatistic.Shape)
            throw new ShapeException($"BatchNorm running update: expected a batch statistic of the running statistic's shape {running.Shape}; found {batchStatistic.Shape}.");
        var r = TensorArena.Zeroed<float>(running.Size);
        for (int i = 0; i < r.Length; i++) r[i] = (float)((1.0 - momentum) * running[i] + (double)momentum * batchStatistic[i]);
        return Tensor.Own(r, running.Shape);
    }

    /// <summary>
    /// The unbiased batch variance <c>Variance * M / (M - 1)</c>, with <paramref name="countPerChannel"/> = M the values per
    /// channel (N times the spatial size): PyTorch updates the running variance with it, while it normalises with the biased one.
    /// </summary>
    /// <exception cref="CnnException">The count is below 2.</exception>
    public static Tensor UnbiasedVariance(BatchNormTrainResult r, int countPerChannel)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (countPerChannel < 2)
            throw new CnnException($"BatchNorm: the unbiased variance needs at least 2 values per channel; found {countPerChannel}.");
        double f = countPerChannel / (countPerChannel - 1.0);
        var v = TensorArena.Zeroed<float>(r.Variance.Size);
        for (int i = 0; i < v.Length; i++) v[i] = (float)(r.Variance[i] * f);
        return Tensor.Own(v, r.Variance.Shape);
    }

    /// <summary>The number of values per channel that the statistics of an input of this shape run over: N times the spatial size.</summary>
    public static int CountPerChannel(Shape inputShape) => inputShape.Rank < 2 || inputShape[1] == 0 ? 0 : inputShape.Size / inputShape[1];

    private static void Affine(ReadOnlySpan<float> x, float a, float b, Span<float> y)
    {
        TensorPrimitives.Multiply(x, a, y);
        TensorPrimitives.Add(y, b, y);
    }

    private static ReadOnlySpan<float> Plane(ReadOnlySpan<float> data, int i, int ch, int c, int s) => data.Slice((i * c + ch) * s, s);

    /// <summary><c>y = ((x - m) * a) + b</c>, each operation rounded to float32 in that order.</summary>
    private static unsafe void ShiftScaleShift(ReadOnlySpan<float> x, float m, float a, float b, Span<float> y)
    {
        if (y.Length != x.Length) throw new ArgumentException("The output differs in length from the input.", nameof(y));
        fixed (float* px = x, py = y)
        {
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                Vector512<float> vm = Vector512.Create(m), va = Vector512.Create(a), vb = Vector512.Create(b);
                for (; i + 16 <= x.Length; i += 16) Vector512.Store((Vector512.Load(px + i) - vm) * va + vb, py + i);
            }
            // CPUs without AVX-512, and the 8 to 15 last elements on those with it: the same operations lane by lane.
            if (Vector256.IsHardwareAccelerated)
            {
                Vector256<float> vm = Vector256.Create(m), va = Vector256.Create(a), vb = Vector256.Create(b);
                for (; i + 8 <= x.Length; i += 8) Vector256.Store((Vector256.Load(px + i) - vm) * va + vb, py + i);
            }
            for (; i < x.Length; i++) py[i] = (px[i] - m) * a + b;
        }
    }

    /// <summary><c>dx = ((((x - m) * nk) + dy) - shift) * w</c>, each operation rounded to float32 in that order.</summary>
    private static unsafe void InputGradient(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, float m, float nk, float shift, float w, Span<float> dx)
    {
        if (dy.Length != x.Length || dx.Length != x.Length) throw new ArgumentException("The gradients differ in length from the input.", nameof(dx));
        fixed (float* px = x, pd = dy, pdx = dx)
        {
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                Vector512<float> vm = Vector512.Create(m), vk = Vector512.Create(nk), vs = Vector512.Create(shift), vw = Vector512.Create(w);
                for (; i + 16 <= x.Length; i += 16)
                    Vector512.Store(((Vector512.Load(px + i) - vm) * vk + Vector512.Load(pd + i) - vs) * vw, pdx + i);
            }
            if (Vector256.IsHardwareAccelerated)
            {
                Vector256<float> vm = Vector256.Create(m), vk = Vector256.Create(nk), vs = Vector256.Create(shift), vw = Vector256.Create(w);
                for (; i + 8 <= x.Length; i += 8)
                    Vector256.Store(((Vector256.Load(px + i) - vm) * vk + Vector256.Load(pd + i) - vs) * vw, pdx + i);
            }
            for (; i < x.Length; i++) pdx[i] = ((px[i] - m) * nk + pd[i] - shift) * w;
        }
    }

    private static (int n, int c, int s) Layout(string op, Tensor x, Tensor gamma, Tensor? beta, Tensor? mean, Tensor? variance, float epsilon)
    {
        if (x.Shape.Rank < 2)
            throw new ShapeException($"{op}: expected an input [N, C, ...] of rank >= 2; found {x.Shape}.");
        int c = x.Shape[1];
        var cs = new Shape(c);
        Check(op, "gamma", gamma, cs, x.Shape);
        if (beta is not null) Check(op, "beta", beta, cs, x.Shape);
        if (mean is not null) Check(op, "mean", mean, cs, x.Shape);
        if (variance is not null) Check(op, "variance", variance, cs, x.Shape);
        if (!(epsilon >= 0f) || float.IsInfinity(epsilon))
            throw new CnnException($"{op}: expected a finite epsilon >= 0; found {epsilon}.");
        int n = x.Shape[0];
        int s = n == 0 || c == 0 ? 0 : x.Size / (n * c);
        return (n, c, s);
    }

    private static void Check(string op, string name, Tensor t, Shape expected, Shape input)
    {
        if (t.Shape != expected)
            throw new ShapeException($"{op}: expected {name} of shape {expected} for input {input}; found {t.Shape}.");
    }

    private static void SameShape(string op, Tensor x, Tensor dy)
    {
        if (x.Shape != dy.Shape) throw new ShapeException($"{op}: expected an upstream gradient of the input's shape {x.Shape}; found {dy.Shape}.");
    }
}
