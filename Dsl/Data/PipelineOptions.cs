using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// What the batch pipeline does to each training batch after gathering its examples (bytes become floats
/// <c>k / 255</c>): augmentation, then per-channel normalisation, then random erasing (<see cref="AugmentOptions.Erasing"/>); and how it runs: how many threads make batches and
/// how many batches it may hold ready ahead of the training step.
/// </summary>
/// <param name="Augment">Random transforms of each training image (<see cref="Data.Augment.Apply(Tensor, AugmentOptions, int)"/>),
/// drawn from the run's seed, the epoch and the batch; none when null. Its random erasing comes after the normalisation.
/// Never applied to validation data.</param>
/// <param name="Normalize">Standardises every batch, training and validation, after augmentation (before random erasing); none when null.</param>
/// <param name="Threads">Threads that make batches, at least 1. The batches are the same whatever the count.</param>
/// <param name="Prefetch">Batches made ahead of the step and held ready, at least 1 (the bound of the queue).</param>
public sealed record PipelineOptions(AugmentOptions? Augment = null, Normalization? Normalize = null, int Threads = 1, int Prefetch = 4)
{
    /// <summary>No augmentation, no normalisation, one thread, four batches ahead.</summary>
    public static PipelineOptions Default { get; } = new();

    /// <summary>Checks the options against one sample's shape.</summary>
    /// <exception cref="CnnException">A count is below 1, or the augmentation or normalisation does not fit the samples.</exception>
    internal void Check(Shape sample)
    {
        if (Threads < 1 || Prefetch < 1)
            throw new CnnException($"A batch pipeline needs at least 1 thread and 1 batch of prefetch; found {Threads} and {Prefetch}.");
        if (Augment is not null && sample.Rank != 3)
            throw new CnnException($"Augmentation needs images [C, H, W]; the samples are {sample}.");
        Augment?.Check();
        if (Normalize is not null && (sample.Rank < 1 || Normalize.Channels != sample[0]))
            throw new CnnException($"The normalisation has {Normalize.Channels} channel(s); the samples {sample} have {(sample.Rank < 1 ? 0 : sample[0])}.");
    }
}
