/// The networks of the C# zoo written with the F# surface: equal descriptions, bitwise-equal outputs and training.
module Cnn.Tests.FSharp.TwinTests

open Cnn.Core
open Cnn.Dsl
open Cnn.FSharp
open Cnn.Tests.FSharp.Generators
open LeNetFSharp
open Xunit

let private same3 filters = conv2dWith { Conv2d.defaults with Padding = Same } filters (3, 3)

let simpleConvNet =
    conv2d 30 (5, 5) >-> relu >-> maxPool2d 2 >-> flatten >-> dense 100 >-> relu >-> dense 10

let alexNet classes =
    let norm = lrnWith (Lrn.fromPaper 5 1e-4 0.75 2.0)
    let pool = maxPool2dWith { MaxPool2d.defaults with Stride = Some 2 } 3
    let grouped groups filters k = conv2dWith { Conv2d.defaults with Padding = Same; Groups = groups } filters (k, k)
    conv2dWith { Conv2d.defaults with Stride = 4 } 96 (11, 11) >-> relu >-> norm >-> pool
    >-> grouped 2 256 5 >-> relu >-> norm >-> pool
    >-> same3 384 >-> relu
    >-> grouped 2 384 3 >-> relu
    >-> grouped 2 256 3 >-> relu >-> pool
    >-> flatten
    >-> dropout 0.5 >-> dense 4096 >-> relu
    >-> dropout 0.5 >-> dense 4096 >-> relu
    >-> dense classes

let private vggStack name filters convs =
    serial (List.concat (List.replicate convs [ same3 filters; relu ]) @ [ maxPool2d 2 ]) |> named name

let vgg16 classes =
    vggStack "block1" 64 2 >-> vggStack "block2" 128 2 >-> vggStack "block3" 256 3
    >-> vggStack "block4" 512 3 >-> vggStack "block5" 512 3
    >-> flatten
    >-> dense 4096 >-> relu >-> dropout 0.5
    >-> dense 4096 >-> relu >-> dropout 0.5
    >-> dense classes

let vggSmall classes =
    vggStack "block1" 32 2 >-> vggStack "block2" 64 2
    >-> (same3 128 >-> relu >-> conv2d 128 (1, 1) >-> relu |> named "block3")
    >-> globalAvgPool >-> flatten >-> dense classes

let private inception name b1 b3Reduce b3 b5Reduce b5 poolProjection =
    concat
        [ conv2d b1 (1, 1) >-> relu |> named "branch1x1"
          conv2d b3Reduce (1, 1) >-> relu >-> same3 b3 >-> relu |> named "branch3x3"
          conv2d b5Reduce (1, 1) >-> relu >-> conv2dWith { Conv2d.defaults with Padding = Same } b5 (5, 5) >-> relu
          |> named "branch5x5"
          maxPool2dWith { MaxPool2d.defaults with Stride = Some 1; Padding = Same } 3 >-> conv2d poolProjection (1, 1) >-> relu
          |> named "branch_pool" ]
    |> named name

let googLeNet classes =
    let pool = maxPool2dWith { MaxPool2d.defaults with Stride = Some 2; CeilMode = true } 3
    let norm = lrnWith (Lrn.fromPaper 5 1e-4 0.75 2.0)
    conv2dWith { Conv2d.defaults with Stride = 2; Padding = Same } 64 (7, 7) >-> relu >-> pool >-> norm
    >-> conv2d 64 (1, 1) >-> relu >-> same3 192 >-> relu >-> norm >-> pool
    >-> inception "inception3a" 64 96 128 16 32 32 >-> inception "inception3b" 128 128 192 32 96 64
    >-> pool
    >-> inception "inception4a" 192 96 208 16 48 64 >-> inception "inception4b" 160 112 224 24 64 64
    >-> inception "inception4c" 128 128 256 24 64 64 >-> inception "inception4d" 112 144 288 32 64 64
    >-> inception "inception4e" 256 160 320 32 128 128
    >-> pool
    >-> inception "inception5a" 256 160 320 32 128 128 >-> inception "inception5b" 384 192 384 48 128 128
    >-> globalAvgPool >-> flatten >-> dropout 0.4 >-> dense classes

let private basicBlock inChannels channels stride =
    let conv3 s = conv2dWith { Conv2d.defaults with Stride = s; Padding = Same; Bias = false } channels (3, 3)
    let body = conv3 stride >-> batchNorm >-> relu >-> conv3 1 >-> batchNorm
    let block =
        if stride <> 1 || inChannels <> channels then
            residualVia (conv2dWith { Conv2d.defaults with Stride = stride; Bias = false } channels (1, 1) >-> batchNorm) body
        else
            residual body
    block >-> relu

let private resStage name inChannels channels stride =
    (basicBlock inChannels channels stride |> named "block1") >-> (basicBlock channels channels 1 |> named "block2")
    |> named name

