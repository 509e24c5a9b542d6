/// Each F# layer function builds the C# record a C# user would write: the two surfaces describe equal values.
module Cnn.Tests.FSharp.LayerFunctionTests

open System
open Cnn.Core
open Cnn.Dsl
open Cnn.FSharp
open Xunit

let private conv = Conv2d(4, 3, 3).Named "c"
let private pool = MaxPool2d(2, 2, 2, 2)

/// Every layer function and combinator of the F# surface, with its C# twin.
let private twins: (string * Layer * Layer) list =
    [ "conv2d", conv2d 32 (3, 5), Conv2d(32, 3, 5)
      "conv2dWith",
      conv2dWith { Conv2d.defaults with Stride = 2; Padding = Same; Dilation = 2; Groups = 4; Bias = false } 32 (3, 5),
      Conv2d(32, 3, 5, 2, 2, 2, 4, false, 2, 2, 4)
      "conv2dWith PadHW", conv2dWith { Conv2d.defaults with Padding = PadHW(3, 0) } 8 (7, 1), Conv2d(8, 7, 1, PadH = 3)
      "conv1d", conv1d 16 5, Conv1d(16, 5)
      "conv1dWith", conv1dWith { Conv1d.defaults with Stride = 2; Padding = Same; Dilation = 3; Groups = 2; Bias = false } 16 5,
      Conv1d(16, 5, 2, 6, false, 3, 2)
      "conv3d", conv3d 8 3, Conv3d(8, 3)
      "conv3dWith", conv3dWith { Conv3d.defaults with Stride = 2; Padding = Pad 1; Bias = false } 8 3, Conv3d(8, 3, 2, 1, false)
      "convTranspose2d", convTranspose2d 64 4, ConvTranspose2d(64, 4)
      "convTranspose2dWith",
      convTranspose2dWith { ConvTranspose2d.defaults with Stride = 2; Padding = 1; OutputPadding = 1; Bias = false } 64 4,
      ConvTranspose2d(64, 4, 2, 1, 1, false)
      "maxPool2d", maxPool2d 2, MaxPool2d(2, 2, 2, 2)
      "maxPool2dWith", maxPool2dWith { MaxPool2d.defaults with Stride = Some 2; Padding = Pad 1; CeilMode = true } 3,
      MaxPool2d(3, 3, 2, 2, 1, 1, true)
      "avgPool2d", avgPool2d 2, AvgPool2d(2, 2, 2, 2)
      "avgPool2dWith", avgPool2dWith { AvgPool2d.defaults with Stride = Some 1; Padding = Same; CountIncludePad = false } 3,
      AvgPool2d(3, 3, 1, 1, 1, 1, CountIncludePad = false)
      "maxPoolNd", maxPoolNd 2, PoolNd(PoolOp.Max, 2, 2)
      "maxPoolNdWith", maxPoolNdWith { PoolNd.defaults with Stride = Some 1; Padding = Same } 3, PoolNd(PoolOp.Max, 3, 1, 1)
      "avgPoolNd", avgPoolNd 2, PoolNd(PoolOp.Average, 2, 2)
      "avgPoolNdWith", avgPoolNdWith { PoolNd.defaults with CountIncludePad = false } 2, PoolNd(PoolOp.Average, 2, 2, CountIncludePad = false)
      "globalAvgPool", globalAvgPool, GlobalPool(PoolOp.Average)
      "globalMaxPool", globalMaxPool, GlobalPool(PoolOp.Max)
      "channelMaxPool", channelMaxPool 2, ChannelMaxPool(2, 2)
      "channelMaxPoolWith", channelMaxPoolWith { ChannelMaxPool.defaults with Stride = Some 1 } 3, ChannelMaxPool(3, 1)
      "channelAvgPool", channelAvgPool 2, ChannelAvgPool(2, 2)
      "channelAvgPoolWith", channelAvgPoolWith { ChannelAvgPool.defaults with Stride = Some 1 } 3, ChannelAvgPool(3, 1)
      "relu", relu, Relu()
      "leakyRelu", leakyRelu 0.2, LeakyRelu(0.2f)
      "elu", elu 1.0, Elu()
      "sigmoid", sigmoid, Sigmoid()
      "tanh'", tanh', Tanh()
      "softmax", softmax, Softmax()
      "softmaxAlong", softmaxAlong 1, Softmax(1)
      "logSoftmax", logSoftmax, LogSoftmax()
      "logSoftmaxAlong", logSoftmaxAlong 2, LogSoftmax(2)
      "batchNorm", batchNorm, BatchNorm()
      "batchNormWith", batchNormWith { BatchNorm.defaults with Momentum = 0.01; Epsilon = 1e-3 }, BatchNorm(0.01f, 1e-3f)
      "lrn", lrn, Lrn()
      "lrnWith", lrnWith { Lrn.defaults with Size = 3; K = 2.0 }, Lrn(3, K = 2f)
      "Lrn.fromPaper", lrnWith (Lrn.fromPaper 5 1e-4 0.75 2.0), Lrn.FromPaper(5, 1e-4f, 0.75f, 2f)
      "dropout", dropout 0.5, Dropout(0.5f)
      "flatten", flatten, Flatten()
      "reshape", reshape [ 16; 5; 5 ], Reshape(16, 5, 5)
      "identity", identity, Identity()
      "dense", dense 64, Dense(64)
      "denseWith", denseWith { Dense.defaults with Bias = false } 10, Dense(10, false)
      "serial", serial [ conv; relu ], Serial(conv, Relu())
      ">->", conv >-> relu >-> pool, Serial(conv, Relu(), pool)
      "concat", concat [ conv; pool ], FanOut.Concat(conv, pool)
      "sum", sum [ conv; identity ], FanOut.Sum(conv, Identity())
      "fanOut Concat", fanOut Concat [ conv; pool ], FanOut.Concat(conv, pool)
      "fanOut Sum", fanOut Sum [ conv; pool ], FanOut.Sum(conv, pool)
      "residual", residual conv, Residual(conv)
      "residualVia", residualVia (conv2d 4 (1, 1)) conv, Residual(conv, Conv2d(4, 1, 1))
      "freeze", freeze conv, Freeze(conv)
      "named", conv2d 4 (3, 3) |> named "c", conv
      "initWith HeNormal", initWith HeNormal conv, conv.InitWith Init.HeNormal
      "initWith GlorotUniform", initWith GlorotUniform conv, conv.InitWith Init.GlorotUniform
      "initWith PyTorchDefault", initWith PyTorchDefault conv, conv.InitWith Init.PyTorch
      "initWith Zeros", initWith Zeros conv, conv.InitWith Init.Zeros
      "initWith Normal", initWith (Normal 0.02) conv, conv.InitWith(Init.Normal 0.02f) ]

