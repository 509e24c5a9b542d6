using System.Collections.Immutable;
using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;

namespace Cnn.Dsl;

/// <summary>
/// A network with its parameters and its state (batch-norm running statistics), held together as one immutable value:
/// <see cref="Fit"/> returns a new model and leaves this one as it was. Everything here is a thin layer over the
/// separate-parameters API (<see cref="Trainer"/>, <see cref="Apply"/>, <see cref="Checkpoint"/>, <see cref="Summary"/>),
/// which stays for those who want to hold the pieces themselves. ONNX export is <c>model.ExportOnnx(path)</c> in
/// package <c>Cnn.Onnx</c> (namespace <c>Cnn.Onnx</c>), so that this package does not depend on ONNX Runtime.
/// </summary>
/// <param name="Network">The network, checked against its input shape.</param>
/// <param name="Parameters">The parameters by path (<c>conv1/weight</c>).</param>
/// <param name="State">The state by path (<c>bn1/running_mean</c>); empty when the network has none.</param>
public sealed record Model(Network Network, Parameters Parameters, Parameters State)
{
    /// <summary>A model of <paramref name="network"/> with parameters drawn from <paramref name="seed"/> and the initial state.</summary>
    /// <param name="network">The network.</param>
    /// <param name="seed">Seeds the initialisation; the same seed gives the same values on every machine.</param>
    /// <param name="defaultInit">The scheme for layers that do not name theirs (default: PyTorch's).</param>
    public static Model Init(Network network, int seed = 0, Init? defaultInit = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        return new Model(network, Initializer.Init(network, seed, defaultInit), Initializer.InitState(network));
    }

    /// <summary>Infers the shapes of <paramref name="root"/> for samples of <paramref name="inputShape"/> and initialises it from <paramref name="seed"/>.</summary>
    /// <param name="root">The network description.</param>
    /// <param name="inputShape">One sample's shape, without the batch axis (e.g. <c>[1, 28, 28]</c>).</param>
    /// <param name="seed">Seeds the initialisation.</param>
    /// <exception cref="ShapeException">A layer does not fit; the message names its path, the shapes and the formula.</exception>
    public static Model Create(Layer root, Shape inputShape, int seed = 0) => Init(Network.Create(root, inputShape), seed);

    /// <summary>
    /// Trains a copy of this model on <paramref name="train"/> (see <c>Trainer.Fit</c>): callbacks and schedule come
    /// in <paramref name="options"/>, progress per batch through <paramref name="progress"/> (or <c>options.Verbose</c>).
    /// </summary>
    /// <param name="train">The training data.</param>
    /// <param name="options">Epochs, batch size, optimizer, seed, loss, schedule, callbacks, verbosity.</param>
    /// <param name="validation">Data evaluated after each epoch, in inference.</param>
    /// <param name="progress">Receives a report after each batch.</param>
    /// <param name="cancellation">Stops after the current batch; the result holds what was reached.</param>
    /// <param name="resume">A checkpoint to continue from exactly (its parameters, state, optimizer state and position replace this model's).</param>
    /// <param name="onCheckpoint">Called at the end of every epoch, and when cancelled, with a checkpoint to save.</param>
    /// <returns>The trained model, the history and a checkpoint to resume from.</returns>
    /// <exception cref="CnnException">The data does not fit the network, or the loss became NaN or infinite.</exception>
    public FitResult Fit(LabeledData train, TrainOptions options, LabeledData? validation = null, IProgress<TrainProgress>? progress = null,
        CancellationToken cancellation = default, TrainingCheckpoint? resume = null, Action<TrainingCheckpoint>? onCheckpoint = null)
    {
        var r = Trainer.Fit(Network, Parameters, train, options, validation, progress, initialState: State, cancellation: cancellation,
            resume: resume, onCheckpoint: onCheckpoint);
        return new FitResult(this with { Parameters = r.Parameters, State = r.State }, r.History, r.Checkpoint);
    }

    /// <summary>Mean loss and accuracy on <paramref name="data"/>, in inference.</summary>
    /// <param name="data">The data.</param>
    /// <param name="loss">The loss (default: softmax cross-entropy).</param>
    /// <param name="batchSize">Samples per forward pass.</param>
    public Evaluation Evaluate(LabeledData data, LossFunction? loss = null, int batchSize = 256) =>
        Trainer.Evaluate(Network, Parameters, data, batchSize, State, loss);

    /// <summary>The network's raw outputs for a batch <c>[n, ...input shape]</c>, in inference.</summary>
    /// <param name="x">The batch.</param>
    public Tensor Forward(Tensor x) => Apply.Forward(Network, Parameters, x, Mode.Eval, State);

    /// <summary>The arg-max class of each sample of a batch, in inference.</summary>
    /// <param name="x">The batch <c>[n, ...input shape]</c>.</param>
    public int[] Predict(Tensor x) => Trainer.ArgMax(Forward(x));

