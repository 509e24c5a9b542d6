open Cnn.FSharp

let path = match System.Environment.GetCommandLineArgs() with [| _; p |] -> p | _ -> "resnet18.onnx"
let imported = Onnx.import path                       // torch.onnx's file
printfn "head: %s, input %A" (Transfer.findHead imported.Network) (Model.inputShape imported.Network)

// The head replaced by one of 10 classes (drawn from seed 1), every other layer frozen.
let model = imported |> Transfer.replaceHead 10 1 |> Transfer.freeze [ Transfer.allButHead ]

// 500 digits to train on, 200 held out, resized to the network's input and made 3-channel.
let input = Model.inputShape model.Network
let all, heldOut = Data.mnist () |> Data.split 8000 1
let train, test = all |> Data.take 500 |> Data.fitTo input, heldOut |> Data.take 200 |> Data.fitTo input
let options = { TrainOptions.defaults with Epochs = 2; BatchSize = 50; Optimizer = Adam 1e-2; Seed = 1; Verbose = 2 }
let tuned = (model |> Train.fit { options with Validation = Some test } train).Model
printfn "held-out accuracy %.4f" (tuned |> Train.evaluate test).Accuracy

tuned |> Model.save "tuned.safetensors"
tuned |> Onnx.export "tuned.onnx"
