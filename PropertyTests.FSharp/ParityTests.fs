/// The F# surface at parity with C#: every callback, schedule, progress, checkpoint, model-value and ONNX function is
/// called here, and each is checked against the C# call it stands for.
module Cnn.Tests.FSharp.ParityTests

open System
open System.IO
open Cnn.Core
open Cnn.Dsl
open Cnn.Dsl.Data
open Cnn.FSharp
open Xunit

/// Three classes, each lighting a third of a 6x6 image, with noise: learnable in a few epochs.
let private data (n: int) (seed: int) : LabeledData =
    let rng = Random(seed)
    let labels = Array.init n (fun i -> i % 3)
    let x =
        Array.init (n * 36) (fun j ->
            let i, p = j / 36, j % 36
            float32 (rng.NextDouble() * 0.3) + (if p / 12 = labels[i] then 1f else 0f))
    LabeledData(Tensor.FromArray(x, n, 1, 6, 6), labels, 3)

let private layers =
    conv2dWith { Conv2d.defaults with Padding = Same } 4 (3, 3) >-> batchNorm >-> relu >-> maxPool2d 2
    >-> residual (conv2dWith { Conv2d.defaults with Padding = Same } 4 (3, 3) >-> relu)
    >-> freeze (identity |> named "stem")
    >-> flatten >-> dense 3

let private model () = layers |> Model.create [ 1; 6; 6 ] |> Model.init 1

let private options =
    { TrainOptions.defaults with Epochs = 3; BatchSize = 8; Optimizer = Adam 1e-2; Seed = 2; Validation = Some(data 24 9) }

let private tempDir () = Directory.CreateTempSubdirectory("cnn-fsharp-parity").FullName

let private sameTensors (a: Parameters) (b: Parameters) =
    Assert.Equal<string>(a.Paths, b.Paths)
    for path in a.Paths do
        Assert.Equal<float32>(a[path].ToArray(), b[path].ToArray())

[<Fact>]
let ``callbacks are the C# values and act in Train.fit`` () =
    Assert.Equal(Cnn.Dsl.Callback.EarlyStopping("val_loss", 0f, 2, Cnn.Dsl.MetricMode.Auto, true), Callback.earlyStopping 2)
    Assert.Equal(
        Cnn.Dsl.Callback.EarlyStopping("val_accuracy", 0.01f, 1, Cnn.Dsl.MetricMode.Max, false),
        Callback.earlyStoppingWith { EarlyStopping.defaults with Monitor = "val_accuracy"; MinDelta = 0.01; Patience = 1; Mode = Max })
    Assert.Equal(Cnn.Dsl.Callback.ReduceLearningRateOnPlateau("val_loss", 0.5f, 3), Callback.reduceOnPlateau 0.5 3)
    Assert.Equal(
        Cnn.Dsl.Callback.ReduceLearningRateOnPlateau("loss", 0.2f, 1, 1e-5f, 0f, Cnn.Dsl.MetricMode.Min),
        Callback.reduceOnPlateauWith { ReduceOnPlateau.defaults with Monitor = "loss"; Factor = 0.2; Patience = 1; MinRate = 1e-5; MinDelta = 0.0; Mode = Min })
    let dir = tempDir ()
    try
        let csv = Path.Combine(dir, "log.csv")
        let stopAfterTwo = Callback.custom (fun ctx -> if ctx.Stats.Epoch = 2 then CallbackDecision(Stop = true) else CallbackDecision.Continue)
        let result =
            model ()
            |> Train.fit
                { options with
                    Epochs = 5
                    Callbacks =
                        [ Callback.csvLogger csv
                          Callback.modelCheckpoint (Path.Combine(dir, "ep{epoch}.safetensors"))
                          Callback.modelCheckpointWith
                              { ModelCheckpoint.defaults with SaveBestOnly = true; KeepLast = 1; Network = Some (model ()).Network }
                              (Path.Combine(dir, "best.safetensors"))
                          stopAfterTwo ] }
                (data 48 1)
        Assert.Equal(2, result.History.Length)
        Assert.Equal(3, File.ReadAllLines csv |> Array.length) // the header and two epochs
        Assert.True(File.Exists(Path.Combine(dir, "ep001.safetensors")) && File.Exists(Path.Combine(dir, "ep002.safetensors")), "one checkpoint per epoch, named ep001, ep002")
        Assert.Equal((model ()).Network, (Model.load (Path.Combine(dir, "best.safetensors"))).Network)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``schedules are the C# values and change training as in C#`` () =
    Assert.Equal(Cnn.Dsl.Schedule.Constant, Schedule.constant)
    Assert.Equal(Cnn.Dsl.Schedule.StepDecay(2, 0.5f), Schedule.stepDecay 2 0.5)
    Assert.Equal(Cnn.Dsl.Schedule.Exponential(0.9f), Schedule.exponential 0.9)
    Assert.Equal(Cnn.Dsl.Schedule.KerasDecay(0.01f), Schedule.kerasDecay 0.01)
    Assert.Equal(Cnn.Dsl.Schedule.LinearDecay 0.4, Schedule.linearDecay 0.4)
    Assert.Equal(Cnn.Dsl.Schedule.OneCycle(), Schedule.oneCycle)
    Assert.Equal(Cnn.Dsl.Schedule.OneCycle(0.3f, 10f), Schedule.oneCycleWith { OneCycle.defaults with WarmupFraction = 0.3; Div = 10.0 })
    let fsharp = model () |> Train.fit { options with Schedule = Some Schedule.oneCycle } (data 48 1)
    let m = model ()
    let csharp =
        Trainer.Fit(m.Network, m.Parameters, data 48 1,
            Cnn.Dsl.TrainOptions(3, 8, Cnn.Dsl.Adam(float32 1e-2), 2, Schedule = Cnn.Dsl.Schedule.OneCycle()),
            validation = data 24 9, initialState = m.State)
    sameTensors csharp.Parameters fsharp.Model.Parameters
    let constant = model () |> Train.fit options (data 48 1)
    Assert.NotEqual<float32>(constant.Model.Parameters["dense1/weight"].ToArray(), fsharp.Model.Parameters["dense1/weight"].ToArray())