    /// <summary>
    /// The class probabilities <c>[n, classes]</c> of a batch, in inference: the softmax of the outputs, or the outputs
    /// themselves when the network ends in <see cref="Softmax"/>, or their exponential when it ends in <see cref="LogSoftmax"/>.
    /// </summary>
    /// <param name="x">The batch <c>[n, ...input shape]</c>.</param>
    /// <exception cref="ShapeException">The network's output is not one vector of scores per sample.</exception>
    public Tensor PredictProbabilities(Tensor x)
    {
        if (Network.OutputShape.Rank != 1)
            throw new ShapeException($"PredictProbabilities needs one vector of class scores per sample; the network's output is {Network.OutputShape}.");
        var y = Forward(x);
        var last = Network.Leaves[^1].Layer;
        return last switch
        {
            Softmax => y,
            LogSoftmax => Tensor.Own(y.Span.ToArray().Select(MathF.Exp).ToArray(), y.Shape),
            _ => Activations.Softmax(y),
        };
    }

    /// <summary>The Keras-style table: each layer's path, type, output shape, parameters and multiply-adds, with totals.</summary>
    public string Summary() => Dsl.Summary.Format(Network);

    /// <summary>The number of scalar parameters.</summary>
    public long ParameterCount => Parameters.ScalarCount;

    /// <summary>
    /// Writes the model as a checkpoint (<see cref="Checkpoint"/>'s format: safetensors with the network's description),
    /// atomically. <see cref="Load(string)"/> reads it back; so do <c>cnn summary</c>, <c>export</c> and <c>train --resume</c>.
    /// </summary>
    /// <param name="path">The file to write.</param>
    /// <param name="metadata">Free text to keep with it (optional).</param>
    /// <exception cref="ArgumentException">The network cannot be described as JSON.</exception>
    public void Save(string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        Checkpoint.Save(path, new TrainingCheckpoint(Parameters, State, new OptimizerState(0, ImmutableSortedDictionary<string, Parameters>.Empty), 1, 0,
            metadata ?? new Dictionary<string, string>()), Network);

    /// <summary>Reads a model that <see cref="Save"/> (or a training checkpoint with its network) wrote.</summary>
    /// <param name="path">The checkpoint.</param>
    /// <exception cref="Core.FormatException">The file is malformed, or does not describe its network (then use <see cref="Load(string, Network)"/>).</exception>
    public static Model Load(string path)
    {
        var checkpoint = Checkpoint.Load(path);
        var network = Checkpoint.LoadNetwork(checkpoint, path)
            ?? throw new Core.FormatException($"'{path}' holds parameters but no network description (metadata '{Checkpoint.NetworkKey}'); load it with Model.Load(path, network).");
        return FromCheckpoint(network, checkpoint);
    }

    /// <summary>Reads the parameters and state of <paramref name="network"/> from a checkpoint or a plain safetensors file of parameters.</summary>
    /// <param name="path">The file.</param>
    /// <param name="network">The network the parameters belong to.</param>
    /// <exception cref="Core.FormatException">The file is malformed, or its parameters do not match the network's.</exception>
    public static Model Load(string path, Network network) => FromCheckpoint(network, Checkpoint.Load(path));

    /// <summary>The model a training checkpoint holds, for <paramref name="network"/>; a checkpoint without state gets the initial state.</summary>
    /// <param name="network">The network.</param>
    /// <param name="checkpoint">The checkpoint.</param>
    /// <exception cref="Core.FormatException">The checkpoint's parameters do not match the network's paths and shapes.</exception>
    public static Model FromCheckpoint(Network network, TrainingCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(checkpoint);
        var expected = network.RootNode.Leaves().SelectMany(n => n.ParameterSpecs()).ToArray();
        foreach (var (path, spec) in expected)
        {
            if (!checkpoint.Parameters.Contains(path))
                throw new Core.FormatException($"The checkpoint has no parameter '{path}', which the network needs (shape {spec.Shape}).");
            if (checkpoint.Parameters[path].Shape != spec.Shape)
                throw new Core.FormatException($"The checkpoint's parameter '{path}' has shape {checkpoint.Parameters[path].Shape}; the network needs {spec.Shape}.");
        }
        if (checkpoint.Parameters.Count != expected.Length)
            throw new Core.FormatException($"The checkpoint has {checkpoint.Parameters.Count} parameters; the network has {expected.Length} ({string.Join(", ", checkpoint.Parameters.Paths.Except(expected.Select(e => e.Path)))} are not the network's).");
        var state = checkpoint.State.Count == 0 ? Initializer.InitState(network) : checkpoint.State;
        return new Model(network, checkpoint.Parameters, state);
    }
}

/// <summary>What <see cref="Model.Fit"/> returns.</summary>
/// <param name="Model">The trained model.</param>
/// <param name="History">One entry per completed epoch.</param>
/// <param name="Checkpoint">Everything needed to resume exactly (<see cref="IO.Checkpoint.Save"/> writes it).</param>
public sealed record FitResult(Model Model, IReadOnlyList<EpochStats> History, TrainingCheckpoint Checkpoint);
