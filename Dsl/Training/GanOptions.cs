using Cnn.Core;
using Cnn.Dsl.IO;

namespace Cnn.Dsl;

/// <summary>Settings of adversarial training (<see cref="GanTrainer.Fit"/>).</summary>
/// <param name="Epochs">Passes over the real images.</param>
/// <param name="BatchSize">Real images per step (and as many generated ones); the last batch of an epoch may be smaller.</param>
/// <param name="GeneratorOptimizer">The generator's update rule.</param>
/// <param name="DiscriminatorOptimizer">The discriminator's update rule.</param>
/// <param name="Seed">Seeds the shuffling of every epoch, the generator's noise of every step and the dropout masks.</param>
public sealed record GanOptions(int Epochs, int BatchSize, Optimizer GeneratorOptimizer, Optimizer DiscriminatorOptimizer, int Seed = 0)
{
    /// <summary>
    /// One-sided label smoothing (Salimans et al., 2016): the discriminator's target for real images is
    /// <c>1 - RealLabelSmoothing</c>, so it is not rewarded for ever more confident logits on them; generated images keep
    /// the target 0 and the generator's target stays 1. From 0 (no smoothing, the default) up to but not including 1; 0.1
    /// is usual.
    /// </summary>
    public float RealLabelSmoothing { get; init; }

    /// <summary>
    /// The decay of an exponential moving average of the generator's parameters, kept beside them and updated after
    /// every step as <c>average = decay * average + (1 - decay) * parameters</c>; 0 (the default) keeps none. Sampling
    /// from the average (<see cref="GanResult.AveragedGenerator"/>) smooths out the oscillation of adversarial
    /// training (Yazıcı et al., 2019; Karras et al., 2018) at the cost of one copy of the generator. From 0 up to but not
    /// including 1; 0.999 averages over about a thousand steps.
    /// </summary>
    public float GeneratorAverageDecay { get; init; }

    /// <summary>
    /// The learning-rate schedule of both optimizers, whose rates are its base (e.g. <see cref="Dsl.Schedule.LinearDecay"/>);
    /// null (the default) keeps them constant. A function of the step and the run's epochs, so a resumed run with the same
    /// epochs follows the same curve; more epochs stretch it.
    /// </summary>
    public Schedule? Schedule { get; init; }

    /// <summary>The settings of the DCGAN paper (Radford et al., 2015): Adam with rate 2e-4 and β1 0.5 for both networks.</summary>
    /// <param name="epochs">Passes over the real images.</param>
    /// <param name="seed">Seeds the noise, the shuffling and the dropout masks.</param>
    /// <param name="batchSize">Real images per step (the paper's 128; 64 by default, more steps on a small data set).</param>
    public static GanOptions Dcgan(int epochs, int seed = 0, int batchSize = 64) =>
        new(epochs, batchSize, new Adam(2e-4f, 0.5f), new Adam(2e-4f, 0.5f), seed);

    /// <summary>The discriminator's target for real images.</summary>
    public float RealTarget => 1f - RealLabelSmoothing;
}

/// <summary>
/// The moving average of the generator's parameters (<see cref="GanOptions.GeneratorAverageDecay"/>) and batch-norm
/// statistics measured with them: the trained generator's running statistics belong to its own weights, and an averaged
/// generator that used them would normalise with the wrong means and variances.
/// </summary>
/// <param name="Parameters">The averaged parameters.</param>
/// <param name="State">The batch-norm running statistics of the averaged parameters (<see cref="GanTrainer.StandingState"/>).</param>
public sealed record GanAverage(Parameters Parameters, Parameters State);

/// <summary>One network's training state in adversarial training: what a checkpoint holds of it.</summary>
/// <param name="Parameters">The parameters.</param>
/// <param name="State">The network's state (batch-norm running statistics).</param>
/// <param name="OptimizerState">The optimizer's step count and slots.</param>
public sealed record GanPlayer(Parameters Parameters, Parameters State, OptimizerState OptimizerState);

/// <summary>The figures of one adversarial step, or the means over an epoch's steps.</summary>
/// <param name="DiscriminatorLoss">Binary cross-entropy of the discriminator on the real images plus that on the generated ones (PyTorch's DCGAN example's <c>errD</c>).</param>
/// <param name="GeneratorLoss">Binary cross-entropy of the updated discriminator's verdict on the generated images against "real" (the non-saturating loss).</param>
/// <param name="RealScore">The discriminator's mean probability of "real" on the real images, before its update (<c>D(x)</c>).</param>
/// <param name="FakeScore">Its mean probability of "real" on the generated images, before its update (<c>D(G(z))</c>).</param>
public sealed record GanLosses(float DiscriminatorLoss, float GeneratorLoss, float RealScore, float FakeScore);

/// <summary>What one adversarial step (<see cref="GanTrainer.Step"/>) returns.</summary>
/// <param name="Generator">The generator after its update.</param>
/// <param name="Discriminator">The discriminator after its update (and the generator step's forward pass through it).</param>
/// <param name="Losses">The step's losses and scores.</param>
public sealed record GanStepResult(GanPlayer Generator, GanPlayer Discriminator, GanLosses Losses);

/// <summary>The figures of one epoch of adversarial training.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Losses">Means over the epoch's steps, weighted by their batch sizes.</param>
/// <param name="Elapsed">Wall time of the epoch.</param>
public sealed record GanEpochStats(int Epoch, GanLosses Losses, TimeSpan Elapsed);

/// <summary>What adversarial training reports after each step.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Batch">1-based batch within the epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="Losses">Means so far in this epoch.</param>
/// <param name="Elapsed">Time since the epoch began.</param>
public sealed record GanProgress(int Epoch, int Batch, int Batches, GanLosses Losses, TimeSpan Elapsed);

/// <summary>The trained networks, the history, and where training stopped.</summary>
/// <param name="Generator">The generator's network, parameters and state after the last step.</param>
/// <param name="Discriminator">The discriminator's network, parameters and state after the last step.</param>
/// <param name="History">One entry per completed epoch (of this call).</param>
/// <param name="Checkpoint">Everything needed to resume: after a cancellation, training continues from here exactly.</param>
public sealed record GanResult(Model Generator, Model Discriminator, IReadOnlyList<GanEpochStats> History, GanCheckpoint Checkpoint)
{
    /// <summary>
    /// The generator with the moving average of its parameters (<see cref="GanOptions.GeneratorAverageDecay"/>) and the
    /// batch-norm statistics of those parameters, the one to sample from; null when no average was kept.
    /// </summary>
    public Model? AveragedGenerator =>
        Checkpoint.GeneratorAverage is { } average ? Generator with { Parameters = average.Parameters, State = average.State } : null;
}
