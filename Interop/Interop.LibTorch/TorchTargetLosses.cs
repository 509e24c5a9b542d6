using Cnn.Core;
using Cnn.Dsl;
using TorchSharp;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Interop.LibTorch;

/// <summary>The losses on float targets as LibTorch computes them: PyTorch's functions of the same names, mean over every element.</summary>
internal static class TorchTargetLosses
{
    /// <summary>The mean loss of <paramref name="output"/> against float <paramref name="targets"/> of its shape, on the output's device.</summary>
    /// <exception cref="CnnException">The loss takes integer labels, or has no LibTorch rule.</exception>
    public static TorchTensor LossOf(TorchTensor output, TorchTensor targets, LossFunction loss)
    {
        const torch.nn.Reduction mean = torch.nn.Reduction.Mean;
        if (loss.Equals(LossFunction.BinaryCrossEntropy)) return binary_cross_entropy(output, targets, reduction: mean);
        if (loss.Equals(LossFunction.BinaryCrossEntropyWithLogits)) return binary_cross_entropy_with_logits(output, targets, reduction: mean);
        if (loss.Equals(LossFunction.MeanSquaredError)) return mse_loss(output, targets, mean);
        if (loss.Equals(LossFunction.MeanAbsoluteError)) return l1_loss(output, targets, mean);
        throw new CnnException($"The LibTorch interpreter has no rule for the loss '{loss}' on float targets; it takes binary cross-entropy " +
            "(with logits), mean squared error and mean absolute error.");
    }

    /// <summary>
    /// Checks what LibTorch would not say as clearly: the loss takes float targets, the targets are <c>[N, ...output shape]</c>
    /// for the batch, and the cross-entropies' targets are in [0, 1].
    /// </summary>
    public static void Check(Network network, Tensor x, Tensor targets, LossFunction loss)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(loss);
        if (!loss.TakesFloatTargets)
            throw new CnnException($"The loss '{loss}' takes integer class labels; found float targets of shape {targets.Shape}.");
        var expected = network.OutputShape.PrependBatch(x.Shape[0]);
        if (targets.Shape != expected)
            throw new ShapeException($"The loss '{loss}': expected targets of shape {expected} (the batch's outputs); found {targets.Shape}.");
        if (!loss.Equals(LossFunction.BinaryCrossEntropy) && !loss.Equals(LossFunction.BinaryCrossEntropyWithLogits)) return;
        var t = targets.Span;
        for (int e = 0; e < t.Length; e++)
            if (!(t[e] >= 0f && t[e] <= 1f))
                throw new CnnException($"The loss '{loss}': expected targets in [0, 1]; found {t[e]} at flat index {e} of {targets.Shape}.");
    }
}
