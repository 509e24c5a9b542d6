using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>How a loss combines its terms into one scalar, as PyTorch's <c>reduction</c> argument.</summary>
public enum Reduction
{
    /// <summary>
    /// The mean of the terms (PyTorch's default <c>'mean'</c>): over the batch for the losses with one term per sample
    /// (cross-entropy, negative log-likelihood), over every element for the element-wise ones (squared error, binary
    /// cross-entropy). An empty input gives 0.
    /// </summary>
    Mean,

    /// <summary>The sum of the terms (PyTorch's <c>'sum'</c>).</summary>
    Sum,
}

/// <summary>A scalar loss and its gradient with respect to the network's output.</summary>
/// <param name="Value">The loss, reduced as asked (by default the mean: over the batch, or over every element for element-wise losses).</param>
/// <param name="Gradient">dLoss/dOutput, the output's shape.</param>
public sealed record LossResult(float Value, Tensor Gradient);

/// <summary>
/// Losses over a batch, each reduced by its <see cref="Reduction"/> argument (default <see cref="Reduction.Mean"/>, as
/// PyTorch's default <c>reduction='mean'</c>). Values are accumulated in double precision; targets are validated, and a
/// bad one is reported with its position and the range expected.
/// </summary>
public static partial class Losses
{
    /// <summary>
    /// Softmax cross-entropy of logits <c>[N, K]</c> against integer class labels in <c>[0, K)</c>:
    /// <c>sum_i (logsumexp(z_i) - z_i[y_i])</c>, divided by N for the mean; gradient <c>(softmax(z) - onehot(y)) / N</c>
    /// (without the division for the sum). As PyTorch's <c>cross_entropy</c> with class indices.
    /// </summary>
    /// <exception cref="ShapeException">The logits are not <c>[N, K]</c>.</exception>
    /// <exception cref="CnnException">The label count differs from N, a label is outside [0, K), or the reduction is unknown.</exception>
    public static LossResult SoftmaxCrossEntropy(Tensor logits, ReadOnlySpan<int> labels, Reduction reduction = Reduction.Mean)
    {
        const string op = "Softmax cross-entropy";
        ArgumentNullException.ThrowIfNull(logits);
        if (logits.Shape.Rank != 2) throw new ShapeException($"{op}: expected [N, K] logits; found {logits.Shape}.");
        int n = logits.Shape[0], k = logits.Shape[1];
        if (labels.Length != n) throw new CnnException($"{op}: expected {n} labels (one per row of logits {logits.Shape}); found {labels.Length}.");
        double divisor = Divisor(reduction, n, op);
        float scale = (float)(1 / divisor);
        var grad = TensorArena.Zeroed<float>(n * k);
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            int y = labels[i];
            if ((uint)y >= (uint)k) throw new CnnException($"{op}: label {y} at batch row {i} is outside [0, {k}).");
            var z = logits.Span.Slice(i * k, k);
            var g = grad.AsSpan(i * k, k);
            float max = TensorPrimitives.Max(z);
            TensorPrimitives.Subtract(z, max, g);
            TensorPrimitives.Exp(g, g);
            float sum = TensorPrimitives.Sum(g);
            total += Math.Log(sum) + max - z[y];
            TensorPrimitives.Multiply(g, scale / sum, g);
            g[y] -= scale;
        }
        return new LossResult((float)(total / divisor), Tensor.Own(grad, logits.Shape));
    }

    /// <summary>
    /// Softmax cross-entropy of logits <c>[N, K]</c> against target probabilities <c>[N, K]</c> (soft labels, label
    /// smoothing, distillation): <c>sum_i sum_k -t_ik log_softmax(z_i)_k</c>, divided by N for the mean, as PyTorch's
    /// <c>cross_entropy</c> with probability targets. Gradient <c>(softmax(z_i) * sum_k t_ik - t_i) / N</c>, which is
    /// <c>(softmax(z_i) - t_i) / N</c> when a row of targets sums to 1. Rows need not sum to 1 (PyTorch does not ask it either).
    /// </summary>
    /// <param name="logits">Logits <c>[N, K]</c>.</param>
    /// <param name="targetProbabilities">Targets <c>[N, K]</c>, each in [0, 1].</param>
    /// <param name="reduction">Mean over the batch (default) or sum.</param>
    /// <exception cref="ShapeException">The logits are not <c>[N, K]</c>, or the targets' shape differs from theirs.</exception>
    /// <exception cref="CnnException">A target is outside [0, 1] or NaN, or the reduction is unknown.</exception>
    public static LossResult SoftmaxCrossEntropy(Tensor logits, Tensor targetProbabilities, Reduction reduction = Reduction.Mean)
    {
        const string op = "Softmax cross-entropy (probability targets)";
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targetProbabilities);
        if (logits.Shape.Rank != 2) throw new ShapeException($"{op}: expected [N, K] logits; found {logits.Shape}.");
        if (targetProbabilities.Shape != logits.Shape)
            throw new ShapeException($"{op}: expected target probabilities of the logits' shape {logits.Shape}; found {targetProbabilities.Shape}.");
        CheckUnitInterval(targetProbabilities, op, "target probabilities");
        int n = logits.Shape[0], k = logits.Shape[1];
        double divisor = Divisor(reduction, n, op);
        var grad = TensorArena.Zeroed<float>(n * k);
        var p = new double[k];
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            var z = logits.Span.Slice(i * k, k);
            var t = targetProbabilities.Span.Slice(i * k, k);
            double max = TensorPrimitives.Max(z), sum = 0;
            for (int j = 0; j < k; j++) sum += p[j] = Math.Exp(z[j] - max);
            double lse = max + Math.Log(sum), mass = 0;
            for (int j = 0; j < k; j++)
            {
                // A zero target contributes nothing, even where log_softmax is -inf (an infinite logit elsewhere).
                if (t[j] != 0) total += t[j] * (lse - z[j]);
                mass += t[j];
            }
            for (int j = 0; j < k; j++) grad[i * k + j] = (float)((p[j] / sum * mass - t[j]) / divisor);
        }
        return new LossResult((float)(total / divisor), Tensor.Own(grad, logits.Shape));
    }

    /// <summary>
    /// Negative log-likelihood of log-probabilities <c>[N, K]</c> (a LogSoftmax output) against integer labels:
    /// <c>sum_i -z_i[y_i]</c>, divided by N for the mean, as PyTorch's <c>nll_loss</c>; gradient <c>-onehot(y) / N</c>
    /// (without the division for the sum).
    /// </summary>
    /// <exception cref="ShapeException">The input is not <c>[N, K]</c>.</exception>
    /// <exception cref="CnnException">The label count differs from N, a label is outside [0, K), or the reduction is unknown.</exception>
    public static LossResult NegativeLogLikelihood(Tensor logProbabilities, ReadOnlySpan<int> labels, Reduction reduction = Reduction.Mean)
    {
        const string op = "Negative log-likelihood";
        ArgumentNullException.ThrowIfNull(logProbabilities);
        if (logProbabilities.Shape.Rank != 2) throw new ShapeException($"{op}: expected [N, K] log-probabilities; found {logProbabilities.Shape}.");
        int n = logProbabilities.Shape[0], k = logProbabilities.Shape[1];
        if (labels.Length != n) throw new CnnException($"{op}: expected {n} labels (one per row of {logProbabilities.Shape}); found {labels.Length}.");
        double divisor = Divisor(reduction, n, op);
        float step = (float)(-1 / divisor);
        var grad = TensorArena.Zeroed<float>(n * k);
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            int y = labels[i];
            if ((uint)y >= (uint)k) throw new CnnException($"{op}: label {y} at batch row {i} is outside [0, {k}).");
            total -= logProbabilities[i * k + y];
            grad[i * k + y] = step;
        }
        return new LossResult((float)(total / divisor), Tensor.Own(grad, logProbabilities.Shape));
    }

    /// <summary>
    /// Squared error over every element, as PyTorch's <c>mse_loss</c>: <c>sum (y - t)^2</c>, divided by the number of
    /// elements for the mean; gradient <c>2 (y - t) / size</c> (without the division for the sum).
    /// </summary>
    /// <exception cref="ShapeException">The target's shape differs from the output's.</exception>
    /// <exception cref="CnnException">The reduction is unknown.</exception>
    public static LossResult MeanSquaredError(Tensor output, Tensor target, Reduction reduction = Reduction.Mean)
    {
        var (diff, divisor) = Differences(output, target, reduction, "Mean squared error");
        double sum = 0;
        foreach (var d in diff) sum += (double)d * d;
        TensorPrimitives.Multiply(diff, (float)(2 / divisor), diff);
        return new LossResult((float)(sum / divisor), Tensor.Own(diff, output.Shape));
    }

    /// <summary>
    /// Binary cross-entropy of probabilities <c>p</c> (a sigmoid output) against targets <c>t</c> of the same shape, element
    /// by element, as PyTorch's <c>binary_cross_entropy</c>: <c>-(t log p + (1 - t) log(1 - p))</c> with each log clamped
    /// at -100 (so p = 0 or 1 gives a finite loss), summed, and divided by the number of elements for the mean.
    /// Gradient <c>(p - t) / max(p (1 - p), 1e-12) / size</c>, PyTorch's (it ignores the clamp, and its epsilon keeps
    /// p = 0 or 1 finite). Prefer <see cref="BinaryCrossEntropyWithLogits"/>, which does not lose precision near 0 and 1.
    /// </summary>
    /// <param name="probabilities">Probabilities, any shape, each in [0, 1].</param>
    /// <param name="targets">Targets of the same shape, each in [0, 1] (0/1 labels or soft targets).</param>
    /// <param name="reduction">Mean over every element (default) or sum.</param>
    /// <exception cref="ShapeException">The targets' shape differs from the probabilities'.</exception>
    /// <exception cref="CnnException">A probability or target is outside [0, 1] or NaN, or the reduction is unknown.</exception>
    public static LossResult BinaryCrossEntropy(Tensor probabilities, Tensor targets, Reduction reduction = Reduction.Mean)
    {
        const string op = "Binary cross-entropy";
        ArgumentNullException.ThrowIfNull(probabilities);
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.Shape != probabilities.Shape)
            throw new ShapeException($"{op}: expected targets of the probabilities' shape {probabilities.Shape}; found {targets.Shape}.");
        CheckUnitInterval(probabilities, op, "probabilities (a sigmoid output; use the logits form for raw scores)");
        CheckUnitInterval(targets, op, "targets");
        double divisor = Divisor(reduction, probabilities.Size, op);
        var ps = probabilities.Span;
        var ts = targets.Span;
        var grad = TensorArena.Zeroed<float>(ps.Length);
        double total = 0;
        for (int e = 0; e < ps.Length; e++)
        {
            double p = ps[e], t = ts[e];
            total -= t * Math.Max(Math.Log(p), -100) + (1 - t) * Math.Max(Math.Log(1 - p), -100);
            grad[e] = (float)((p - t) / Math.Max(p * (1 - p), 1e-12) / divisor);
        }
        return new LossResult((float)(total / divisor), Tensor.Own(grad, probabilities.Shape));
    }

    /// <summary>
    /// Binary cross-entropy of logits <c>z</c> against targets <c>t</c> of the same shape, the sigmoid folded in, in the
    /// numerically stable form <c>max(z, 0) - z t + log(1 + exp(-|z|))</c> (no exp overflows, and nothing is lost for
    /// large |z|), as PyTorch's <c>binary_cross_entropy_with_logits</c>; summed, and divided by the number of elements
    /// for the mean. Gradient <c>(sigmoid(z) - t) / size</c>.
    /// </summary>
    /// <param name="logits">Logits, any shape (for a binary classifier, <c>[N, 1]</c> or <c>[N]</c>).</param>
    /// <param name="targets">Targets of the same shape, each in [0, 1] (0/1 labels or soft targets).</param>
    /// <param name="reduction">Mean over every element (default) or sum.</param>
    /// <exception cref="ShapeException">The targets' shape differs from the logits'.</exception>
    /// <exception cref="CnnException">A target is outside [0, 1] or NaN, or the reduction is unknown.</exception>
    public static LossResult BinaryCrossEntropyWithLogits(Tensor logits, Tensor targets, Reduction reduction = Reduction.Mean)
    {
        const string op = "Binary cross-entropy with logits";
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.Shape != logits.Shape)
            throw new ShapeException($"{op}: expected targets of the logits' shape {logits.Shape}; found {targets.Shape}.");
        CheckUnitInterval(targets, op, "targets");
        double divisor = Divisor(reduction, logits.Size, op);
        var zs = logits.Span;
        var ts = targets.Span;
        var grad = TensorArena.Zeroed<float>(zs.Length);
        double total = 0;
        for (int e = 0; e < zs.Length; e++)
        {
            double z = zs[e], t = ts[e];
            double q = Math.Exp(-Math.Abs(z));
            total += Math.Max(z, 0) - z * t + Math.Log(1 + q);
            double sigmoid = z >= 0 ? 1 / (1 + q) : q / (1 + q);
            grad[e] = (float)((sigmoid - t) / divisor);
        }
        return new LossResult((float)(total / divisor), Tensor.Own(grad, logits.Shape));
    }

    // What the sum of `count` terms is divided by: the count for the mean (1 when there are none, so an empty input gives 0), 1 for the sum.
    /// <summary>The element-wise <c>output - target</c> of an element-wise loss, after checking the shapes, and the reduction's divisor.</summary>
    private static (float[] Diff, double Divisor) Differences(Tensor output, Tensor target, Reduction reduction, string op)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(target);
        if (output.Shape != target.Shape) throw new ShapeException($"{op}: the target's shape {target.Shape} differs from the output's {output.Shape}.");
        double divisor = Divisor(reduction, output.Size, op);
        var diff = TensorArena.Zeroed<float>(output.Size);
        TensorPrimitives.Subtract(output.Span, target.Span, diff);
        return (diff, divisor);
    }

    private static double Divisor(Reduction reduction, int count, string op) => reduction switch
    {
        Reduction.Mean => Math.Max(1, count),
        Reduction.Sum => 1,
        _ => throw new CnnException($"{op}: expected the reduction {nameof(Reduction.Mean)} or {nameof(Reduction.Sum)}; found {(int)reduction}."),
    };

    private static void CheckUnitInterval(Tensor values, string op, string what)
    {
        var s = values.Span;
        for (int e = 0; e < s.Length; e++)
            if (!(s[e] >= 0f && s[e] <= 1f))
                throw new CnnException($"{op}: expected {what} in [0, 1]; found {s[e]} at flat index {e} of {values.Shape}.");
    }
}
