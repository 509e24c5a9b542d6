using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// An immutable set of examples with float targets of any per-sample shape: regression values, several 0/1 labels per
/// example (multi-label), soft targets, or a target image. The first axis of both tensors is the example. It trains
/// with a loss that takes float targets (<see cref="LossFunction.TakesFloatTargets"/>); the network's output per sample
/// has the targets' shape.
/// </summary>
/// <remarks>
/// <see cref="Tensor"/> is immutable, so nothing the caller does afterwards changes an instance. Every method returns
/// a new instance and leaves this one as it is. Accuracy is a classification metric: on float targets
/// <c>Trainer</c> reports it as NaN (<see cref="Evaluation.Accuracy"/>).
/// </remarks>
public sealed class TargetData
{
    /// <summary>Creates a data set after checking that the images and targets fit together.</summary>
    /// <param name="images">The examples, first axis = example; rank at least 1.</param>
    /// <param name="targets">The targets, first axis = example (as many as the images); rank at least 1 (<c>[N]</c> is
    /// one scalar per example, whose per-sample shape is <c>[]</c>); every value finite.</param>
    /// <exception cref="CnnException">A tensor has no example axis, the counts differ, or a target is NaN or infinite
    /// (the message names the example and the value).</exception>
    public TargetData(Tensor images, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(targets);
        if (images.Shape.Rank == 0 || targets.Shape.Rank == 0)
            throw new CnnException($"The images and targets of a data set need a first (example) axis; found shapes {images.Shape} and {targets.Shape}.");
        if (images.Shape[0] != targets.Shape[0])
            throw new CnnException(
                $"A data set needs one target per image: the images (shape {images.Shape}) hold {images.Shape[0]} examples, " +
                $"the targets (shape {targets.Shape}) {targets.Shape[0]}.");
        int size = targets.Shape.DropBatch().Size;
        var t = targets.Span;
        for (int e = 0; e < t.Length; e++)
            if (!float.IsFinite(t[e]))
                throw new CnnException($"The target of example {e / size} is {t[e]} (flat index {e % size} of its {targets.Shape.DropBatch()}); targets must be finite.");
        Images = images;
        Targets = targets;
    }

    /// <summary>The examples; the first axis is the example.</summary>
    public Tensor Images { get; }

    /// <summary>The targets; the first axis is the example.</summary>
    public Tensor Targets { get; }

    /// <summary>The shape of one example's target (the network's output shape per sample).</summary>
    public Shape TargetShape => Targets.Shape.DropBatch();

    /// <summary>The number of examples.</summary>
    public int Count => Images.Shape[0];

    /// <summary>
    /// Shuffles the examples deterministically and splits them, as <see cref="LabeledData.Split"/> does (the same seed
    /// gives the same order of rows).
    /// </summary>
    /// <param name="firstCount">How many examples go to the first part; in <c>[0, Count]</c>.</param>
    /// <param name="seed">The shuffle's seed.</param>
    /// <exception cref="CnnException"><paramref name="firstCount"/> is outside <c>[0, Count]</c>.</exception>
    public TargetDataSplit Split(int firstCount, int seed)
    {
        if (firstCount < 0 || firstCount > Count)
            throw new CnnException($"Split needs a first part of 0 to {Count} examples (the data set's size); found {firstCount}.");
        var order = LabeledData.ShuffledRows(Count, seed);
        return new TargetDataSplit(Take(order[..firstCount]), Take(order[firstCount..]));
    }

    /// <summary>The examples at <paramref name="rows"/>, in that order (a row may appear more than once), copied.</summary>
    /// <exception cref="CnnException">A row index is outside <c>[0, Count)</c>.</exception>
    public TargetData Take(IReadOnlyList<int> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var r = rows.ToArray();
        return new TargetData(Images.Gather(r), Targets.Gather(r));
    }

    /// <summary>The <paramref name="count"/> consecutive examples starting at <paramref name="start"/>, copied.</summary>
    /// <exception cref="CnnException">The range <c>[start, start + count)</c> is not inside <c>[0, Count]</c>.</exception>
    public TargetData Batch(int start, int count)
    {
        if (start < 0 || count < 0 || start > Count - count)
            throw new CnnException(
                $"Batch [{start}, {(long)start + count}) (start {start}, count {count}) is outside the data set's {Count} examples.");
        return new TargetData(Images.Slice(start, count), Targets.Slice(start, count));
    }

    /// <inheritdoc />
    public override string ToString() => $"TargetData({Count} examples, images {Images.Shape}, targets {TargetShape})";
}

/// <summary>The two parts of a <see cref="TargetData.Split"/>: disjoint, together the whole data set.</summary>
/// <param name="First">The first part (the requested number of shuffled examples).</param>
/// <param name="Second">The rest.</param>
public sealed record TargetDataSplit(TargetData First, TargetData Second);