[<Fact>]
let ``OnBatch reports every batch in order`` () =
    let seen = ResizeArray<BatchProgress>()
    model () |> Train.fit { options with Epochs = 2; OnBatch = seen.Add } (data 20 1) |> ignore
    Assert.Equal(6, seen.Count) // 20 samples in batches of 8: 3 batches, 2 epochs
    Assert.Equal<(int * int * int) list>(
        [ 1, 1, 3; 1, 2, 3; 1, 3, 3; 2, 1, 3; 2, 2, 3; 2, 3, 3 ],
        seen |> Seq.map (fun p -> p.Epoch, p.Batch, p.Batches) |> List.ofSeq)
    Assert.All(seen, fun p -> Assert.True(Double.IsFinite p.Loss && p.Accuracy >= 0.0 && p.Accuracy <= 1.0))

[<Fact>]
let ``a run resumed from a saved checkpoint ends equal to an uninterrupted one`` () =
    let dir = tempDir ()
    try
        let whole = model () |> Train.fit { options with Epochs = 2 } (data 32 3)
        let first = model () |> Train.fit { options with Epochs = 1 } (data 32 3)
        let path = Path.Combine(dir, "run.safetensors")
        first |> Train.saveCheckpoint path
        let checkpoint = Train.loadCheckpoint path
        Assert.Equal(2, checkpoint.Epoch)
        let network = Cnn.Dsl.IO.Checkpoint.LoadNetwork checkpoint
        Assert.Equal(first.Model.Network, network)
        let resumed = Model.ofCheckpoint network checkpoint |> Train.fit { options with Epochs = 2; Resume = Some checkpoint } (data 32 3)
        sameTensors whole.Model.Parameters resumed.Model.Parameters
        sameTensors whole.Model.State resumed.Model.State
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``the model value saves, loads, converts and predicts as the C# one`` () =
    let dir = tempDir ()
    try
        let trained = (model () |> Train.fit options (data 48 1)).Model
        let path = Path.Combine(dir, "model.safetensors")
        trained |> Model.save path
        let back = Model.load path
        Assert.Equal(trained.Network, back.Network)
        sameTensors trained.Parameters back.Parameters
        sameTensors trained.State back.State
        sameTensors trained.Parameters (Model.loadFor trained.Network path).Parameters
        let csharp = Model.toDsl trained
        Assert.Equal(trained, Model.ofDsl csharp)
        let x = (data 12 5).Images
        Assert.Equal<float32>(csharp.PredictProbabilities(x).ToArray(), (trained |> Model.probabilities x).ToArray())
        Assert.Equal<int>(csharp.Predict x, trained |> Model.classify x)
        Assert.Equal((Train.evaluate (data 24 9) trained).Accuracy, float (csharp.Evaluate(data 24 9)).Accuracy)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``ONNX export from F# runs in ONNX Runtime as the model does`` () =
    let dir = tempDir ()
    try
        let trained = (model () |> Train.fit { options with Epochs = 1 } (data 24 1)).Model
        let path = Path.Combine(dir, "model.onnx")
        trained |> Onnx.export path
        Assert.Equal<byte>(File.ReadAllBytes path, Onnx.toBytes trained)
        let other = Path.Combine(dir, "named.onnx")
        trained |> Onnx.exportWith (Cnn.Onnx.OnnxExportOptions(ModelName = "parity")) other
        Assert.True(FileInfo(other).Length > 0L)
        let x = (data 10 4).Images
        let ours = (trained |> Model.predict x).ToArray()
        let ort = (Onnx.run path x).ToArray()
        Assert.All(Array.zip ours ort, fun (a, b) -> Assert.True(abs (a - b) <= 1e-4f * (1f + abs a), $"%g{a} vs %g{b}"))
        Assert.Equal<int>(trained |> Model.classify x, Onnx.classify path x)
    finally
        Directory.Delete(dir, true)

