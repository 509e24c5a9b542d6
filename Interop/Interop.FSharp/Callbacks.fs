namespace Cnn.FSharp

open Cnn.Dsl

/// Whether a larger or a smaller metric is better, for callbacks that watch one.
type MetricMode =
    /// Accuracy-like metrics (their name holds "acc") are maximised, the rest minimised (Keras's "auto"; the default).
    | Auto
    /// Smaller is better.
    | Min
    /// Larger is better.
    | Max

/// Settings of <c>Callback.earlyStoppingWith</c>; start from <c>EarlyStopping.defaults</c>.
type EarlyStoppingSettings =
    { /// The metric watched: "val_loss" (default), "val_accuracy", "loss" or "accuracy".
      Monitor: string
      /// The smallest change that counts as an improvement (default 0).
      MinDelta: float
      /// Epochs without improvement before stopping (default 0).
      Patience: int
      /// Whether larger or smaller is better (default <c>Auto</c>).
      Mode: MetricMode
      /// Whether to give back the best epoch's parameters and state when stopping (default false).
      RestoreBest: bool }

/// Settings of <c>Callback.reduceOnPlateauWith</c>; start from <c>ReduceOnPlateau.defaults</c>.
type ReduceOnPlateauSettings =
    { /// The metric watched (default "val_loss").
      Monitor: string
      /// The factor the rate is multiplied by, in (0, 1) (default 0.1).
      Factor: float
      /// Epochs without improvement before reducing (default 10).
      Patience: int
      /// The rate is never reduced below this (default 0).
      MinRate: float
      /// The smallest change that counts as an improvement (default 1e-4).
      MinDelta: float
      /// Whether larger or smaller is better (default <c>Auto</c>).
      Mode: MetricMode }

/// Settings of <c>Callback.modelCheckpointWith</c>; start from <c>ModelCheckpoint.defaults</c>.
type ModelCheckpointSettings =
    { /// The metric for <c>SaveBestOnly</c> (default "val_loss").
      Monitor: string
      /// Write only when the metric improves, and never over a better file (default false).
      SaveBestOnly: bool
      /// Whether larger or smaller is better (default <c>Auto</c>).
      Mode: MetricMode
      /// Keep only the newest k files this callback wrote; 0 keeps all (default).
      KeepLast: int
      /// The network, so that each file describes it and <c>Model.load</c> reads it alone (default <c>None</c>).
      Network: Network option }

/// Settings of <c>Schedule.oneCycleWith</c>; start from <c>OneCycle.defaults</c>.
type OneCycleSettings =
    { /// Fraction of all steps spent warming up (default 0.25).
      WarmupFraction: float
      /// The rate starts at max / Div (default 25).
      Div: float
      /// The rate ends at max / (Div * FinalDiv) (default 1e4).
      FinalDiv: float
      /// Momentum at the start and end (default 0.95).
      MaxMomentum: float
      /// Momentum at the peak rate (default 0.85).
      MinMomentum: float }

/// The defaults of <c>Callback.earlyStoppingWith</c>.
[<RequireQualifiedAccess>]
module EarlyStopping =
    /// Watch "val_loss", min delta 0, patience 0, <c>Auto</c>, no restore.
    let defaults: EarlyStoppingSettings = { Monitor = "val_loss"; MinDelta = 0.0; Patience = 0; Mode = Auto; RestoreBest = false }

/// The defaults of <c>Callback.reduceOnPlateauWith</c>.
[<RequireQualifiedAccess>]
module ReduceOnPlateau =
    /// Keras's: watch "val_loss", factor 0.1, patience 10, min rate 0, min delta 1e-4, <c>Auto</c>.
    let defaults: ReduceOnPlateauSettings =
        { Monitor = "val_loss"; Factor = 0.1; Patience = 10; MinRate = 0.0; MinDelta = 1e-4; Mode = Auto }

/// The defaults of <c>Callback.modelCheckpointWith</c>.
[<RequireQualifiedAccess>]
module ModelCheckpoint =
    /// Watch "val_loss", save every epoch, <c>Auto</c>, keep all files, no network description.
    let defaults: ModelCheckpointSettings = { Monitor = "val_loss"; SaveBestOnly = false; Mode = Auto; KeepLast = 0; Network = None }

/// The defaults of <c>Schedule.oneCycleWith</c>.
[<RequireQualifiedAccess>]
module OneCycle =
    /// fastai's and PyTorch's: warm-up 0.25, div 25, final div 1e4, momentum 0.95 to 0.85.
    let defaults: OneCycleSettings = { WarmupFraction = 0.25; Div = 25.0; FinalDiv = 1e4; MaxMomentum = 0.95; MinMomentum = 0.85 }

