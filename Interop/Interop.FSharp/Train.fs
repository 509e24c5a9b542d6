namespace Cnn.FSharp

open System
open System.Threading
open Cnn.Dsl
open Cnn.Dsl.Data

/// The loss a network is trained on, against integer class labels (`LabeledData`) or float targets (`TargetData`,
/// `Train.fitTargets`); averaged as PyTorch's `reduction='mean'`.
type Loss =
    /// Softmax cross-entropy on logits (PyTorch's `cross_entropy`), on labels; the default.
    | SoftmaxCrossEntropy
    /// Negative log-likelihood on log-probabilities (a network ending in `logSoftmax`), on labels.
    | NegativeLogLikelihood
    /// Mean squared error against the one-hot labels, or against float targets (regression).
    | MeanSquaredError
    /// Binary cross-entropy of probabilities (a network ending in `sigmoid`) against float targets in [0, 1].
    | BinaryCrossEntropy
    /// Binary cross-entropy of logits (stable form) against float targets in [0, 1] (0/1, multi-label or soft).
    | BinaryCrossEntropyWithLogits
    /// Mean absolute error (L1) against float targets.
    | MeanAbsoluteError

/// The update rule, with PyTorch's formulations and defaults.
type Optimizer =
    /// Plain stochastic gradient descent.
    | Sgd of learningRate: float
    /// SGD with momentum: v = momentum v + g; w -= learningRate v.
    | Momentum of learningRate: float * momentum: float
    /// SGD with Nesterov momentum.
    | Nesterov of learningRate: float * momentum: float
    /// Adam with beta1 0.9, beta2 0.999, epsilon 1e-8.
    | Adam of learningRate: float
    /// Adam with every constant given.
    | AdamWith of learningRate: float * beta1: float * beta2: float * epsilon: float
    /// AdamW: Adam with decoupled weight decay (w *= 1 - learningRate decay before each step), as `torch.optim.AdamW`.
    | AdamW of learningRate: float * decay: float
    /// RMSprop with alpha 0.99, epsilon 1e-8, no momentum, not centered (`torch.optim.RMSprop`'s defaults).
    | RmsProp of learningRate: float
    /// RMSprop with every option given.
    | RmsPropWith of learningRate: float * alpha: float * epsilon: float * momentum: float * centered: bool

/// Loss and accuracy of a model on a data set.
type Evaluation =
    { /// Mean loss.
      Loss: float
      /// Fraction of samples whose arg-max class is the label; NaN on float targets, where it is not defined.
      Accuracy: float
      /// Samples evaluated.
      Count: int }

/// The figures of one epoch.
type EpochStats =
    { /// 1-based epoch.
      Epoch: int
      /// Mean training loss over the epoch's batches.
      TrainLoss: float
      /// Training accuracy over the epoch (measured while training); NaN on float targets.
      TrainAccuracy: float
      /// Loss and accuracy on `TrainOptions.Validation`, when given.
      Validation: Evaluation option
      /// Wall time of the epoch, validation included.
      Elapsed: TimeSpan }

/// What `TrainOptions.OnBatch` receives after every batch.
type BatchProgress =
    { /// 1-based epoch.
      Epoch: int
      /// 1-based batch within the epoch.
      Batch: int
      /// Batches per epoch.
      Batches: int
      /// Mean training loss so far in this epoch.
      Loss: float
      /// Training accuracy so far in this epoch; NaN on float targets.
      Accuracy: float
      /// Time since the epoch began.
      Elapsed: TimeSpan }

/// Settings of `Train.fit`; start from `TrainOptions.defaults`.
type TrainOptions =
    { /// Passes over the training data (default 1).
      Epochs: int
      /// Samples per step (default 32); the last batch of an epoch may be smaller.
      BatchSize: int
      /// The update rule (default `Adam 1e-3`).
      Optimizer: Optimizer
      /// The loss (default `SoftmaxCrossEntropy`).
      Loss: Loss
      /// Seeds the shuffling of every epoch and the dropout masks (default 0). The same seed, data and thread count
      /// give bitwise-identical training.
      Seed: int
      /// Data evaluated after each epoch, in inference (default `None`).
      Validation: LabeledData option
      /// Called after each epoch with its figures (default `ignore`).
      OnEpoch: EpochStats -> unit
      /// Stops training after the current batch; the result holds what was reached (default: never).
      Cancellation: CancellationToken
      /// Keras's `verbose`: 0 silent (default), 1 a progress bar per epoch on the console (plain lines when the output is
      /// redirected), 2 one line per epoch.
      Verbose: int
      /// Called after every batch, on the training thread (default `ignore`).
      OnBatch: BatchProgress -> unit
      /// The learning-rate schedule (`Schedule.oneCycle`, `Schedule.stepDecay 5 0.5`, ...; default `None`: constant).
      Schedule: Cnn.Dsl.Schedule option
      /// Called after every epoch, in order (`Callback.earlyStopping 2`, `Callback.csvLogger "log.csv"`, ...; default none).
      Callbacks: Cnn.Dsl.Callback list
      /// A checkpoint to continue from exactly (`Train.loadCheckpoint`; default `None`): its parameters, state, optimizer
      /// state and position replace the model's.
      Resume: Cnn.Dsl.IO.TrainingCheckpoint option
      /// Where the steps run (default `None`: the im2col backend); `Some (Cnn.Interop.LibTorch.LibTorchBackend "cuda")`
      /// trains on LibTorch (package Cnn.Interop.LibTorch) with the same optimizer, data order and checkpoints.
      Backend: Cnn.Dsl.TrainingBackend option
      /// Random transforms of the training images, drawn afresh every epoch from the seed (default `None`;
      /// `Some Augmentation.digits`, `Some { Augmentation.none with Zoom = 0.1; Erasing = Some Erasing.defaults }`, ...).
      Augment: Augmentation option
      /// Standardises every batch, training (after augmenting, before erasing) and validation (default `None`;
      /// `Some (Normalization.Fit images)`).
      Normalize: Normalization option }

