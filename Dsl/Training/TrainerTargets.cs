using Cnn.Core;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;

namespace Cnn.Dsl;

/// <summary>Training on float targets (<see cref="TargetData"/>): regression, multi-label, soft targets.</summary>
public static partial class Trainer
{
    /// <summary>
    /// Trains on examples with float targets, with a loss that takes them (<see cref="LossFunction.TakesFloatTargets"/>:
    /// binary cross-entropy on probabilities or logits, mean squared or absolute error), as
    /// <see cref="Fit(Network, Parameters, LabeledData, TrainOptions, LabeledData?, IProgress{TrainProgress}?, Action{EpochStats}?, Parameters?, CancellationToken, TrainingCheckpoint?, Action{TrainingCheckpoint}?)"/>
    /// trains on labels: the same shuffling, pipeline, schedules, callbacks, checkpoints and exact resume. Accuracy is not
    /// defined on float targets: progress, history and evaluations report it as NaN, and a callback that monitors it fails.
    /// </summary>
    /// <param name="network">The network; its output per sample has the targets' shape.</param>
    /// <param name="initial">The initial parameters.</param>
    /// <param name="train">The training data.</param>
    /// <param name="options">Epochs, batch size, optimizer, seed, the loss (it must be set: the default takes labels) and the batch pipeline.</param>
    /// <param name="validation">Data evaluated after each epoch, in inference mode.</param>
    /// <param name="progress">Receives a report after each batch.</param>
    /// <param name="onEpoch">Called after each epoch with its figures.</param>
    /// <param name="initialState">The initial state; by default <see cref="Initializer.InitState"/>.</param>
    /// <param name="cancellation">Stops training after the current batch; the result holds the state reached.</param>
    /// <param name="resume">A checkpoint to continue from: the result is bitwise equal to an uninterrupted run's.</param>
    /// <param name="onCheckpoint">Called at the end of every epoch, and when cancelled, with a checkpoint to save.</param>
    /// <exception cref="CnnException">The data does not fit the network, the loss takes labels, a target is outside the
    /// loss's range, or the loss became NaN or infinite.</exception>
    public static TrainResult Fit(Network network, Parameters initial, TargetData train, TrainOptions options,
        TargetData? validation = null, IProgress<TrainProgress>? progress = null, Action<EpochStats>? onEpoch = null,
        Parameters? initialState = null, CancellationToken cancellation = default,
        TrainingCheckpoint? resume = null, Action<TrainingCheckpoint>? onCheckpoint = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        return FitRun(network, initial, SampleSource.Of(train), options, validation is null ? null : SampleSource.Of(validation), progress, onEpoch,
            initialState, cancellation, resume, onCheckpoint);
    }

    /// <summary>
    /// One training step on a batch with float targets, as
    /// <see cref="Step(Network, Parameters, Parameters, Optimizer, OptimizerState, Tensor, ReadOnlySpan{int}, LossFunction?, int)"/>
    /// on labels. Pure: the arguments are not changed.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters before the step.</param>
    /// <param name="state">Its state before the step.</param>
    /// <param name="optimizer">The update rule, with the learning rate of this step.</param>
    /// <param name="optimizerState">The optimizer's state before the step.</param>
    /// <param name="x">The batch, <c>[N, ...input shape]</c>.</param>
    /// <param name="targets">The targets, <c>[N, ...output shape]</c>.</param>
    /// <param name="loss">A loss that takes float targets.</param>
    /// <param name="seed">Seeds the dropout masks.</param>
    /// <returns>The parameters, state and optimizer state after the step, the loss before it and the network's output.</returns>
    /// <exception cref="CnnException">The loss takes labels, the targets' shape differs from the output's, or a target is
    /// outside the loss's range.</exception>
    public static StepResult Step(Network network, Parameters parameters, Parameters state, Optimizer optimizer, OptimizerState optimizerState,
        Tensor x, Tensor targets, LossFunction loss, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(loss);
        return StepOn(network, parameters, state, optimizer, optimizerState, x, new BatchTruth(targets), loss, seed);
    }

    /// <summary>Mean loss of the network (inference mode) on data with float targets, in batches; the accuracy is NaN.</summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="data">The data.</param>
    /// <param name="loss">A loss that takes float targets.</param>
    /// <param name="batchSize">Samples per forward pass.</param>
    /// <param name="state">The network's state, when it has any (batch-norm running statistics).</param>
    /// <exception cref="CnnException">The data does not fit the network, or the loss takes labels.</exception>
    public static Evaluation Evaluate(Network network, Parameters parameters, TargetData data, LossFunction loss, int batchSize = 256, Parameters? state = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(loss);
        return EvaluateSource(network, parameters, SampleSource.Of(data), batchSize, state, loss, null);
    }

    /// <summary>Accuracy so far: NaN before the first sample and on float targets, where it is not defined.</summary>
    private static float Accuracy(long correct, long seen, SampleSource data) =>
        seen == 0 || data.TargetShape is not null ? float.NaN : (float)correct / seen;

    /// <summary>
    /// Checks that the loss takes what the data holds, labels or float targets, and for targets that the network's output
    /// has their shape; true when the data has float targets (nothing more to check).
    /// </summary>
    private static bool CheckTargetsFit(Network network, SampleSource data, LossFunction loss, string what)
    {
        if (data.TargetShape is not { } targets)
        {
            if (!loss.TakesLabels)
                throw new CnnException($"The {what} has integer class labels; the loss '{loss}' takes float targets: train on TargetData, " +
                    "or use softmax cross-entropy, negative log-likelihood or mean squared error.");
            return false;
        }
        if (!loss.TakesFloatTargets)
            throw new CnnException($"The {what} has float targets of shape {targets}; the loss '{loss}' takes integer class labels: " +
                "use binary cross-entropy (with logits), mean squared error or mean absolute error (TrainOptions.Loss).");
        if (network.OutputShape != targets)
            throw new ShapeException($"The {what} has targets of shape {targets} per sample; the network's output is {network.OutputShape}.");
        return true;
    }
}
