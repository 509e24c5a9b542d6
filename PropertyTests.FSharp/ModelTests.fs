/// Building, running and training models through the F# pipeline.
module Cnn.Tests.FSharp.ModelTests

open System
open Cnn.Core
open Cnn.Dsl
open Cnn.FSharp
open Cnn.Tests.FSharp.Generators
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit

[<Property(MaxTest = 200)>]
let ``a network that does not fit is an Error naming the layer's path, shapes and formula`` () =
    let arb =
        gen {
            let! input = chw
            let! n = Gen.choose (1, 3)
            let! pieces = chain n input
            return pieces
        }
        |> Arb.fromGen
    Prop.forAll arb (fun pieces ->
        let s = (List.last pieces).Output
        let tooTall = s.H + 1
        let bad = serial [ relu; conv2d 1 (tooTall, 1) ] |> named "bad"
        let layer = (pieces |> List.map _.Layer |> List.reduce (>->)) >-> bad
        let input = pieces.Head.Input.Dims
        match Model.build input layer with
        | Ok _ -> failwith "a kernel taller than its input built"
        | Error message ->
            Assert.Contains("'bad/conv1'", message)
            Assert.Contains($"[%d{s.C}, %d{s.H}, %d{s.W}]", message)
            Assert.Contains($"(%d{s.H} + 2*0 - 1*(%d{tooTall}-1) - 1) / 1 + 1", message)
            let thrown = Assert.Throws<ShapeException>(fun () -> Model.create input layer |> ignore)
            Assert.Equal(message, thrown.Message))

[<Fact>]
let ``strict building rejects a window that does not tile its input`` () =
    let layer = conv2dWith { Conv2d.defaults with Stride = 2 } 1 (2, 2)
    Assert.True(Result.isOk (Model.build [ 1; 5; 5 ] layer))
    match Model.buildStrict [ 1; 5; 5 ] layer with
    | Ok _ -> failwith "strict mode accepted a remainder"
    | Error message -> Assert.Contains("remainder 1", message)

[<Fact>]
let ``duplicate names are an Error too`` () =
    match Model.build [ 4 ] ((dense 2 |> named "head") >-> (dense 2 |> named "head")) with
    | Ok _ -> failwith "two children named 'head' built"
    | Error message -> Assert.Contains("'head'", message)

[<Fact>]
let ``init is deterministic and holds the batch-norm state`` () =
    let network = conv2d 3 (3, 3) >-> (batchNorm |> named "bn") >-> relu |> Model.create [ 2; 6; 6 ]
    let a, b, c = Model.init 4 network, Model.init 4 network, Model.init 5 network
    Assert.True(sameParameters a.Parameters b.Parameters)
    Assert.False(sameParameters a.Parameters c.Parameters)
    Assert.Equal<string list>([ "bn/running_mean"; "bn/running_var" ], List.ofSeq a.State.Paths)
    let zeros = Model.initWith Zeros 4 network
    Assert.True(zeros.Parameters["conv1/weight"].ToArray() |> Array.forall ((=) 0f))

[<Fact>]
let ``apply in training updates the state and draws dropout from the seed; inference does neither`` () =
    let model = batchNorm |> named "bn" >-> dropout 0.5 |> Model.create [ 3; 2; 2 ] |> Model.init 1
    let x = randomTensor 2 [ 4; 3; 2; 2 ]
    let y1, trained = model |> Model.apply Training 7 x
    let y2, _ = model |> Model.apply Training 7 x
    let y3, _ = model |> Model.apply Training 8 x
    Assert.True(bitwiseEqual y1 y2)
    Assert.False(bitwiseEqual y1 y3)
    Assert.False(sameParameters model.State trained.State)
    let yEval, same = model |> Model.apply Inference 7 x
    Assert.True(bitwiseEqual yEval (Model.predict x model))
    Assert.True(sameParameters model.State same.State)

[<Fact>]
let ``an auxiliary head is the identity in inference and adds its weighted loss in training`` () =
    let head = flatten >-> dense 3
    let withHead = conv2d 4 (3, 3) >-> relu >-> (auxiliaryHead 0.5 head |> named "side") >-> flatten >-> dense 3
    let model = withHead |> Model.create [ 1; 6; 6 ] |> Model.init 1
    let x = randomTensor 2 [ 5; 1; 6; 6 ]
    let labels = [| 0; 2; 1; 1; 0 |]
    let loss = model |> Train.batchLoss SoftmaxCrossEntropy 3 x labels
    Assert.Equal<string list>([ "side" ], loss.Heads |> List.map fst)
    Assert.Equal(loss.Main + 0.5 * snd loss.Heads.Head, loss.Total, 6)
    Assert.True(snd loss.Heads.Head > 0.0)
    let plain = conv2d 4 (3, 3) >-> relu >-> flatten >-> dense 3 |> Model.create [ 1; 6; 6 ]
    let trunk = { Network = plain; Parameters = Parameters.Of(model.Parameters.Entries |> Seq.filter (fun kv -> not (kv.Key.StartsWith "side/"))); State = model.State }
    Assert.True(bitwiseEqual (Model.predict x trunk) (Model.predict x model))
    Assert.Equal(loss.Main, (trunk |> Train.batchLoss SoftmaxCrossEntropy 3 x labels).Total)

