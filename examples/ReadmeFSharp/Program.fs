open Cnn.FSharp

let lenet5 =
    conv2dWith { Conv2d.defaults with Padding = Same } 6 (5, 5) >-> batchNorm >-> tanh' >-> avgPool2d 2
    >-> conv2d 16 (5, 5) >-> batchNorm >-> tanh' >-> avgPool2d 2
    >-> flatten
    >-> dense 120 >-> tanh'
    >-> dense 84 >-> tanh'
    >-> dense 10

match lenet5 |> Model.build [ 1; 28; 28 ] with        // Error carries the layer path, shapes and formula
| Error message -> eprintfn "%s" message
| Ok network ->
    printf "%s" (Model.summary network)
    let train, test = Data.mnist () |> Data.split 8000 1
    let options = { TrainOptions.defaults with Epochs = 3; BatchSize = 32; Optimizer = Adam 1e-3; Seed = 1; Verbose = 2 }
    let model = (network |> Model.init 1 |> Train.fit { options with Validation = Some test } train).Model
    printfn "held-out accuracy %.4f" (model |> Train.evaluate test).Accuracy

    model |> Model.save "lenet5.safetensors"  // network, parameters and batch-norm statistics in one file
    model |> Onnx.export "lenet5.onnx"
    let loaded = Model.load "lenet5.safetensors"
    printfn "%s" (loaded |> Model.classify (test.Images.Slice(0, 10)) |> Array.map string |> String.concat " ")
