/// The F# augmentation surface: each record field reaches its C# option, and `Train.fit` augments every epoch.
module Cnn.Tests.FSharp.AugmentationTests

open System
open Cnn.Core
open Cnn.Dsl
open Cnn.Dsl.Data
open Cnn.FSharp
open Xunit

let private data (n: int) (seed: int) : LabeledData =
    let rng = Random(seed)
    let labels = Array.init n (fun i -> i % 3)
    let x = Array.init (n * 64) (fun j -> float32 (rng.NextDouble() * 0.5) + (if j % 64 / 22 = labels[j / 64] then 0.5f else 0f))
    LabeledData(Tensor.FromArray(x, n, 1, 8, 8), labels, 3)

let private everything =
    { Augmentation.none with
        FlipHorizontal = true
        FlipVertical = true
        MaxShift = 1
        MaxShiftFraction = 0.1
        MaxRotationDegrees = 10.0
        CropPadding = 1
        Zoom = 0.2
        MaxShearDegrees = 12.0
        Brightness = 0.3
        Contrast = 0.4
        Fill = Constant 0.25
        Erasing = Some { Erasing.defaults with Probability = 0.7; RandomValues = true } }

[<Fact>]
let ``Each field reaches its C# option and apply is Augment.Apply`` () =
    let expected =
        AugmentOptions(true, 1, 10f, 1, FlipVertical = true, MaxShiftFraction = 0.1f, ZoomRange = 0.2f, MaxShearDegrees = 12f,
            Brightness = 0.3f, Contrast = 0.4f, Fill = FillMode.Constant, FillValue = 0.25f,
            Erasing = RandomErasing(0.7f, 0.02f, 0.33f, 0.3f, 0f, true))
    Assert.Equal(expected, Augmentation.toOptions everything)
    for fill, mode in [ Nearest, FillMode.Nearest; Reflect, FillMode.Reflect; Wrap, FillMode.Wrap ] do
        Assert.Equal(mode, (Augmentation.toOptions { everything with Fill = fill }).Fill)
    let x = (data 6 1).Images
    Assert.Equal<float32>(Augment.Apply(x, expected, 4).ToArray(), (Augmentation.apply 4 everything x).ToArray())
    Assert.Equal<float32>(x.ToArray(), (Augmentation.apply 4 Augmentation.none x).ToArray())
    Assert.Equal(AugmentOptions.Digits, Augmentation.toOptions Augmentation.digits)
    Assert.Equal(AugmentOptions.Photos, Augmentation.toOptions Augmentation.photos)

[<Fact>]
let ``Train.fit augments and normalises as the C# pipeline does`` () =
    let train = data 30 2
    let norm = Normalization.Fit train.Images
    let model = conv2d 4 (3, 3) >-> relu >-> flatten >-> dense 3 |> Model.create [ 1; 8; 8 ] |> Model.init 1
    let options = { TrainOptions.defaults with Epochs = 2; BatchSize = 10; Optimizer = Momentum(0.05, 0.9); Seed = 3 }
    let fsharp = model |> Train.fit { options with Augment = Some everything; Normalize = Some norm } train
    let csharp =
        Trainer.Fit(model.Network, model.Parameters, train,
            Cnn.Dsl.TrainOptions(2, 10, Cnn.Dsl.Sgd(0.05f, 0.9f), 3, Pipeline = PipelineOptions(Augmentation.toOptions everything, norm)),
            initialState = model.State)
    for path in csharp.Parameters.Paths do
        Assert.Equal<float32>(csharp.Parameters[path].ToArray(), fsharp.Model.Parameters[path].ToArray())
    let plain = model |> Train.fit { options with Normalize = Some norm } train
    Assert.Contains(csharp.Parameters.Paths, fun path -> csharp.Parameters[path].ToArray() <> plain.Model.Parameters[path].ToArray())