[<Fact>]
let ``every layer function builds the record a C# user writes`` () =
    let wrong = twins |> List.filter (fun (_, fsharp, csharp) -> fsharp <> csharp) |> List.map (fun (name, f, c) -> $"%s{name}: %O{f} <> %O{c}")
    Assert.True(List.isEmpty wrong, String.Join("\n", wrong))

[<Fact>]
let ``the defaults are the plain functions`` () =
    Assert.Equal<Layer>(conv2d 8 (3, 3), conv2dWith Conv2d.defaults 8 (3, 3))
    Assert.Equal<Layer>(conv1d 8 3, conv1dWith Conv1d.defaults 8 3)
    Assert.Equal<Layer>(conv3d 8 3, conv3dWith Conv3d.defaults 8 3)
    Assert.Equal<Layer>(convTranspose2d 8 3, convTranspose2dWith ConvTranspose2d.defaults 8 3)
    Assert.Equal<Layer>(maxPool2d 3, maxPool2dWith MaxPool2d.defaults 3)
    Assert.Equal<Layer>(avgPool2d 3, avgPool2dWith AvgPool2d.defaults 3)
    Assert.Equal<Layer>(maxPoolNd 3, maxPoolNdWith PoolNd.defaults 3)
    Assert.Equal<Layer>(avgPoolNd 3, avgPoolNdWith PoolNd.defaults 3)
    Assert.Equal<Layer>(channelMaxPool 3, channelMaxPoolWith ChannelMaxPool.defaults 3)
    Assert.Equal<Layer>(channelAvgPool 3, channelAvgPoolWith ChannelAvgPool.defaults 3)
    Assert.Equal<Layer>(batchNorm, batchNormWith BatchNorm.defaults)
    Assert.Equal<Layer>(lrn, lrnWith Lrn.defaults)
    Assert.Equal<Layer>(dense 8, denseWith Dense.defaults 8)

[<Fact>]
let ``same padding needs an odd kernel and PadHW a 2-d layer`` () =
    let even = Assert.Throws<ArgumentException>(fun () -> conv2dWith { Conv2d.defaults with Padding = Same } 4 (2, 3) |> ignore)
    Assert.Contains("odd kernel", even.Message)
    Assert.Equal<Layer>(Conv2d(4, 2, 3, PadH = 1, PadW = 2, DilationH = 2, DilationW = 2),
                        conv2dWith { Conv2d.defaults with Padding = Same; Dilation = 2 } 4 (2, 3))
    let flat = Assert.Throws<ArgumentException>(fun () -> conv1dWith { Conv1d.defaults with Padding = PadHW(1, 1) } 4 3 |> ignore)
    Assert.Contains("PadHW", flat.Message)

[<Fact>]
let ``serial composition melts unnamed serials only`` () =
    let a, b, c = conv2d 1 (1, 1), relu, dense 2
    Assert.Equal<Layer>(serial [ a; b; c ], serial [ a; b ] >-> c)
    Assert.Equal<Layer>(serial [ a; b; c ], a >-> serial [ b; c ])
    let block = serial [ a; b ] |> named "block"
    Assert.Equal<Layer>(serial [ block; c ], block >-> c)
    let initialised = serial [ a; b ] |> initWith HeNormal
    Assert.Equal<Layer>(serial [ initialised; c ], initialised >-> c)
