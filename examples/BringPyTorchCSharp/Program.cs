using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Onnx;

var imported = OnnxImporter.Import(args.Length > 0 ? args[0] : "resnet18.onnx");    // torch.onnx's file
Console.WriteLine($"head: {Transfer.FindHead(imported.Network)}, input {imported.Network.InputShape}");

// The head replaced by one of 10 classes (drawn from seed 1), every other layer frozen.
var model = Transfer.Prepare(imported.Network, imported.Parameters, imported.State,
    new TransferOptions(Freeze: [Transfer.AllButHead], NewHeadClasses: 10, Seed: 1)).Model;
Console.WriteLine($"trainable: {string.Join(", ", Trainer.TrainablePaths(model.Network).Order(StringComparer.Ordinal))}");

// 500 digits to train on, 200 held out, resized to the network's input and made 3-channel.
var (train, test) = MnistNpm.Load().Split(8000, seed: 1);
train = InputAdapter.Fit(train.Batch(0, 500), model.Network.InputShape);
test = InputAdapter.Fit(test.Batch(0, 200), model.Network.InputShape);
var options = new TrainOptions(Epochs: 2, BatchSize: 50, Optimizer: new Adam(1e-2f), Seed: 1) { Verbose = 2 };
model = model.Fit(train, options, validation: test).Model;
Console.WriteLine($"held-out accuracy {model.Evaluate(test).Accuracy:F4}");

model.Save("tuned.safetensors");
model.ExportOnnx("tuned.onnx");