[<Fact>]
let ``the training pipeline returns the history as F# records and the trained model`` () =
    let images = randomTensor 1 [ 48; 1; 6; 6 ]
    let data = images |> Data.create 3 (List.init 48 (fun i -> i % 3))
    let train, validation = data |> Data.split 36 2
    let network = conv2d 4 (3, 3) >-> relu >-> flatten >-> dense 3 |> Model.create [ 1; 6; 6 ]
    let seen = ResizeArray()
    let options =
        { TrainOptions.defaults with
            Epochs = 3
            BatchSize = 8
            Optimizer = Nesterov(0.05, 0.9)
            Seed = 5
            Validation = Some validation
            OnEpoch = seen.Add }
    let initial = network |> Model.init 1
    let result = initial |> Train.fit options train
    Assert.Equal<int list>([ 1; 2; 3 ], result.History |> List.map _.Epoch)
    Assert.Equal<EpochStats list>(result.History, List.ofSeq seen)
    Assert.All(result.History, fun e -> Assert.Equal(Some 12, e.Validation |> Option.map _.Count))
    Assert.Equal(3L * int64 (Data.count train / 8 + 1), result.OptimizerState.Step)
    Assert.False(sameParameters initial.Parameters result.Model.Parameters)
    let final = result.Model |> Train.evaluate validation
    Assert.Equal(Some final, (List.last result.History).Validation)
    let mse = result.Model |> Train.evaluateWith MeanSquaredError validation
    Assert.NotEqual(final.Loss, mse.Loss)
    Assert.Equal(Data.count validation, (result.Model |> Model.classify validation.Images).Length)

[<Fact>]
let ``every loss and optimizer maps onto its C# value`` () =
    Assert.Equal(LossFunction.SoftmaxCrossEntropy, Train.lossFunction SoftmaxCrossEntropy)
    Assert.Equal(LossFunction.NegativeLogLikelihood, Train.lossFunction NegativeLogLikelihood)
    Assert.Equal(LossFunction.MeanSquaredError, Train.lossFunction MeanSquaredError)
    Assert.Equal<Cnn.Dsl.Optimizer>(Cnn.Dsl.Sgd(0.1f), Train.optimizer (Sgd 0.1))
    Assert.Equal<Cnn.Dsl.Optimizer>(Cnn.Dsl.Sgd(0.1f, 0.9f), Train.optimizer (Momentum(0.1, 0.9)))
    Assert.Equal<Cnn.Dsl.Optimizer>(Cnn.Dsl.Sgd(0.1f, 0.9f, true), Train.optimizer (Nesterov(0.1, 0.9)))
    Assert.Equal<Cnn.Dsl.Optimizer>(Cnn.Dsl.Adam(1e-3f), Train.optimizer (Adam 1e-3))
    Assert.Equal<Cnn.Dsl.Optimizer>(Cnn.Dsl.Adam(2e-3f, 0.8f, 0.99f, 1e-7f), Train.optimizer (AdamWith(2e-3, 0.8, 0.99, 1e-7)))
    Assert.Equal<Cnn.Dsl.Optimizer>(Cnn.Dsl.AdamW(1e-3f, 0.05f), Train.optimizer (AdamW(1e-3, 0.05)))
    Assert.Equal<Cnn.Dsl.Optimizer>(Cnn.Dsl.RmsProp(0.01f), Train.optimizer (RmsProp 0.01))
    Assert.Equal<Cnn.Dsl.Optimizer>(Cnn.Dsl.RmsProp(0.01f, 0.9f, 1e-7f, 0.5f, true), Train.optimizer (RmsPropWith(0.01, 0.9, 1e-7, 0.5, true)))

[<Fact>]
let ``data and tensor helpers keep shapes and labels`` () =
    let t = Tensor.ofArray [ 2; 3 ] [| 1f; 2f; 3f; 4f; 5f; 6f |]
    Assert.Equal<int list>([ 2; 3 ], Tensor.shape t)
    Assert.Equal<float32[]>([| 1f; 2f; 3f; 4f; 5f; 6f |], Tensor.toArray t)
    Assert.Equal<float32[]>(Array.zeroCreate 4, Tensor.zeros [ 2; 2 ] |> Tensor.toArray)
    let data = Tensor.zeros [ 5; 1 ] |> Data.create 2 [ 0; 1; 1; 0; 1 ]
    Assert.Equal(5, Data.count data)
    Assert.Equal<int list>([ 0; 1 ], data |> Data.take 2 |> _.Labels |> List.ofSeq)
    let a, b = data |> Data.split 3 9
    Assert.Equal<int list>([ 3; 2 ], [ Data.count a; Data.count b ])
    Assert.Throws<CnnException>(fun () -> Tensor.zeros [ 2; 1 ] |> Data.create 2 [ 0; 2 ] |> ignore) |> ignore
