// Trains the zoo's fashion-resnet on all of Fashion-MNIST with the library's recipe (Recipe.FashionMnist: SGD with
// Nesterov momentum and weight decay under one-cycle, flips and shifts, normalised images) through the batch pipeline:
//
//   apt-get install dataset-fashion-mnist     (once: the four IDX files in /usr/share/datasets/fashion-mnist)
//   dotnet build -c Release                   (once: the script references the built assemblies)
//   dotnet fsi examples/fashion-mnist.fsx                 the full recipe, test accuracy after every epoch
//   dotnet fsi examples/fashion-mnist.fsx 15 1            the same with 15 epochs and seed 1 (the defaults)
//   dotnet fsi examples/fashion-mnist.fsx 11 1 300        only the first 300 steps: a timing run, no validation
//
// Each epoch prints its time, the share of the steps' time spent waiting for data, and the test accuracy.

#if DEBUG
#I "../Cli/bin/Debug/net10.0/linux-x64"
#else
#I "../Cli/bin/Release/net10.0/linux-x64"
#endif
#r "System.Numerics.Tensors.dll"
#r "Cnn.Core.dll"
#r "Cnn.Dsl.dll"

open System
open System.Diagnostics
open Cnn.Dsl
open Cnn.Dsl.Data

let arg i fallback = fsi.CommandLineArgs |> Array.tryItem i |> Option.map int |> Option.defaultValue fallback
let recipe = Recipe.FashionMnist
let epochs, seed, steps = arg 1 recipe.Epochs, arg 2 1, arg 3 0

let clock = Stopwatch.StartNew()
let data = FashionMnist.Load()
printfn "Fashion-MNIST: %d training and %d test images as bytes, loaded in %.1f s" data.Train.Count data.Test.Count clock.Elapsed.TotalSeconds
let net = recipe.Build()
printfn "%s" (Summary.Format net)
let options = recipe.Options(data.Train, seed)
let timing = steps > 0
let train = if timing then data.Train.Batch(0, min data.Train.Count (steps * recipe.BatchSize)) else data.Train
let run = TrainOptions((if timing then 1 else epochs), options.BatchSize, options.Optimizer, seed, options.Loss, Schedule = options.Schedule, Pipeline = options.Pipeline)
printfn "%s: %d epoch(s) of batches of %d, %A, %A" recipe.Network run.Epochs run.BatchSize run.Optimizer recipe.Augment
let start, cpuStart = clock.Elapsed, Process.GetCurrentProcess().TotalProcessorTime
let result =
    Trainer.Fit(net, Initializer.Init(net, seed), train, run, validation = (if timing then null else data.Test),
        onEpoch = fun e ->
            let perStep = e.TrainingElapsed.TotalSeconds / float ((train.Count + run.BatchSize - 1) / run.BatchSize)
            printfn "epoch %d: %.1f s (%.0f ms/step, a full epoch of 469 steps %.0f s), data wait %.2f %%, loss %.4f, train acc %.2f %%%s"
                e.Epoch e.Elapsed.TotalSeconds (1000.0 * perStep) (469.0 * perStep) (100.0 * e.DataWaitFraction) e.TrainLoss (100.0 * float e.TrainAccuracy)
                (match e.Validation with null -> "" | v -> sprintf ", test acc %.2f %%" (100.0 * float v.Accuracy)))
let me = Process.GetCurrentProcess()
// The processor time says what the wall time would be on idle cores, when the machine is shared.
printfn "trained in %.1f s, %.1f s of processor time (%d threads of the kernels); peak working set %d MB"
    (clock.Elapsed - start).TotalSeconds (me.TotalProcessorTime - cpuStart).TotalSeconds Cnn.Core.Kernels.BatchParallel.Workers (me.PeakWorkingSet64 / 1_000_000L)
