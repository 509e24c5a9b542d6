using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>A scalar loss and its gradient with respect to the network's output.</summary>
/// <param name="Value">The loss, averaged over the batch.</param>
/// <param name="Gradient">dLoss/dOutput, the output's shape.</param>
public sealed record LossResult(float Value, Tensor Gradient);

/// <summary>Losses over a batch, each averaged over the batch as PyTorch's default <c>reduction='mean'</c>.</summary>
public static class Losses
{
    /// <summary>
    /// Softmax cross-entropy of logits <c>[N, K]</c> against integer class labels in <c>[0, K)</c>:
    /// <c>mean_i (logsumexp(z_i) - z_i[y_i])</c>; gradient <c>(softmax(z) - onehot(y)) / N</c>.
    /// </summary>
    /// <exception cref="CnnException">The label count differs from N, or a label is outside [0, K).</exception>
    public static LossResult SoftmaxCrossEntropy(Tensor logits, ReadOnlySpan<int> labels)
    {
        if (logits.Shape.Rank != 2) throw new ShapeException($"Softmax cross-entropy: expected [N, K] logits; found {logits.Shape}.");
        int n = logits.Shape[0], k = logits.Shape[1];
        if (labels.Length != n) throw new CnnException($"Softmax cross-entropy: expected {n} labels (one per row of logits {logits.Shape}); found {labels.Length}.");
        var grad = new float[n * k];
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            int y = labels[i];
            if ((uint)y >= (uint)k) throw new CnnException($"Softmax cross-entropy: label {y} at batch row {i} is outside [0, {k}).");
            var z = logits.Span.Slice(i * k, k);
            var g = grad.AsSpan(i * k, k);
            float max = TensorPrimitives.Max(z);
            TensorPrimitives.Subtract(z, max, g);
            TensorPrimitives.Exp(g, g);
            float sum = TensorPrimitives.Sum(g);
            total += Math.Log(sum) + max - z[y];
            TensorPrimitives.Multiply(g, 1f / (sum * n), g);
            g[y] -= 1f / n;
        }
        return new LossResult((float)(total / n), Tensor.Own(grad, logits.Shape));
    }

    /// <summary>
    /// Negative log-likelihood of log-probabilities <c>[N, K]</c> (a LogSoftmax output) against integer labels:
    /// <c>mean_i -z_i[y_i]</c>, as PyTorch's <c>nll_loss</c>; gradient <c>-onehot(y) / N</c>.
    /// </summary>
    /// <exception cref="CnnException">The label count differs from N, or a label is outside [0, K).</exception>
    public static LossResult NegativeLogLikelihood(Tensor logProbabilities, ReadOnlySpan<int> labels)
    {
        if (logProbabilities.Shape.Rank != 2) throw new ShapeException($"Negative log-likelihood: expected [N, K] log-probabilities; found {logProbabilities.Shape}.");
        int n = logProbabilities.Shape[0], k = logProbabilities.Shape[1];
        if (labels.Length != n) throw new CnnException($"Negative log-likelihood: expected {n} labels (one per row of {logProbabilities.Shape}); found {labels.Length}.");
        var grad = new float[n * k];
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            int y = labels[i];
            if ((uint)y >= (uint)k) throw new CnnException($"Negative log-likelihood: label {y} at batch row {i} is outside [0, {k}).");
            total -= logProbabilities[i * k + y];
            grad[i * k + y] = -1f / n;
        }
        return new LossResult((float)(total / n), Tensor.Own(grad, logProbabilities.Shape));
    }

    /// <summary>
    /// Mean squared error over every element, as PyTorch's <c>mse_loss</c> with <c>reduction='mean'</c>:
    /// <c>mean (y - t)^2</c>; gradient <c>2 (y - t) / size</c>.
    /// </summary>
    /// <exception cref="ShapeException">The target's shape differs from the output's.</exception>
    public static LossResult MeanSquaredError(Tensor output, Tensor target)
    {
        if (output.Shape != target.Shape) throw new ShapeException($"Mean squared error: the target's shape {target.Shape} differs from the output's {output.Shape}.");
        var diff = new float[output.Size];
        TensorPrimitives.Subtract(output.Span, target.Span, diff);
        double sum = 0;
        foreach (var d in diff) sum += (double)d * d;
        TensorPrimitives.Multiply(diff, 2f / Math.Max(1, diff.Length), diff);
        return new LossResult((float)(sum / Math.Max(1, diff.Length)), Tensor.Own(diff, output.Shape));
    }
}
