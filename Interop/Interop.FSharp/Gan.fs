namespace Cnn.FSharp

open System
open System.Threading
open Cnn.Core

/// The figures of one epoch of adversarial training: means over its steps.
type GanEpoch =
    { /// 1-based epoch.
      Epoch: int
      /// Binary cross-entropy of the discriminator on real plus generated images.
      DiscriminatorLoss: float
      /// Binary cross-entropy of the updated discriminator's verdict on the generated images against "real".
      GeneratorLoss: float
      /// The discriminator's mean probability of "real" on the real images, D(x).
      RealScore: float
      /// Its mean probability of "real" on the generated images, D(G(z)).
      FakeScore: float
      /// Wall time of the epoch.
      Elapsed: TimeSpan }

/// Settings of `Gan.fit`; start from `GanOptions.dcgan`.
type GanOptions =
    { /// Passes over the real images.
      Epochs: int
      /// Real (and generated) images per step.
      BatchSize: int
      /// The generator's update rule.
      GeneratorOptimizer: Optimizer
      /// The discriminator's update rule.
      DiscriminatorOptimizer: Optimizer
      /// Seeds the shuffling, the generator's noise of every step and the dropout masks.
      Seed: int
      /// One-sided label smoothing: the discriminator's target for real images is 1 - this (0 to below 1; 0.1 is usual).
      RealLabelSmoothing: float
      /// Decay of a moving average of the generator's weights to sample from (`GanResult.AveragedGenerator`): 0 keeps
      /// none (the default), 0.999 averages over about a thousand steps; below 1.
      GeneratorAverageDecay: float
      /// The learning-rate schedule of both optimizers, whose rates are its base (`Some(Schedule.linearDecay 0.4)`, say);
      /// default `None`, constant rates.
      Schedule: Cnn.Dsl.Schedule option
      /// Called after each epoch with its figures (default `ignore`).
      OnEpoch: GanEpoch -> unit
      /// Stops training before the next step; the result holds what was reached (default: never).
      Cancellation: CancellationToken
      /// A checkpoint to continue from exactly (`Gan.loadCheckpoint`; default `None`).
      Resume: Cnn.Dsl.IO.GanCheckpoint option }

/// The defaults of `Gan.fit`.
[<RequireQualifiedAccess>]
module GanOptions =
    /// The DCGAN paper's settings for `epochs`: Adam with rate 2e-4 and beta1 0.5 for both networks, batches of 64, seed 0,
    /// no label smoothing, no average of the generator, constant rates, no resume.
    let dcgan (epochs: int) : GanOptions =
        { Epochs = epochs
          BatchSize = 64
          GeneratorOptimizer = AdamWith(2e-4, 0.5, 0.999, 1e-8)
          DiscriminatorOptimizer = AdamWith(2e-4, 0.5, 0.999, 1e-8)
          Seed = 0
          RealLabelSmoothing = 0.0
          GeneratorAverageDecay = 0.0
          Schedule = None
          OnEpoch = ignore
          Cancellation = CancellationToken.None
          Resume = None }

/// What `Gan.fit` returns.
type GanResult =
    { /// The trained generator.
      Generator: Model
      /// The generator with the moving average of its weights (and its batch-norm state), the one to sample from, when
      /// `GeneratorAverageDecay` kept one.
      AveragedGenerator: Model option
      /// The trained discriminator.
      Discriminator: Model
      /// One entry per completed epoch, in order.
      History: GanEpoch list
      /// Everything needed to resume exactly (`Gan.saveCheckpoint` writes it).
      Checkpoint: Cnn.Dsl.IO.GanCheckpoint }

/// Adversarial training of a generator against a discriminator (`Cnn.Dsl.GanTrainer`):
/// `Gan.fit (GanOptions.dcgan 5) realImages generator discriminator`.
[<RequireQualifiedAccess>]
module Gan =
    let private toDsl (m: Model) = Cnn.Dsl.Model(m.Network, m.Parameters, m.State)

    let private ofDsl (m: Cnn.Dsl.Model) : Model =
        { Network = m.Network; Parameters = m.Parameters; State = m.State }

    let private epoch (s: Cnn.Dsl.GanEpochStats) : GanEpoch =
        { Epoch = s.Epoch
          DiscriminatorLoss = float s.Losses.DiscriminatorLoss
          GeneratorLoss = float s.Losses.GeneratorLoss
          RealScore = float s.Losses.RealScore
          FakeScore = float s.Losses.FakeScore
          Elapsed = s.Elapsed }

    /// `count` standard-normal noise vectors for `generator`'s input, drawn from `seed` alone.
    let noise (seed: int) (count: int) (generator: Model) : Tensor =
        Cnn.Dsl.GanTrainer.Noise(generator.Network.InputShape, count, seed)

    /// The generator's images for `noise`, in inference (batch norm with its running statistics).
    let generate (noise: Tensor) (generator: Model) : Tensor =
        Cnn.Dsl.Apply.Forward(generator.Network, generator.Parameters, noise, Cnn.Dsl.Mode.Eval, generator.State)

    /// Trains `generator` against `discriminator` (one logit per image) on `realImages` `[N, ...discriminator input]`, in
    /// the generator's output range (pixels scaled to [-1, 1] for a tanh generator). The same seed and thread count give
    /// the same bits; a resumed run equals an uninterrupted one. Raises `Cnn.Core.CnnException` when the networks or the
    /// images do not fit, or a loss becomes NaN.
    let fit (options: GanOptions) (realImages: Tensor) (generator: Model) (discriminator: Model) : GanResult =
        let settings =
            Cnn.Dsl.GanOptions(options.Epochs, options.BatchSize, Train.optimizer options.GeneratorOptimizer,
                Train.optimizer options.DiscriminatorOptimizer, options.Seed, RealLabelSmoothing = float32 options.RealLabelSmoothing,
                GeneratorAverageDecay = float32 options.GeneratorAverageDecay, Schedule = Option.toObj options.Schedule)
        let record = Action<Cnn.Dsl.GanEpochStats, Cnn.Dsl.IO.GanCheckpoint>(fun s _ -> options.OnEpoch(epoch s))
        let r =
            Cnn.Dsl.GanTrainer.Fit(toDsl generator, toDsl discriminator, realImages, settings, record, options.Cancellation,
                Option.toObj options.Resume)
        let history = r.History |> Seq.map epoch |> List.ofSeq
        { Generator = ofDsl r.Generator
          AveragedGenerator = r.AveragedGenerator |> Option.ofObj |> Option.map ofDsl
          Discriminator = ofDsl r.Discriminator
          History = history
          Checkpoint = r.Checkpoint }

    /// Writes where `result` stopped (both networks' descriptions, parameters, states and optimizer states, and the
    /// position) as one checkpoint file, atomically.
    let saveCheckpoint (path: string) (result: GanResult) : unit =
        result.Checkpoint.Save(path, result.Generator.Network, result.Discriminator.Network)

    /// Reads a checkpoint for `GanOptions.Resume`.
    let loadCheckpoint (path: string) : Cnn.Dsl.IO.GanCheckpoint = Cnn.Dsl.IO.GanCheckpoint.Load path
