using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Onnx;

var net = Network.Create(
    new Serial(
        new Conv2d(6, kernel: 5, padding: Padding.Same), new BatchNorm(), new Tanh(), AvgPool2d.Square(2),
        new Conv2d(16, kernel: 5), new BatchNorm(), new Tanh(), AvgPool2d.Square(2),
        new Flatten(),
        new Dense(120), new Tanh(),
        new Dense(84), new Tanh(),
        new Dense(10)),
    new Shape(1, 28, 28));               // one sample's shape; the batch axis is implicit
Console.Write(Summary.Format(net));

var (train, test) = MnistNpm.Load().Split(8000, seed: 1);
var options = new TrainOptions(Epochs: 3, BatchSize: 32, Optimizer: new Adam(1e-3f), Seed: 1) { Verbose = 2 };
var model = Model.Init(net, seed: 1).Fit(train, options, validation: test).Model;
Console.WriteLine($"held-out accuracy {model.Evaluate(test).Accuracy:F4}");

model.Save("lenet5.safetensors");        // network, parameters and batch-norm statistics in one file
model.ExportOnnx("lenet5.onnx");
var loaded = Model.Load("lenet5.safetensors");
Console.WriteLine(string.Join(" ", loaded.Predict(test.Images.Slice(0, 10))));
