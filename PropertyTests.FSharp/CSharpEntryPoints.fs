/// Every public C# entry point an F# user needs, called from F# as F# calls any .NET library: no `new`, no out or
/// ref arguments, no casts to pick an overload, lambdas where the C# API takes delegates. If a C# signature stops
/// being callable this way, this file stops compiling.
module Cnn.Tests.FSharp.CSharpEntryPoints

open System
open System.Collections.Generic
open Cnn.Core
open Cnn.Dsl
open Cnn.Dsl.Data
open Xunit

let private net () =
    Network.Create(
        Serial(
            Conv2d(4, 3, 3, PadH = 1, PadW = 1).Named "conv",
            BatchNorm().Named "bn",
            Relu(),
            FanOut.Concat(Identity(), Conv2d(2, 1, 1)),
            Residual(Conv2d(6, 3, 3, PadH = 1, PadW = 1)),
            Freeze(Conv2d(3, 1, 1).InitWith Init.HeNormal),
            MaxPool2d(2, 2, 2, 2),
            Flatten(),
            Dropout(0.25f),
            Dense(3)),
        Shape(1, 6, 6))

let private images (n: int) =
    let rng = Random(n)
    Tensor.FromArray(Array.init (n * 36) (fun _ -> float32 (rng.NextDouble())), Shape(n, 1, 6, 6))

let private labels (n: int) = Array.init n (fun i -> i % 3)

[<Fact>]
let ``shapes, tensors and layer records`` () =
    let shape = Shape(2, 3)
    Assert.Equal(6, shape.Size)
    Assert.Equal<Shape>(Shape(5, 2, 3), shape.PrependBatch 5)
    let t = Tensor.FromArray([| 1f; 2f; 3f; 4f; 5f; 6f |], shape)
    Assert.Equal(6f, t[5])
    Assert.Equal<Shape>(Shape(3, 2), t.Reshape(3, 2).Shape)
    Assert.Equal(0f, Tensor.Zeros(shape)[0])
    Assert.Equal(7f, Tensor.Full(shape, 7f)[4])
    Assert.Equal<Layer>(Serial([ Relu() :> Layer; Tanh() ]), Serial(Relu(), Tanh()))
    Assert.Equal<Layer>(FanOut(Join.Sum, [ Relu() :> Layer; Identity() ]), FanOut.Sum(Relu(), Identity()))
    Assert.Equal<Layer>(Reshape(Shape(4, 2)), Reshape(4, 2))
    Assert.Equal<Layer>(Lrn(5, 1e-4f * 5f, 0.75f, 2f), Lrn.FromPaper(5, 1e-4f, 0.75f, 2f))

[<Fact>]
let ``Network.Create, Initializer and Summary`` () =
    let network = net ()
    Assert.Equal<Shape>(Shape(3), network.OutputShape)
    Assert.Equal("conv", network.Leaves[0].Path)
    Assert.Throws<ShapeException>(fun () -> Network.Create(Conv2d(1, 2, 2, 2, 2), Shape(1, 5, 5), strict = true) |> ignore) |> ignore
    let p = Initializer.Init(network, 1)
    let glorot = Initializer.Init(network, 1, Init.GlorotUniform)
    Assert.Equal<string>(p.Paths, glorot.Paths)
    let state = Initializer.InitState network
    Assert.Equal(Summary.ParameterCount network, p.ScalarCount + state.ScalarCount)
    Assert.Equal<string>([ "bn/running_mean"; "bn/running_var" ], state.Paths)
    let rows = Summary.Rows network
    Assert.Equal("Dense", rows[rows.Count - 1].Type)
    let totals = Summary.Totals network
    // The frozen dense layer, and the batch norm's running mean and variance (4 channels), as Keras counts them.
    Assert.Equal(int64 (3 * 6 + 3 + 2 * 4), totals.NonTrainable)
    Assert.Contains("Total params", Summary.Format network)