/// <summary>Callbacks for <c>TrainOptions.Callbacks</c>, called after every epoch in order (the C# <c>Callback</c> values).</summary>
[<RequireQualifiedAccess>]
module Callback =
    let private mode (m: MetricMode) : Cnn.Dsl.MetricMode =
        match m with
        | Auto -> Cnn.Dsl.MetricMode.Auto
        | Min -> Cnn.Dsl.MetricMode.Min
        | Max -> Cnn.Dsl.MetricMode.Max

    /// Stops when the watched metric has not improved for the given settings' patience (Keras's <c>EarlyStopping</c>).
    let earlyStoppingWith (s: EarlyStoppingSettings) : Cnn.Dsl.Callback =
        Cnn.Dsl.Callback.EarlyStopping(s.Monitor, float32 s.MinDelta, s.Patience, mode s.Mode, s.RestoreBest)

    /// Stops when "val_loss" has not improved for `patience` epochs, and restores the best epoch's parameters.
    let earlyStopping (patience: int) : Cnn.Dsl.Callback =
        earlyStoppingWith { EarlyStopping.defaults with Patience = patience; RestoreBest = true }

    /// Multiplies the learning rate by the settings' factor when the metric stalls (Keras's <c>ReduceLROnPlateau</c>).
    let reduceOnPlateauWith (s: ReduceOnPlateauSettings) : Cnn.Dsl.Callback =
        Cnn.Dsl.Callback.ReduceLearningRateOnPlateau(s.Monitor, float32 s.Factor, s.Patience, float32 s.MinRate, float32 s.MinDelta, mode s.Mode)

    /// Multiplies the learning rate by `factor` when "val_loss" has not improved for `patience` epochs.
    let reduceOnPlateau (factor: float) (patience: int) : Cnn.Dsl.Callback =
        reduceOnPlateauWith { ReduceOnPlateau.defaults with Factor = factor; Patience = patience }

    /// Saves a checkpoint after each epoch to `pathTemplate`, which may hold `{epoch}` and metrics (`{val_loss}`).
    let modelCheckpointWith (s: ModelCheckpointSettings) (pathTemplate: string) : Cnn.Dsl.Callback =
        Cnn.Dsl.Callback.ModelCheckpoint(pathTemplate, s.Monitor, s.SaveBestOnly, mode s.Mode, s.KeepLast, Option.toObj s.Network)

    /// Saves a checkpoint after every epoch to `pathTemplate` (`"runs/ep{epoch}.safetensors"`).
    let modelCheckpoint (pathTemplate: string) : Cnn.Dsl.Callback = modelCheckpointWith ModelCheckpoint.defaults pathTemplate

    /// Appends one row per epoch to a CSV file: epoch, loss, accuracy, val_loss, val_accuracy, learning rate, seconds.
    let csvLogger (path: string) : Cnn.Dsl.Callback = Cnn.Dsl.Callback.CsvLogger path

    /// Your own: called after each epoch with its figures, parameters and state; return
    /// <c>CallbackDecision.Continue</c>, or a decision to stop, scale the rate or restore weights.
    let custom (onEpochEnd: EpochContext -> CallbackDecision) : Cnn.Dsl.Callback =
        Cnn.Dsl.Callback.Custom(System.Func<EpochContext, CallbackDecision> onEpochEnd)

/// <summary>Learning-rate schedules for <c>TrainOptions.Schedule</c> (the C# <c>Schedule</c> values); the optimizer's rate is the base.</summary>
[<RequireQualifiedAccess>]
module Schedule =
    /// The optimizer's rate throughout.
    let constant: Cnn.Dsl.Schedule = Cnn.Dsl.Schedule.Constant

    /// The rate times `gamma` every `epochs` epochs (PyTorch's <c>StepLR</c>).
    let stepDecay (epochs: int) (gamma: float) : Cnn.Dsl.Schedule = Cnn.Dsl.Schedule.StepDecay(epochs, float32 gamma)

    /// The rate times `gamma` each epoch (PyTorch's <c>ExponentialLR</c>).
    let exponential (gamma: float) : Cnn.Dsl.Schedule = Cnn.Dsl.Schedule.Exponential(float32 gamma)

    /// Keras's time-based decay: rate / (1 + decay * step).
    let kerasDecay (decay: float) : Cnn.Dsl.Schedule = Cnn.Dsl.Schedule.KerasDecay(float32 decay)

    /// The optimizer's rate, then a straight line down to zero over the last `fraction` of the run's steps (above 0, at
    /// most 1); `cnn gan --lr-decay`.
    let linearDecay (fraction: float) : Cnn.Dsl.Schedule = Cnn.Dsl.Schedule.LinearDecay fraction

    /// One-cycle with the given settings: warm-up to the optimizer's rate, then cosine down; momentum the other way.
    let oneCycleWith (s: OneCycleSettings) : Cnn.Dsl.Schedule =
        Cnn.Dsl.Schedule.OneCycle(float32 s.WarmupFraction, float32 s.Div, float32 s.FinalDiv, float32 s.MaxMomentum, float32 s.MinMomentum)

    /// One-cycle with fastai's and PyTorch's defaults.
    let oneCycle: Cnn.Dsl.Schedule = oneCycleWith OneCycle.defaults
