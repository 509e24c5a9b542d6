using System.Buffers;
using System.Numerics.Tensors;

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
    // Elements converted to double per step: large enough to vectorise well, small enough to stay in L1.
    private const int Block = 2048;

    /// <summary>Normalises with the batch's own statistics (training mode) and returns them for the backward pass.</summary>
    /// <exception cref="ShapeException">The input has rank below 2, or gamma or beta is not <c>[C]</c>.</exception>
    /// <exception cref="CnnException">A channel has only one value (N times the spatial size is 1), or epsilon is negative.</exception>
    public static BatchNormTrainResult Train(Tensor x, Tensor gamma, Tensor beta, float epsilon)
    {
        var (n, c, s) = Layout("BatchNorm (train)", x, gamma, beta, null, null, epsilon);
        long count = (long)n * s;
        if (count < 2)
            throw new CnnException($"BatchNorm (train): expected more than one value per channel to take a variance over; found input {x.Shape} (N x spatial = {count}).");
        var mean = TensorArena.Zeroed<float>(c);
        var variance = TensorArena.Zeroed<float>(c);
        var invStd = TensorArena.Zeroed<float>(c);
        var y = TensorArena.Zeroed<float>(x.Size);
        BatchParallel.For(c, (_, start, end) =>
        {
            double[] buf = ArrayPool<double>.Shared.Rent(Math.Min(s, Block));
            try
            {
                var xs = x.Span;
                for (int ch = start; ch < end; ch++)
                {
                    double sum = 0;
                    for (int i = 0; i < n; i++) sum += SumDouble(Plane(xs, i, ch, c, s), buf);
                    double m = sum / count;
                    double sq = 0;
                    for (int i = 0; i < n; i++) sq += SumSquaredDeviation(Plane(xs, i, ch, c, s), m, buf);
                    double v = sq / count;
                    double istd = 1.0 / Math.Sqrt(v + epsilon);
                    mean[ch] = (float)m;
                    variance[ch] = (float)v;
                    invStd[ch] = (float)istd;
                    // y = (x - mf) * a + (beta - (m - mf) * a) with mf the mean rounded to float32: x - mf is exact for x
                    // near the mean, so a large mean relative to the spread costs no accuracy (LibTorch's x * a + (beta -
                    // m * a) loses ulp(m * a), which is ulp(500) at mean 10 and spread 0.05).
                    float mf = mean[ch];
                    double a = istd * gamma[ch];
                    float b = (float)(beta[ch] - (m - mf) * a);
                    for (int i = 0; i < n; i++)
                    {
                        var yi = y.AsSpan((i * c + ch) * s, s);
                        TensorPrimitives.Subtract(Plane(xs, i, ch, c, s), mf, yi);
                        Affine(yi, (float)a, b, yi);
                    }
                }
            }
            finally { ArrayPool<double>.Shared.Return(buf); }
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
    public static BatchNormGradients TrainBackward(Tensor x, Tensor gamma, BatchNormTrainResult forward, Tensor dy)
    {
        ArgumentNullException.ThrowIfNull(forward);
        var (n, c, s) = Layout("BatchNorm (train) backward", x, gamma, null, forward.Mean, forward.InvStd, 0f);
        SameShape("BatchNorm (train) backward", x, dy);
        long count = (long)n * s;
        var dx = TensorArena.Zeroed<float>(x.Size);
        var dgamma = TensorArena.Zeroed<float>(c);
        var dbeta = TensorArena.Zeroed<float>(c);
        BatchParallel.For(c, (_, start, end) =>
        {
            double[] bx = ArrayPool<double>.Shared.Rent(Math.Min(s, Block));
            double[] bd = ArrayPool<double>.Shared.Rent(Math.Min(s, Block));
            float[] t = ArrayPool<float>.Shared.Rent(s);
            try
            {
                var xs = x.Span;
                var ds = dy.Span;
                for (int ch = start; ch < end; ch++)
                {
                    double m = forward.Mean[ch], istd = forward.InvStd[ch];
                    double sumDy = 0, dot = 0, sumDev = 0;
                    for (int i = 0; i < n; i++)
                    {
                        sumDy += SumDouble(Plane(ds, i, ch, c, s), bd);
                        var (d, e) = DeviationDot(Plane(xs, i, ch, c, s), m, Plane(ds, i, ch, c, s), bx, bd);
                        dot += d;
                        sumDev += e;
                    }
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
                    float shift = (float)(sumDy / count - delta * k);
                    float w = (float)(istd * gamma[ch]);
                    var ts = t.AsSpan(0, s);
                    for (int i = 0; i < n; i++)
                    {
                        TensorPrimitives.Subtract(Plane(xs, i, ch, c, s), (float)m, ts);
                        TensorPrimitives.MultiplyAdd(ts, (float)-k, Plane(ds, i, ch, c, s), ts);
                        TensorPrimitives.Subtract(ts, shift, ts);
                        TensorPrimitives.Multiply(ts, w, dx.AsSpan((i * c + ch) * s, s));
                    }
                }
            }
            finally
            {
                ArrayPool<double>.Shared.Return(bx);
                ArrayPool<double>.Shared.Return(bd);
                ArrayPool<float>.Shared.Return(t);
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
            double[] bx = ArrayPool<double>.Shared.Rent(Math.Min(s, Block));
            double[] bd = ArrayPool<double>.Shared.Rent(Math.Min(s, Block));
            try
            {
                var xs = x.Span;
                var ds = dy.Span;
                for (int ch = start; ch < end; ch++)
                {
                    double istd = 1.0 / Math.Sqrt((double)runningVariance[ch] + epsilon);
                    double m = runningMean[ch];
                    double sumDy = 0, dot = 0;
                    float w = (float)(istd * gamma[ch]);
                    for (int i = 0; i < n; i++)
                    {
                        var d = Plane(ds, i, ch, c, s);
                        sumDy += SumDouble(d, bd);
                        dot += DeviationDot(Plane(xs, i, ch, c, s), m, d, bx, bd).Dot;
                        TensorPrimitives.Multiply(d, w, dx.AsSpan((i * c + ch) * s, s));
                    }
                    dbeta[ch] = (float)sumDy;
                    dgamma[ch] = (float)(dot * istd);
                }
            }
            finally
            {
                ArrayPool<double>.Shared.Return(bx);
                ArrayPool<double>.Shared.Return(bd);
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

    private static double SumDouble(ReadOnlySpan<float> a, double[] buf)
    {
        double total = 0;
        for (int o = 0; o < a.Length; o += Block)
        {
            int len = Math.Min(Block, a.Length - o);
            var b = buf.AsSpan(0, len);
            TensorPrimitives.ConvertChecked(a.Slice(o, len), b);
            total += TensorPrimitives.Sum<double>(b);
        }
        return total;
    }

    private static double SumSquaredDeviation(ReadOnlySpan<float> a, double mean, double[] buf)
    {
        double total = 0;
        for (int o = 0; o < a.Length; o += Block)
        {
            int len = Math.Min(Block, a.Length - o);
            var b = buf.AsSpan(0, len);
            TensorPrimitives.ConvertChecked(a.Slice(o, len), b);
            TensorPrimitives.Subtract(b, mean, b);
            total += TensorPrimitives.SumOfSquares<double>(b);
        }
        return total;
    }

    // sum((x - mean) * dy) and sum(x - mean), in double.
    private static (double Dot, double SumDeviation) DeviationDot(ReadOnlySpan<float> x, double mean, ReadOnlySpan<float> dy, double[] bx, double[] bd)
    {
        double total = 0, deviation = 0;
        for (int o = 0; o < x.Length; o += Block)
        {
            int len = Math.Min(Block, x.Length - o);
            var a = bx.AsSpan(0, len);
            var d = bd.AsSpan(0, len);
            TensorPrimitives.ConvertChecked(x.Slice(o, len), a);
            TensorPrimitives.ConvertChecked(dy.Slice(o, len), d);
            TensorPrimitives.Subtract(a, mean, a);
            total += TensorPrimitives.Dot<double>(a, d);
            deviation += TensorPrimitives.Sum<double>(a);
        }
        return (total, deviation);
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