[<Fact>]
let ``Parameters are immutable maps built and read without out arguments`` () =
    let p = Parameters.Of [ KeyValuePair("a", Tensor.Zeros(2)); KeyValuePair("b", Tensor.Full(Shape(1), 3f)) ]
    Assert.True(p.Contains "a")
    let b = p["b"]
    Assert.Equal(3f, b[0])
    let doubled = p.Map(fun _ t -> Tensor.FromArray(t.ToArray() |> Array.map ((*) 2f), t.Shape))
    let b2 = doubled["b"]
    Assert.Equal(6f, b2[0])
    let a1 = p.With("a", Tensor.Full(Shape(2), 1f))["a"]
    Assert.Equal(1f, a1[1])
    let zero = p.ZerosLike()["b"]
    Assert.Equal(0f, zero[0])
    Assert.Equal(0, Parameters.Empty.Count)
    Assert.Equal<string>([ "a"; "b" ], p.Entries |> Seq.map _.Key)

[<Fact>]
let ``Apply, pullbacks and Loss`` () =
    let network = net ()
    let p = Initializer.Init(network, 2)
    let state = Initializer.InitState network
    let x = images 4
    let y = Apply.Forward(network, p, x, state = state)
    Assert.Equal<Shape>(Shape(4, 3), y.Shape)
    let forward = Apply.WithPullback(network, p, x, Mode.Train, state, 5)
    let pulled = forward.Pullback(Tensor.Full(forward.Output.Shape, 1f))
    Assert.Equal<Shape>(x.Shape, pulled.Input.Shape)
    Assert.False(pulled.Parameters.Contains "conv2/weight")
    Assert.False(Object.ReferenceEquals(state, forward.State))
    let g = Loss.Gradient(network, p, x, labels 4, LossFunction.MeanSquaredError, state = state)
    Assert.Equal(p.Count - 2, g.Gradients.Count)
    let ce = Loss.SoftmaxCrossEntropy(network, p, x, labels 4, Mode.Eval, state)
    Assert.Equal(ce.Loss, LossFunction.SoftmaxCrossEntropy.Compute(ce.Output, labels 4).Value)
    Assert.Equal(4, (Trainer.ArgMax ce.Output).Length)

[<Fact>]
let ``optimizers are values stepped without mutation`` () =
    let p = Parameters.Of [ KeyValuePair("w", Tensor.Full(Shape(2), 1f)) ]
    let g = Parameters.Of [ KeyValuePair("w", Tensor.Full(Shape(2), 0.5f)) ]
    let optimizers: Optimizer list =
        [ Sgd(0.1f); Sgd(0.1f, Momentum = 0.9f); Sgd(0.1f, 0.9f, Nesterov = true); Adam(); Adam(LearningRate = 0.01f, Beta2 = 0.99f) ]
    for optimizer in optimizers do
        let step = optimizer.Step(p, g, optimizer.Init p)
        Assert.Equal(1L, step.State.Step)
        let after, before = step.Parameters["w"], p["w"]
        Assert.True(after[0] < 1f, $"%O{optimizer}")
        Assert.Equal(1f, before[0])

[<Fact>]
let ``Trainer, LabeledData and the zoo`` () =
    let data = LabeledData(images 24, labels 24, 3)
    let split = data.Split(16, 7)
    Assert.Equal(8, split.Second.Count)
    Assert.Equal(3, data.Take([| 0; 0; 5 |]).Count)
    Assert.Equal<int>([ 1; 2 ], data.Batch(1, 2).Labels)
    Assert.Equal(3, data.Classes)
    let network = net ()
    let epochs = ResizeArray()
    let result =
        Trainer.Fit(
            network,
            Initializer.Init(network, 3),
            split.First,
            TrainOptions(2, 8, Adam(0.01f), Seed = 4, Loss = LossFunction.SoftmaxCrossEntropy),
            validation = split.Second,
            onEpoch = (fun e -> epochs.Add e),
            progress = Progress<TrainProgress>(ignore)
        )
    Assert.Equal(2, result.History.Count)
    Assert.Equal<EpochStats>(result.History, epochs)
    Assert.Equal(result.History[1].Validation, Trainer.Evaluate(network, result.Parameters, split.Second, state = result.State))
    Assert.DoesNotContain("conv2/weight", Trainer.TrainablePaths network)
    Assert.Equal(61_706L, Summary.ParameterCount(Zoo.LeNet5()))
    Assert.Equal(Zoo.LeNet5().Root, (Zoo.ByName "lenet5").Root)
    Assert.Contains("resnet18", Zoo.Names)
    Assert.Equal(MnistNpm.ImageCount, (MnistNpm.Load()).Count)
