using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using TorchSharp;
using static Cnn.Tests.Kernels.LossesMoreProperties;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The losses on float targets as <c>Trainer</c> takes them (<see cref="LossFunction"/> values: binary cross-entropy on
/// probabilities and on logits, mean squared and absolute error) and the absolute-error kernel, against PyTorch's
/// <c>binary_cross_entropy</c>, <c>binary_cross_entropy_with_logits</c>, <c>mse_loss</c>, <c>l1_loss</c> and autograd, on
/// <see cref="ElementLossCase"/>'s shapes (rank 1 to 3), hard and soft targets and logits up to ±80.
/// </summary>
public sealed class TargetLossProperties
{
    private static readonly Arbitrary<ElementLossCase> ElementCases = ElementLossCase.Generator.ToArbitrary();

    /// <summary>
    /// Every float-target loss value, reduction 'mean' as Trainer uses it, with the tolerances its kernel property gives
    /// (<see cref="LossesMoreProperties"/>): values |a-b| &lt;= 1e-6 + 1e-5 |b|; gradients element-wise within 1e-6 of
    /// their magnitude, or within 1e-6 / n absolute for the logits form (sigmoid(z) - t may cancel).
    /// </summary>
    [CnnProperty]
    public Property Float_target_loss_values_match_torch() => Prop.ForAll(ElementCases, c => Scoped(() =>
    {
        var t = c.Targets();
        var p = c.InteriorProbabilities();
        var z = c.Logits();
        var y = RandomTensor(new Random(c.Seed + 3), c.Scale, c.Dims);

        var tp = T(p, requiresGrad: true);
        var bce = binary_cross_entropy(tp, T(t));
        bce.backward();
        var ours = LossFunction.BinaryCrossEntropy.Compute(p, t);
        Value(ours.Value, bce.item<float>(), 1e-6, 1e-5, "binary cross-entropy value");
        EachClose(ours.Gradient, Grad(tp), 1e-30, 1e-6, "binary cross-entropy gradient");

        var tz = T(z, requiresGrad: true);
        var logits = binary_cross_entropy_with_logits(tz, T(t));
        logits.backward();
        ours = LossFunction.BinaryCrossEntropyWithLogits.Compute(z, t);
        Value(ours.Value, logits.item<float>(), 1e-6, 1e-5, "binary cross-entropy with logits value");
        Close(ours.Gradient, Grad(tz), 1e-6 / c.Size, 0, "binary cross-entropy with logits gradient");

        var tz2 = T(z, requiresGrad: true);
        var mse = mse_loss(tz2, T(y));
        mse.backward();
        ours = LossFunction.MeanSquaredError.Compute(z, y);
        Value(ours.Value, mse.item<float>(), 1e-6, 1e-5, "mse value");
        EachClose(ours.Gradient, Grad(tz2), 1e-30, 1e-6, "mse gradient");

        var tz3 = T(z, requiresGrad: true);
        var l1 = l1_loss(tz3, T(y));
        l1.backward();
        ours = LossFunction.MeanAbsoluteError.Compute(z, y);
        Value(ours.Value, l1.item<float>(), 1e-6, 1e-5, "l1 value");
        EachClose(ours.Gradient, Grad(tz3), 0, 1e-7, "l1 gradient");
    }));

    /// <summary>
    /// The absolute-error kernel with both reductions, a third of the outputs equal to their targets (where the gradient is
    /// sign(0) = 0, as PyTorch's). Value: a float32 sum in LibTorch of at most 216 terms &gt;= 0: |a-b| &lt;= 1e-6 + 1e-5
    /// |b|. Gradient: ±1/n or 0, one rounding on both sides: within 1e-7 of its magnitude.
    /// </summary>
    [CnnProperty]
    public Property MeanAbsoluteError_matches_torch_for_both_reductions_and_ties() => Prop.ForAll(ElementCases, c => Scoped(() =>
    {
        var y = c.Logits();
        var rng = new Random(c.Seed + 5);
        var t = y.Span.ToArray();
        for (int i = 0; i < t.Length; i++)
            if (rng.Next(3) != 0) t[i] = (float)((rng.NextDouble() * 2 - 1) * c.Scale);
        var target = Tensor.FromArray(t, c.Dims);

        var loss = Losses.MeanAbsoluteError(y, target, c.Reduction);

        var ty = T(y, requiresGrad: true);
        var expected = l1_loss(ty, T(target), c.TorchReduction);
        expected.backward();
        Value(loss.Value, expected.item<float>(), 1e-6, 1e-5, "l1 value");
        EachClose(loss.Gradient, Grad(ty), 0, 1e-7, "l1 gradient");
    }));
}