/// The defaults of `Train.fit`.
[<RequireQualifiedAccess>]
module TrainOptions =
    /// One epoch, batches of 32, `Adam 1e-3`, softmax cross-entropy, seed 0, no validation, silent (`Verbose = 0`), a
    /// constant rate, no callbacks, no resume, the im2col backend, no augmentation or normalisation.
    let defaults: TrainOptions =
        { Epochs = 1
          BatchSize = 32
          Optimizer = Adam 1e-3
          Loss = SoftmaxCrossEntropy
          Seed = 0
          Validation = None
          OnEpoch = ignore
          Cancellation = CancellationToken.None
          Verbose = 0
          OnBatch = ignore
          Schedule = None
          Callbacks = []
          Resume = None
          Backend = None
          Augment = None
          Normalize = None }

/// What `Train.fit` returns.
type TrainResult =
    { /// The model with the trained parameters and state.
      Model: Cnn.FSharp.Model
      /// One entry per completed epoch, in order.
      History: EpochStats list
      /// The optimizer's state after the last step (step count and moments).
      OptimizerState: OptimizerState
      /// Everything needed to resume exactly where training stopped (`Train.saveCheckpoint` writes it).
      Checkpoint: Cnn.Dsl.IO.TrainingCheckpoint }

/// The loss of one training-mode pass: the main output's, each auxiliary head's (unweighted, by the head's path) and the
/// total that training minimises (the main loss plus each head's times its weight).
type BatchLoss =
    { Total: float
      Main: float
      Heads: (string * float) list }

