using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>One training batch as the pipeline makes it.</summary>
public sealed class PipelineBatch
{
    private readonly int[] _labels;

    internal PipelineBatch(long sequence, int epoch, int index, Tensor images, int[] labels)
    {
        (Sequence, Epoch, Index, Images, _labels) = (sequence, epoch, index, images, labels);
        Labels = Array.AsReadOnly(labels);
    }

    /// <summary>The 1-based epoch the batch belongs to.</summary>
    public int Epoch { get; }

    /// <summary>The 0-based batch within the epoch.</summary>
    public int Index { get; }

    /// <summary>The examples, converted, augmented and normalised: <c>[N, ...sample shape]</c>.</summary>
    public Tensor Images { get; }

    /// <summary>The label of each example; empty when the examples have float targets (<see cref="Targets"/>).</summary>
    public IReadOnlyList<int> Labels { get; }

    /// <summary>The float targets of the examples, <c>[N, ...target shape]</c>, when the data has them (<see cref="TargetData"/>); otherwise null.</summary>
    public Tensor? Targets { get; internal init; }

    internal ReadOnlySpan<int> LabelSpan => _labels;

    internal long Sequence { get; }
}