/// Float targets: for each image the mean brightness of its top and bottom halves.
let private regression (n: int) (seed: int) : TargetData =
    let rng = Random(seed)
    let x = Array.init (n * 36) (fun _ -> float32 (rng.NextDouble()))
    let t = Array.init (n * 2) (fun j -> let i, half = j / 2, j % 2 in Array.average x[i * 36 + half * 18 .. i * 36 + half * 18 + 17])
    Data.withTargets (Tensor.FromArray(t, n, 2)) (Tensor.FromArray(x, n, 1, 6, 6))

[<Fact>]
let ``Train.fitTargets is Trainer.Fit on float targets, with the new losses as the C# values`` () =
    Assert.Equal(LossFunction.BinaryCrossEntropy, Train.lossFunction BinaryCrossEntropy)
    Assert.Equal(LossFunction.BinaryCrossEntropyWithLogits, Train.lossFunction BinaryCrossEntropyWithLogits)
    Assert.Equal(LossFunction.MeanAbsoluteError, Train.lossFunction MeanAbsoluteError)
    let net = conv2d 4 (3, 3) >-> relu >-> flatten >-> dense 2 |> Model.create [ 1; 6; 6 ] |> Model.init 1
    let train, test = regression 40 3 |> Data.splitTargets 32 1
    let settings = { TrainOptions.defaults with Epochs = 4; BatchSize = 8; Optimizer = Adam 1e-2; Loss = MeanAbsoluteError; Seed = 2 }
    let result = net |> Train.fitTargets settings (Some test) train
    let csharp =
        Trainer.Fit(net.Network, net.Parameters, train, TrainOptions(4, 8, Cnn.Dsl.Adam(1e-2f), 2, LossFunction.MeanAbsoluteError), test)
    sameTensors csharp.Parameters result.Model.Parameters
    let before = net |> Train.evaluateTargets MeanAbsoluteError test
    let after = result.Model |> Train.evaluateTargets MeanAbsoluteError test
    Assert.True(after.Loss < before.Loss, sprintf "validation loss %f -> %f" before.Loss after.Loss)
    Assert.Equal(after.Loss, (List.last result.History).Validation.Value.Loss)
    Assert.True(Double.IsNaN after.Accuracy && result.History |> List.forall (fun s -> Double.IsNaN s.TrainAccuracy))
    Assert.Throws<CnnException>(fun () -> net |> Train.fitTargets { settings with Loss = SoftmaxCrossEntropy } None train |> ignore) |> ignore
