using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>What a batch is scored against: one class label per sample, or float targets of the output's shape.</summary>
internal readonly ref struct BatchTruth
{
    private readonly ReadOnlySpan<int> _labels;
    private readonly Tensor? _targets;

    public BatchTruth(ReadOnlySpan<int> labels) => _labels = labels;

    public BatchTruth(Tensor targets) => _targets = targets ?? throw new ArgumentNullException(nameof(targets));

    public LossResult Loss(LossFunction loss, Tensor output) => _targets is null ? loss.Compute(output, _labels) : loss.Compute(output, _targets);
}
