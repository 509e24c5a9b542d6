/// Trains LeNet-5 on 8,000 real MNIST digits and reports its accuracy on the 2,000 held out.
module LeNetFSharp.Program

open System.Diagnostics
open Cnn.FSharp

let private report (e: EpochStats) =
    let heldOut = e.Validation |> Option.map (fun v -> $", held-out %.2f{100.0 * v.Accuracy} %%") |> Option.defaultValue ""
    printfn $"epoch %d{e.Epoch}: loss %.4f{e.TrainLoss}, train %.2f{100.0 * e.TrainAccuracy} %%%s{heldOut} (%.1f{e.Elapsed.TotalSeconds} s)"

[<EntryPoint>]
let main _ =
    match LeNet5.layers |> Model.build LeNet5.inputShape with
    | Error message ->
        eprintfn $"%s{message}"
        1
    | Ok network ->
        printf $"%s{Model.summary network}"
        let clock = Stopwatch.StartNew()
        let train, test = Data.mnist () |> Data.split 8000 1
        let options =
            { TrainOptions.defaults with
                Epochs = 20
                BatchSize = 32
                Optimizer = Adam 1e-3
                Seed = 1
                Validation = Some test
                OnEpoch = report }
        let result = network |> Model.init 1 |> Train.fit options train
        let heldOut = result.Model |> Train.evaluate test
        printfn $"LeNet-5 (F#): held-out accuracy %.2f{100.0 * heldOut.Accuracy} %% on %d{heldOut.Count} digits, %.1f{clock.Elapsed.TotalSeconds} s"
        0
