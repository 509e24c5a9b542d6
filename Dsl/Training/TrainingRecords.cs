using Cnn.Core;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;

namespace Cnn.Dsl;

/// <summary>Settings of a training run.</summary>
/// <param name="Epochs">Passes over the training data.</param>
/// <param name="BatchSize">Samples per step; the last batch of an epoch may be smaller.</param>
/// <param name="Optimizer">The update rule.</param>
/// <param name="Seed">Seeds the shuffling of every epoch and the dropout masks of every step.</param>
/// <param name="Loss">The loss (default: softmax cross-entropy).</param>
/// <param name="Schedule">The learning-rate schedule (default: constant).</param>
/// <param name="Callbacks">Called after every epoch, in order (early stopping, checkpoints, CSV log, ...).</param>
public sealed record TrainOptions(int Epochs, int BatchSize, Optimizer Optimizer, int Seed = 0, LossFunction? Loss = null,
    Schedule? Schedule = null, IReadOnlyList<Callback>? Callbacks = null)
{
    /// <summary>The loss in use.</summary>
    public LossFunction LossOrDefault => Loss ?? LossFunction.SoftmaxCrossEntropy;

    /// <summary>
    /// Keras's <c>verbose</c>: 0 prints nothing (the default: a library is silent unless asked); 1 a progress bar per epoch on
    /// the console (plain lines when the output is redirected); 2 one line per epoch. See <see cref="ConsoleProgress"/>.
    /// </summary>
    public int Verbose { get; init; }

    /// <summary>
    /// How the batches are made ahead of the step (augmentation, normalisation, threads, prefetch); by default no
    /// augmentation or normalisation, one thread. The batches, and so the results, do not depend on the threads.
    /// </summary>
    public PipelineOptions? Pipeline { get; init; }

    /// <summary>
    /// Where the steps run (default <see cref="TrainingBackend.Im2col"/>); for example
    /// <c>new Cnn.Interop.LibTorch.LibTorchBackend("cuda")</c>. Everything else of the run is the same on every backend.
    /// </summary>
    public TrainingBackend? Backend { get; init; }
}

/// <summary>What training reports after each batch.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Batch">1-based batch within the epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="RunningLoss">Mean training loss so far in this epoch.</param>
/// <param name="RunningAccuracy">Training accuracy so far in this epoch; NaN on float targets (<see cref="TargetData"/>).</param>
/// <param name="Elapsed">Time since the epoch began.</param>
public sealed record TrainProgress(int Epoch, int Batch, int Batches, float RunningLoss, float RunningAccuracy, TimeSpan Elapsed);

/// <summary>The figures of one epoch.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="TrainLoss">Mean training loss over the epoch's batches.</param>
/// <param name="TrainAccuracy">Training accuracy over the epoch (measured during the epoch, in training mode); NaN on float targets.</param>
/// <param name="Validation">Loss and accuracy on the validation data, when given.</param>
/// <param name="Elapsed">Wall time of the epoch, validation included.</param>
public sealed record EpochStats(int Epoch, float TrainLoss, float TrainAccuracy, Evaluation? Validation, TimeSpan Elapsed)
{
    /// <summary>The time of the epoch's training steps, waits for data included and validation excluded.</summary>
    public TimeSpan TrainingElapsed { get; init; }

    /// <summary>The time the training steps of the epoch waited for the batch pipeline to make a batch.</summary>
    public TimeSpan DataWait { get; init; }

    /// <summary><see cref="DataWait"/> as a fraction of <see cref="TrainingElapsed"/> (0 when nothing was timed).</summary>
    public double DataWaitFraction => TrainingElapsed > TimeSpan.Zero ? DataWait / TrainingElapsed : 0;
}

/// <summary>Loss and accuracy of a network on a data set.</summary>
/// <param name="Loss">The mean loss.</param>
/// <param name="Accuracy">Fraction of samples whose arg-max class is the label; NaN on float targets (<see cref="TargetData"/>),
/// where accuracy is not defined.</param>
/// <param name="Count">Samples evaluated.</param>
public sealed record Evaluation(float Loss, float Accuracy, int Count);

/// <summary>The trained parameters and state, the optimizer's final state, the history, and where training stopped.</summary>
/// <param name="Parameters">Parameters after the last step.</param>
/// <param name="State">The network's state (batch-norm running statistics) after the last step.</param>
/// <param name="OptimizerState">The optimizer's state after the last step.</param>
/// <param name="History">One entry per completed epoch.</param>
/// <param name="Checkpoint">Everything needed to resume: after a cancellation, training continues from here exactly.</param>
public sealed record TrainResult(Parameters Parameters, Parameters State, OptimizerState OptimizerState, IReadOnlyList<EpochStats> History, TrainingCheckpoint Checkpoint);

/// <summary>What one training step (<see cref="Trainer.Step(Network, Parameters, Parameters, Optimizer, OptimizerState, Tensor, ReadOnlySpan{int}, LossFunction?, int)"/>) returns.</summary>
/// <param name="Parameters">The parameters after the update.</param>
/// <param name="State">The network's state after the forward pass (updated running statistics).</param>
/// <param name="OptimizerState">The optimizer's state after the update.</param>
/// <param name="Loss">The batch's mean loss, before the update (with auxiliary heads, the total: see <see cref="TotalLoss"/>).</param>
/// <param name="Output">The network's (main) output for the batch, before the update.</param>
public sealed record StepResult(Parameters Parameters, Parameters State, OptimizerState OptimizerState, float Loss, Tensor Output);
