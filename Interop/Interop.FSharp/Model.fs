namespace Cnn.FSharp

open Cnn.Core
open Cnn.Dsl

/// Whether a forward pass runs for training (dropout active, batch statistics, state updated) or for inference.
type Phase =
    /// Dropout drops, batch normalisation uses the batch's statistics and updates its running statistics.
    | Training
    /// Deterministic: dropout is the identity, batch normalisation uses the running statistics.
    | Inference

/// A network with its parameters and its state (batch-norm running statistics): what <c>Model.init</c> makes and
/// <c>Train.fit</c> trains.
type Model =
    { /// The network: the description, checked against its input shape.
      Network: Network
      /// The parameters by path (<c>conv1/weight</c>).
      Parameters: Parameters
      /// The state by path (<c>bn1/running_mean</c>); empty when the network has none.
      State: Parameters }

/// <summary>Building, initialising, running and describing networks.</summary>
/// <remarks>
/// <c>layers |> Model.build [ 1; 28; 28 ]</c> checks a description against the shape of one sample (no batch axis)
/// and gives <c>Ok network</c> or <c>Error message</c>, the message naming the layer's path, the shapes and the
/// output-size formula; <c>Model.create</c> is the same, raising <c>Cnn.Core.ShapeException</c> instead.
/// </remarks>
[<RequireQualifiedAccess>]
module Model =
    let private tryCreate (inputShape: int list) (strict: bool) (layer: Layer) : Result<Network, string> =
        try
            Ok(Network.Create(layer, Shape(inputShape), strict))
        with :? CnnException as e ->
            Error e.Message

    /// Infers every shape of `layer` for samples of `inputShape` (no batch axis): `Ok network`, or `Error message`
    /// naming the layer's path, the shapes and the formula's numbers.
    let build (inputShape: int list) (layer: Layer) : Result<Network, string> = tryCreate inputShape false layer

    /// As `build`, but a window that does not tile its input (a remainder the output-size formula floors away) is
    /// an error too.
    let buildStrict (inputShape: int list) (layer: Layer) : Result<Network, string> = tryCreate inputShape true layer

    /// As `build`, raising `Cnn.Core.ShapeException` when a layer does not fit.
    let create (inputShape: int list) (layer: Layer) : Network = Network.Create(layer, Shape(inputShape))

    /// Parameters drawn from `seed` (PyTorch's default initialisation unless a layer says otherwise with `initWith`)
    /// and the initial state. The same seed gives the same values on every machine.
    let init (seed: int) (network: Network) : Model =
        { Network = network
          Parameters = Initializer.Init(network, seed)
          State = Initializer.InitState network }

    /// As `init`, with another default scheme for layers that do not say theirs.
    let initWith (scheme: WeightInit) (seed: int) (network: Network) : Model =
        { Network = network
          Parameters = Initializer.Init(network, seed, Resolve.init scheme)
          State = Initializer.InitState network }

    /// The outputs for a batch `x` ([n; ...input shape]) in inference.
    let predict (x: Tensor) (model: Model) : Tensor =
        Apply.Forward(model.Network, model.Parameters, x, Mode.Eval, model.State)

    /// The arg-max class of each sample of a batch, in inference.
    let classify (x: Tensor) (model: Model) : int[] = Trainer.ArgMax(predict x model)

    /// One forward pass in the given phase, dropout masks drawn from `seed`: the outputs, and the model with the
    /// state the pass leaves (updated running statistics in training).
    let apply (phase: Phase) (seed: int) (x: Tensor) (model: Model) : Tensor * Model =
        let mode =
            match phase with
            | Training -> Mode.Train
            | Inference -> Mode.Eval
        let r = Apply.WithPullback(model.Network, model.Parameters, x, mode, model.State, seed)
        r.Output, { model with State = r.State }

    /// The Keras-style table: each layer's path, type, output shape, parameters and multiply-adds, with totals.
    let summary (network: Network) : string = Summary.Format network

    /// The number of scalar parameters.
    let parameterCount (network: Network) : int64 = Summary.ParameterCount network

    /// The shape of one input sample, as `build` was given it.
    let inputShape (network: Network) : int list = List.ofSeq network.InputShape

    /// The shape of one output sample.
    let outputShape (network: Network) : int list = List.ofSeq network.OutputShape

    /// The C# `Cnn.Dsl.Model` holding the same network, parameters and state (for C# APIs, `model.ExportOnnx`, ...).
    let toDsl (model: Model) : Cnn.Dsl.Model = Cnn.Dsl.Model(model.Network, model.Parameters, model.State)

    /// The F# model holding the same network, parameters and state as a C# `Cnn.Dsl.Model`.
    let ofDsl (model: Cnn.Dsl.Model) : Model =
        { Network = model.Network; Parameters = model.Parameters; State = model.State }

    /// The class probabilities [n; classes] of a batch, in inference: the softmax of the outputs (or the outputs when the
    /// network ends in `softmax`, their exponential when it ends in `logSoftmax`).
    let probabilities (x: Tensor) (model: Model) : Tensor = (toDsl model).PredictProbabilities x

    /// Writes the model as a checkpoint (safetensors with the network's description), atomically; `Model.load` reads it.
    let save (path: string) (model: Model) : unit = (toDsl model).Save path

    /// Reads a model that `Model.save` (or a checkpoint callback given the network) wrote; raises
    /// `Cnn.Core.FormatException` when the file is malformed or does not describe its network.
    let load (path: string) : Model = Cnn.Dsl.Model.Load path |> ofDsl

    /// Reads the parameters and state of `network` from a checkpoint or a plain safetensors file of parameters.
    let loadFor (network: Network) (path: string) : Model = Cnn.Dsl.Model.Load(path, network) |> ofDsl

    /// The model a training checkpoint (`Train.loadCheckpoint`) holds for `network`.
    let ofCheckpoint (network: Network) (checkpoint: Cnn.Dsl.IO.TrainingCheckpoint) : Model =
        Cnn.Dsl.Model.FromCheckpoint(network, checkpoint) |> ofDsl