/// Training and evaluation as a pipeline: `network |> Model.init 1 |> Train.fit options train`.
[<RequireQualifiedAccess>]
module Train =
    /// The C# loss value for an F# loss.
    let lossFunction (loss: Loss) : LossFunction =
        match loss with
        | SoftmaxCrossEntropy -> LossFunction.SoftmaxCrossEntropy
        | NegativeLogLikelihood -> LossFunction.NegativeLogLikelihood
        | MeanSquaredError -> LossFunction.MeanSquaredError
        | BinaryCrossEntropy -> LossFunction.BinaryCrossEntropy
        | BinaryCrossEntropyWithLogits -> LossFunction.BinaryCrossEntropyWithLogits
        | MeanAbsoluteError -> LossFunction.MeanAbsoluteError

    /// The C# optimizer value for an F# optimizer.
    let optimizer (rule: Optimizer) : Cnn.Dsl.Optimizer =
        match rule with
        | Sgd lr -> Cnn.Dsl.Sgd(float32 lr)
        | Momentum (lr, m) -> Cnn.Dsl.Sgd(float32 lr, float32 m)
        | Nesterov (lr, m) -> Cnn.Dsl.Sgd(float32 lr, float32 m, true)
        | Adam lr -> Cnn.Dsl.Adam(float32 lr)
        | AdamWith (lr, b1, b2, eps) -> Cnn.Dsl.Adam(float32 lr, float32 b1, float32 b2, float32 eps)
        | AdamW (lr, decay) -> Cnn.Dsl.AdamW(float32 lr, float32 decay)
        | RmsProp lr -> Cnn.Dsl.RmsProp(float32 lr)
        | RmsPropWith (lr, alpha, eps, m, centered) -> Cnn.Dsl.RmsProp(float32 lr, float32 alpha, float32 eps, float32 m, centered)

    let private evaluation (e: Cnn.Dsl.Evaluation) : Evaluation =
        { Loss = float e.Loss; Accuracy = float e.Accuracy; Count = e.Count }

    let private epochStats (s: Cnn.Dsl.EpochStats) : EpochStats =
        { Epoch = s.Epoch
          TrainLoss = float s.TrainLoss
          TrainAccuracy = float s.TrainAccuracy
          Validation = s.Validation |> Option.ofObj |> Option.map evaluation
          Elapsed = s.Elapsed }

    let private settings (options: TrainOptions) =
        Cnn.Dsl.TrainOptions(options.Epochs, options.BatchSize, optimizer options.Optimizer, options.Seed, lossFunction options.Loss,
            Option.toObj options.Schedule, ResizeArray options.Callbacks, Verbose = options.Verbose, Backend = Option.toObj options.Backend,
            Pipeline = PipelineOptions(options.Augment |> Option.map Augmentation.toOptions |> Option.toObj, Option.toObj options.Normalize))

    let private progress (options: TrainOptions) =
        let onBatch = options.OnBatch
        { new IProgress<TrainProgress> with
            member _.Report p =
                onBatch
                    { Epoch = p.Epoch
                      Batch = p.Batch
                      Batches = p.Batches
                      Loss = float p.RunningLoss
                      Accuracy = float p.RunningAccuracy
                      Elapsed = p.Elapsed } }

    let private result (model: Cnn.FSharp.Model) (r: Cnn.Dsl.TrainResult) : TrainResult =
        { Model = { model with Parameters = r.Parameters; State = r.State }
          History = r.History |> Seq.map epochStats |> List.ofSeq
          OptimizerState = r.OptimizerState
          Checkpoint = r.Checkpoint }

    /// Trains `model` on `data` with shuffled mini-batches, one optimizer step per batch, starting from the model's
    /// parameters and state. Raises `Cnn.Core.CnnException` when the data does not fit the network or the loss
    /// becomes NaN.
    let fit (options: TrainOptions) (data: LabeledData) (model: Cnn.FSharp.Model) : TrainResult =
        Trainer.Fit(
            model.Network,
            model.Parameters,
            data,
            settings options,
            validation = Option.toObj options.Validation,
            progress = progress options,
            onEpoch = (fun s -> options.OnEpoch(epochStats s)),
            initialState = model.State,
            cancellation = options.Cancellation,
            resume = Option.toObj options.Resume
        )
        |> result model

    /// Trains `model` on float targets (regression, multi-label, soft targets) with a loss that takes them
    /// (`BinaryCrossEntropy`, `BinaryCrossEntropyWithLogits`, `MeanSquaredError`, `MeanAbsoluteError`), evaluating
    /// `validation` after each epoch when given, as `fit` trains on labels; accuracy is NaN throughout.
    /// `options.Validation` (labelled data) must be `None`. Raises `Cnn.Core.CnnException` when the data does not
    /// fit the network or the loss.
    let fitTargets (options: TrainOptions) (validation: TargetData option) (data: TargetData) (model: Cnn.FSharp.Model) : TrainResult =
        if options.Validation.IsSome then
            raise (Cnn.Core.CnnException "Train.fitTargets: TrainOptions.Validation holds labelled data; pass TargetData as fitTargets' validation argument.")
        Trainer.Fit(
            model.Network,
            model.Parameters,
            data,
            settings options,
            validation = Option.toObj validation,
            progress = progress options,
            onEpoch = (fun s -> options.OnEpoch(epochStats s)),
            initialState = model.State,
            cancellation = options.Cancellation,
            resume = Option.toObj options.Resume
        )
        |> result model

    /// Mean loss of `model` on float targets with the given loss, in inference; the accuracy is NaN.
    let evaluateTargets (loss: Loss) (data: TargetData) (model: Cnn.FSharp.Model) : Evaluation =
        Trainer.Evaluate(model.Network, model.Parameters, data, lossFunction loss, state = model.State) |> evaluation

    /// Writes where `result` stopped (parameters, state, optimizer state, position, and the network's description) as
    /// one checkpoint file, atomically; `loadCheckpoint` and `TrainOptions.Resume` continue from it exactly.
    let saveCheckpoint (path: string) (result: TrainResult) : unit =
        Cnn.Dsl.IO.Checkpoint.Save(path, result.Checkpoint, result.Model.Network)

    /// Reads a checkpoint for `TrainOptions.Resume` (or `Model.ofCheckpoint`).
    let loadCheckpoint (path: string) : Cnn.Dsl.IO.TrainingCheckpoint = Cnn.Dsl.IO.Checkpoint.Load path

    /// Mean loss and accuracy of `model` on `data` with the given loss, in inference.
    let evaluateWith (loss: Loss) (data: LabeledData) (model: Cnn.FSharp.Model) : Evaluation =
        Trainer.Evaluate(model.Network, model.Parameters, data, state = model.State, loss = lossFunction loss) |> evaluation

    /// The loss of a training-mode pass on a batch `x` with `labels`, dropout masks drawn from `seed`: the total over the main
    /// output and the auxiliary heads, and its parts (what `fit` reports as the training loss).
    let batchLoss (loss: Loss) (seed: int) (x: Cnn.Core.Tensor) (labels: int[]) (model: Cnn.FSharp.Model) : BatchLoss =
        let pass = Apply.WithPullback(model.Network, model.Parameters, x, Mode.Train, model.State, seed)
        let total = TotalLoss.Of(pass, lossFunction loss, ReadOnlySpan labels)
        { Total = float total.Value
          Main = float total.Main.Value
          Heads = [ for h, v in Seq.zip pass.Heads total.HeadLosses -> h.Path, float v ] }

    /// Mean softmax cross-entropy and accuracy of `model` on `data`, in inference.
    let evaluate (data: LabeledData) (model: Cnn.FSharp.Model) : Evaluation = evaluateWith SoftmaxCrossEntropy data model