let resNet18 classes =
    (conv2dWith { Conv2d.defaults with Stride = 2; Padding = Same; Bias = false } 64 (7, 7) |> named "conv1")
    >-> (batchNorm |> named "bn1") >-> relu
    >-> maxPool2dWith { MaxPool2d.defaults with Stride = Some 2; Padding = Pad 1 } 3
    >-> resStage "layer1" 64 64 1 >-> resStage "layer2" 64 128 2 >-> resStage "layer3" 128 256 2 >-> resStage "layer4" 256 512 2
    >-> globalAvgPool >-> flatten >-> (dense classes |> named "fc")

let kerasCifar =
    same3 32 >-> relu >-> conv2d 32 (3, 3) >-> relu >-> maxPool2d 2 >-> dropout 0.25
    >-> same3 64 >-> relu >-> conv2d 64 (3, 3) >-> relu >-> maxPool2d 2 >-> dropout 0.25
    >-> flatten >-> dense 512 >-> relu >-> dropout 0.5 >-> dense 10
    |> initWith GlorotUniform

let dcganGenerator features =
    let up filters = convTranspose2dWith { ConvTranspose2d.defaults with Stride = 2; Padding = 1; Bias = false } filters 4
    convTranspose2dWith { ConvTranspose2d.defaults with Bias = false } (features * 2) 7 >-> batchNorm >-> relu
    >-> up features >-> batchNorm >-> relu
    >-> up 1 >-> tanh'
    |> initWith (Normal 0.02)

let conv1dSignal classes =
    let conv filters = conv1dWith { Conv1d.defaults with Padding = Same } filters 5
    conv 16 >-> relu >-> maxPoolNd 2 >-> conv 32 >-> relu >-> maxPoolNd 2 >-> globalAvgPool >-> flatten >-> dense classes

let conv3dVolume classes =
    let conv filters = conv3dWith { Conv3d.defaults with Padding = Same } filters 3
    conv 8 >-> relu >-> maxPoolNd 2 >-> conv 16 >-> relu >-> maxPoolNd 2 >-> globalAvgPool >-> flatten >-> dense classes

/// The F# description built on the C# network's input shape, checked to be the same value.
let private twin (fsharp: Layer) (csharp: Network) : Network =
    let network = fsharp |> Model.create (Model.inputShape csharp)
    Assert.Equal<Layer>(csharp.Root, network.Root)
    Assert.Equal(Summary.Format csharp, Model.summary network)
    network

[<Fact>]
let ``the F# zoo describes the same values as the C# zoo`` () =
    twin (alexNet 1000) (Zoo.AlexNet()) |> ignore
    twin (vgg16 1000) (Zoo.Vgg16()) |> ignore
    twin (googLeNet 1000) (Zoo.GoogLeNet()) |> ignore
    // Counted as Keras does: 11,689,512 trainable parameters and 9,600 batch-norm running statistics.
    Assert.Equal(11_689_512L + 9_600L, twin (resNet18 1000) (Zoo.ResNet18()) |> Model.parameterCount)

let private forwardTwins (fsharp: Layer) (csharp: Network) (seed: int) =
    let network = twin fsharp csharp
    let x = randomTensor seed (2 :: Model.inputShape csharp)
    let fromFSharp = network |> Model.init seed |> Model.predict x
    let fromCSharp = Apply.Forward(csharp, Initializer.Init(csharp, seed), x, Mode.Eval, Initializer.InitState csharp)
    Assert.True(bitwiseEqual fromCSharp fromFSharp, $"%O{csharp.Root}")

[<Fact>]
let ``F# models and their C# twins give bitwise-equal outputs`` () =
    forwardTwins LeNet5.layers (Zoo.LeNet5()) 1
    forwardTwins simpleConvNet (Zoo.SimpleConvNet()) 2
    forwardTwins (vggSmall 10) (Zoo.VggSmall()) 3
    forwardTwins kerasCifar (Zoo.KerasCifar()) 4
    forwardTwins (dcganGenerator 4) (Zoo.DcganGenerator(8, 4)) 5
    forwardTwins (conv1dSignal 10) (Zoo.Conv1dSignal()) 6
    forwardTwins (conv3dVolume 10) (Zoo.Conv3dVolume()) 7

let private digits = lazy (Data.mnist () |> Data.split 512 11 |> fst)

[<Fact>]
let ``the F# training pipeline and the C# trainer train LeNet-5 to bitwise-equal weights`` () =
    let data = digits.Force()
    let options = { TrainOptions.defaults with Epochs = 2; BatchSize = 64; Optimizer = Momentum(0.05, 0.9); Seed = 3 }
    let fsharp = LeNet5.layers |> Model.create LeNet5.inputShape |> Model.init 9 |> Train.fit options data
    let zoo = Zoo.LeNet5()
    let csharp = Trainer.Fit(zoo, Initializer.Init(zoo, 9), data, Cnn.Dsl.TrainOptions(2, 64, Cnn.Dsl.Sgd(0.05f, 0.9f), 3))
    Assert.True(sameParameters csharp.Parameters fsharp.Model.Parameters)
    Assert.Equal<float list>(csharp.History |> Seq.map (fun e -> float e.TrainLoss) |> List.ofSeq, fsharp.History |> List.map _.TrainLoss)
    let evaluation = fsharp.Model |> Train.evaluate data
    Assert.Equal(float (Trainer.Evaluate(zoo, csharp.Parameters, data).Accuracy), evaluation.Accuracy)
