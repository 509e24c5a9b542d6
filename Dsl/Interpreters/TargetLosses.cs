using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

// The losses on float targets (TargetData): binary cross-entropy, absolute error; and which data each loss takes.
public abstract partial record LossFunction
{
    /// <summary>
    /// Binary cross-entropy of probabilities (a network ending in <see cref="Sigmoid"/>) against float targets in [0, 1]
    /// (0/1 labels, several per sample for multi-label, or soft targets), over every element, as PyTorch's
    /// <c>binary_cross_entropy</c> (its logs clamped at -100). Prefer <see cref="BinaryCrossEntropyWithLogits"/>.
    /// </summary>
    public static LossFunction BinaryCrossEntropy { get; } = new Bce();

    /// <summary>
    /// Binary cross-entropy of logits (the sigmoid folded in, in the stable form that neither overflows nor loses
    /// precision for large logits) against float targets in [0, 1], over every element, as PyTorch's
    /// <c>binary_cross_entropy_with_logits</c>.
    /// </summary>
    public static LossFunction BinaryCrossEntropyWithLogits { get; } = new BceWithLogits();

    /// <summary>Mean absolute error (L1) against float targets, over every element, as PyTorch's <c>l1_loss</c>.</summary>
    public static LossFunction MeanAbsoluteError { get; } = new L1();

    /// <summary>Whether the loss takes float targets (<see cref="Data.TargetData"/>); every loss but the three above takes integer labels.</summary>
    public bool TakesFloatTargets => this is Bce or BceWithLogits or L1 or Mse;

    /// <summary>Whether the loss takes integer class labels (<see cref="Data.LabeledData"/>).</summary>
    public bool TakesLabels => this is not (Bce or BceWithLogits or L1);

    /// <summary>The loss of <paramref name="output"/> against float <paramref name="targets"/> of its shape, and its gradient.</summary>
    /// <exception cref="CnnException">The loss takes integer class labels only (<see cref="TakesFloatTargets"/> is false),
    /// the shapes differ, or a target is outside the loss's range.</exception>
    public virtual LossResult Compute(Tensor output, Tensor targets) =>
        throw new CnnException($"The loss '{this}' takes integer class labels (LabeledData); found float targets of shape {targets.Shape}. " +
            "On float targets use binary cross-entropy (with logits), mean squared error or mean absolute error.");

    private CnnException NeedsTargets(int labels) =>
        new($"The loss '{this}' takes float targets (TargetData); found {labels} integer class labels. " +
            "On labels use softmax cross-entropy, negative log-likelihood or mean squared error.");

    private sealed record Bce : LossFunction
    {
        public override LossResult Compute(Tensor output, ReadOnlySpan<int> labels) => throw NeedsTargets(labels.Length);

        public override LossResult Compute(Tensor output, Tensor targets) => Losses.BinaryCrossEntropy(output, targets);

        public override string ToString() => "binary cross-entropy";
    }

    private sealed record BceWithLogits : LossFunction
    {
        public override LossResult Compute(Tensor output, ReadOnlySpan<int> labels) => throw NeedsTargets(labels.Length);

        public override LossResult Compute(Tensor output, Tensor targets) => Losses.BinaryCrossEntropyWithLogits(output, targets);

        public override string ToString() => "binary cross-entropy with logits";
    }

    private sealed record L1 : LossFunction
    {
        public override LossResult Compute(Tensor output, ReadOnlySpan<int> labels) => throw NeedsTargets(labels.Length);

        public override LossResult Compute(Tensor output, Tensor targets) => Losses.MeanAbsoluteError(output, targets);

        public override string ToString() => "mean absolute error";
    }
}

// Loss and gradient of a network on a batch with float targets.
public static partial class Loss
{
    /// <summary>
    /// The loss of the network on a batch with float targets and the gradient of every trainable parameter; in training mode,
    /// the total loss of a network with auxiliary heads (<see cref="TotalLoss"/>), each head scored against the same targets.
    /// </summary>
    /// <exception cref="CnnException">The loss takes integer labels, the targets' shape differs from the output's, or a
    /// target is outside the loss's range.</exception>
    public static GradientResult Gradient(Network network, Parameters parameters, Tensor x, Tensor targets, LossFunction loss,
        Mode mode = Mode.Train, Parameters? state = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(loss);
        var fwd = Apply.WithPullback(network, parameters, x, mode, state, seed);
        ArgumentNullException.ThrowIfNull(targets);
        var l = TotalLoss.Of(fwd, loss, new BatchTruth(targets));
        var pulled = l.Pullback(fwd);
        return new GradientResult(l.Value, fwd.Output, pulled.Parameters, pulled.Input, fwd.State);
    }
}
