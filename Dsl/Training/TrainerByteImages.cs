using Cnn.Core;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;

namespace Cnn.Dsl;

/// <summary>Training on images kept as bytes, converted a batch at a time.</summary>
public static partial class Trainer
{
    /// <summary>
    /// Trains on images kept as bytes: each batch is converted to floats (<c>k / 255</c>), augmented and normalised by
    /// the pipeline (<see cref="TrainOptions.Pipeline"/>) ahead of the step. Without augmentation or normalisation the
    /// result is bitwise equal to training on <see cref="ByteImageSet.ToLabeledData"/>; otherwise as
    /// <see cref="Fit(Network, Parameters, LabeledData, TrainOptions, LabeledData?, IProgress{TrainProgress}?, Action{EpochStats}?, Parameters?, CancellationToken, TrainingCheckpoint?, Action{TrainingCheckpoint}?)"/>.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="initial">The initial parameters.</param>
    /// <param name="train">The training images.</param>
    /// <param name="options">Epochs, batch size, optimizer, seed, loss and the batch pipeline.</param>
    /// <param name="validation">Images evaluated after each epoch, in inference mode, normalised as the training batches (never augmented).</param>
    /// <param name="progress">Receives a report after each batch.</param>
    /// <param name="onEpoch">Called after each epoch with its figures, the time spent waiting for data included.</param>
    /// <param name="initialState">The initial state; by default <see cref="Initializer.InitState"/>.</param>
    /// <param name="cancellation">Stops training after the current batch; the result holds the state reached.</param>
    /// <param name="resume">A checkpoint to continue from: the pipeline starts at its batch, and the result is bitwise
    /// equal to an uninterrupted run's.</param>
    /// <param name="onCheckpoint">Called at the end of every epoch, and when cancelled, with a checkpoint to save.</param>
    /// <exception cref="CnnException">The data does not fit the network, or the loss became NaN or infinite.</exception>
    public static TrainResult Fit(Network network, Parameters initial, ByteImageSet train, TrainOptions options,
        ByteImageSet? validation = null, IProgress<TrainProgress>? progress = null, Action<EpochStats>? onEpoch = null,
        Parameters? initialState = null, CancellationToken cancellation = default,
        TrainingCheckpoint? resume = null, Action<TrainingCheckpoint>? onCheckpoint = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        return FitRun(network, initial, SampleSource.Of(train), options, validation is null ? null : SampleSource.Of(validation), progress, onEpoch,
            initialState, cancellation, resume, onCheckpoint);
    }

    /// <summary>
    /// Mean loss and accuracy of the network (inference mode) on byte images, converted to floats (and normalised by
    /// <paramref name="normalize"/>) a batch at a time.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="data">The labelled images.</param>
    /// <param name="batchSize">Samples per forward pass.</param>
    /// <param name="state">The network's state, when it has any (batch-norm running statistics).</param>
    /// <param name="loss">The loss to report (default: softmax cross-entropy).</param>
    /// <param name="normalize">The normalisation the network was trained with, if any.</param>
    public static Evaluation Evaluate(Network network, Parameters parameters, ByteImageSet data, int batchSize = 256, Parameters? state = null,
        LossFunction? loss = null, Normalization? normalize = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        return EvaluateSource(network, parameters, SampleSource.Of(data), batchSize, state, loss ?? LossFunction.SoftmaxCrossEntropy, normalize);
    }

}
