/// <summary>
/// The layers and combinators as curried, lower-case F# functions. Each builds the same immutable C# layer record
/// the C# API builds, so an F# description and its C# twin are equal values and run identically.
/// </summary>
/// <remarks>
/// <para>A layer with optional settings has two functions: <c>conv2d 32 (3, 3)</c> uses the defaults, and
/// <c>conv2dWith { Conv2d.defaults with Stride = 2; Padding = Same } 32 (3, 3)</c> takes a settings record first and
/// otherwise the same arguments. Rates and constants are <c>float</c> (<c>dropout 0.5</c>).</para>
/// <para><c>a >-> b</c> runs <c>a</c> then <c>b</c>. Unnamed serial compositions melt into one, so <c>>-></c> is
/// associative as a value: <c>(a >-> b) >-> c = a >-> (b >-> c) = serial [ a; b; c ]</c>. To keep a group (and its
/// path segment), name it: <c>serial [ ... ] |> named "block1"</c>.</para>
/// <para><c>|></c> and <c>>-></c> have the same precedence and associate to the left, so
/// <c>conv >-> relu |> named "block"</c> names the whole chain; to name one layer inside a chain, parenthesise it:
/// <c>conv >-> (batchNorm |> named "bn") >-> relu</c>.</para>
/// <para>The hyperbolic tangent layer is <c>tanh'</c>: a plain <c>tanh</c> would hide F#'s own function. F# reserves
/// <c>parallel</c>, so branches are <c>concat</c>, <c>sum</c> or <c>fanOut Concat</c> / <c>fanOut Sum</c>.</para>
/// </remarks>
[<AutoOpen>]
module Cnn.FSharp.Layers

open Cnn.Core
open Cnn.Dsl

/// 2-d convolution with `filters` output channels and a (height, width) kernel; stride 1, no padding, a bias.
let conv2d (filters: int) (kernelH: int, kernelW: int) : Layer = Conv2d(filters, kernelH, kernelW)

/// 2-d convolution with settings: `conv2dWith { Conv2d.defaults with Stride = 2; Padding = Same } 64 (3, 3)`.
let conv2dWith (settings: Conv2dSettings) (filters: int) (kernelH: int, kernelW: int) : Layer =
    let ph, pw = Resolve.padding2d "conv2d" settings.Padding (kernelH, kernelW) settings.Dilation
    Conv2d(filters, kernelH, kernelW, settings.Stride, settings.Stride, ph, pw, settings.Bias, settings.Dilation, settings.Dilation, settings.Groups)

/// 1-d convolution over [C, L] samples with `filters` output channels and a kernel of `kernel` taps.
let conv1d (filters: int) (kernel: int) : Layer = Conv1d(filters, kernel)

/// 1-d convolution with settings (`Conv1d.defaults`).
let conv1dWith (settings: Conv1dSettings) (filters: int) (kernel: int) : Layer =
    let pad = Resolve.paddingNd "conv1d" settings.Padding kernel settings.Dilation
    Conv1d(filters, kernel, settings.Stride, pad, settings.Bias, settings.Dilation, settings.Groups)

/// A convolution or transposed convolution of any rank from per-axis settings: the one rule behind the N-d functions.
let private convolution (name: string) (transposed: bool) (settings: ConvNdSettings) (filters: int) (kernel: int list) : Layer =
    let rank = List.length kernel
    if rank < 1 || rank > 3 then
        invalidArg "kernel" $"{name}: expected a kernel of 1, 2 or 3 axes; found {rank}."
    let axes (what: string) (values: int list) (fallback: int) =
        match values with
        | [] -> Array.create rank fallback
        | [ v ] -> Array.create rank v
        | vs when List.length vs = rank -> Array.ofList vs
        | vs -> invalidArg what $"{name}: expected 1 or {rank} values of {what} for a {rank}-d kernel; found {List.length vs}."
    let outputPad =
        if transposed then axes "OutputPadding" settings.OutputPadding 0
        elif settings.OutputPadding.IsEmpty then null
        else invalidArg "OutputPadding" $"{name}: output padding applies to transposed convolutions only."
    let padEnd =
        if settings.PaddingEnd.IsEmpty then null
        elif transposed then axes "PaddingEnd" settings.PaddingEnd 0
        else invalidArg "PaddingEnd" $"{name}: an end padding of its own applies to transposed convolutions only."
    ConvolutionLayer.From(
        ConvSpec.Of(filters, Array.ofList kernel, axes "Stride" settings.Stride 1, axes "Padding" settings.Padding 0,
                    axes "Dilation" settings.Dilation 1, settings.Groups, settings.Bias, outputPad, padEnd))

/// Convolution over 1, 2 or 3 spatial axes (the kernel's length): `convNd 16 [3; 5]` is a 2-d convolution with a 3x5 kernel.
let convNd (filters: int) (kernel: int list) : Layer = convolution "convNd" false ConvNd.defaults filters kernel

/// Convolution over 1, 2 or 3 spatial axes with per-axis settings: `convNdWith { ConvNd.defaults with Stride = [1; 2; 2]; Dilation = [2] } 8 [3; 3; 3]`.
let convNdWith (settings: ConvNdSettings) (filters: int) (kernel: int list) : Layer = convolution "convNdWith" false settings filters kernel

/// Transposed convolution over 1, 2 or 3 spatial axes (the kernel's length): `convTransposeNd 8 [4; 4; 4]`.
let convTransposeNd (filters: int) (kernel: int list) : Layer = convolution "convTransposeNd" true ConvNd.defaults filters kernel

/// Transposed convolution with per-axis settings: `convTransposeNdWith { ConvNd.defaults with Stride = [2]; Padding = [1]; OutputPadding = [1] } 8 [3; 3]`.
let convTransposeNdWith (settings: ConvNdSettings) (filters: int) (kernel: int list) : Layer =
    convolution "convTransposeNdWith" true settings filters kernel

/// 3-d convolution over [C, D, H, W] samples with a cubic kernel.
let conv3d (filters: int) (kernel: int) : Layer = convNd filters [ kernel; kernel; kernel ]

/// 3-d convolution with settings (`Conv3d.defaults`).
let conv3dWith (settings: Conv3dSettings) (filters: int) (kernel: int) : Layer =
    let pad = Resolve.paddingNd "conv3d" settings.Padding kernel 1
    convolution "conv3dWith" false { ConvNd.defaults with Stride = [ settings.Stride ]; Padding = [ pad ]; Bias = settings.Bias } filters [ kernel; kernel; kernel ]

/// Transposed 2-d convolution ("deconvolution") with a square kernel; stride 1, no padding, a bias.
let convTranspose2d (filters: int) (kernel: int) : Layer = convTransposeNd filters [ kernel; kernel ]

/// Transposed 2-d convolution with settings: `convTranspose2dWith { ConvTranspose2d.defaults with Stride = 2; Padding = 1 } 64 4`.
let convTranspose2dWith (settings: ConvTranspose2dSettings) (filters: int) (kernel: int) : Layer =
    let nd = { ConvNd.defaults with Stride = [ settings.Stride ]; Padding = [ settings.Padding ]; OutputPadding = [ settings.OutputPadding ]; Bias = settings.Bias }
    convolution "convTranspose2dWith" true nd filters [ kernel; kernel ]

/// Square 2-d max pooling with window and stride `size`.
let maxPool2d (size: int) : Layer = MaxPool2d(size, size, size, size)

/// Square 2-d max pooling with settings: `maxPool2dWith { MaxPool2d.defaults with Stride = Some 2; Padding = Pad 1 } 3`;
/// dilated: `maxPool2dWith { MaxPool2d.defaults with Stride = Some 1; Dilation = 2 } 2`.
let maxPool2dWith (settings: MaxPool2dSettings) (size: int) : Layer =
    let stride = defaultArg settings.Stride size
    let ph, pw = Resolve.padding2d "maxPool2d" settings.Padding (size, size) 1
    MaxPool2d(size, size, stride, stride, ph, pw, settings.CeilMode, settings.Dilation, settings.Dilation)

/// Square 2-d average pooling with window and stride `size`.
let avgPool2d (size: int) : Layer = AvgPool2d(size, size, size, size)

/// Square 2-d average pooling with settings (`AvgPool2d.defaults`); ONNX's uneven padding with `PadBottomRight`:
/// `avgPool2dWith { AvgPool2d.defaults with Stride = Some 1; CountIncludePad = false; PadBottomRight = Some (1, 1) } 2`.
let avgPool2dWith (settings: AvgPool2dSettings) (size: int) : Layer =
    let stride = defaultArg settings.Stride size
    let ph, pw = Resolve.padding2d "avgPool2d" settings.Padding (size, size) 1
    let bottom, right =
        match settings.PadBottomRight with
        | Some (b, r) -> System.Nullable b, System.Nullable r
        | None -> System.Nullable(), System.Nullable()
    AvgPool2d(size, size, stride, stride, ph, pw, settings.CeilMode, settings.CountIncludePad, bottom, right)

let private poolNd (op: PoolOp) (name: string) (settings: PoolNdSettings) (size: int) : Layer =
    PoolNd(op, size, defaultArg settings.Stride size, Resolve.paddingNd name settings.Padding size 1, settings.CountIncludePad)

/// Max pooling over 1-d [C, L] or 3-d [C, D, H, W] samples (the rank comes from the input), window and stride `size`.
let maxPoolNd (size: int) : Layer = poolNd PoolOp.Max "maxPoolNd" PoolNd.defaults size

/// 1-d or 3-d max pooling with settings (`PoolNd.defaults`).
let maxPoolNdWith (settings: PoolNdSettings) (size: int) : Layer = poolNd PoolOp.Max "maxPoolNd" settings size

/// Average pooling over 1-d or 3-d samples, window and stride `size`.
let avgPoolNd (size: int) : Layer = poolNd PoolOp.Average "avgPoolNd" PoolNd.defaults size

/// 1-d or 3-d average pooling with settings (`PoolNd.defaults`).
let avgPoolNdWith (settings: PoolNdSettings) (size: int) : Layer = poolNd PoolOp.Average "avgPoolNd" settings size

/// The mean of each channel over all spatial axes; output [C, 1, ..., 1] (follow with `flatten`).
let globalAvgPool : Layer = GlobalPool(PoolOp.Average)

/// The maximum of each channel over all spatial axes; output [C, 1, ..., 1].
let globalMaxPool : Layer = GlobalPool(PoolOp.Max)

/// Max pooling across windows of `size` consecutive channels, stepping by `size` (maxout).
let channelMaxPool (size: int) : Layer = ChannelMaxPool(size, size)

/// Channel max pooling with settings: `channelMaxPoolWith { ChannelMaxPool.defaults with Stride = Some 1 } 3`.
let channelMaxPoolWith (settings: ChannelMaxPoolSettings) (size: int) : Layer =
    ChannelMaxPool(size, defaultArg settings.Stride size)

/// Average pooling across windows of `size` consecutive channels, stepping by `size`.
let channelAvgPool (size: int) : Layer = ChannelAvgPool(size, size)

/// Channel average pooling with settings (the same as channel max pooling's):
/// `channelAvgPoolWith { ChannelAvgPool.defaults with Stride = Some 1 } 3`.
let channelAvgPoolWith (settings: ChannelMaxPoolSettings) (size: int) : Layer =
    ChannelAvgPool(size, defaultArg settings.Stride size)

/// The rectifier max(x, 0).
let relu : Layer = Relu()

/// Leaky rectifier with the given slope for negative inputs (PyTorch uses 0.01, Keras 0.3).
let leakyRelu (slope: float) : Layer = LeakyRelu(float32 slope)

/// Exponential linear unit with the given alpha (usually 1.0).
let elu (alpha: float) : Layer = Elu(float32 alpha)

/// The logistic function 1 / (1 + exp(-x)).
let sigmoid : Layer = Sigmoid()

/// The hyperbolic tangent (primed, so that F#'s own `tanh` stays visible).
let tanh' : Layer = Tanh()

/// The input clipped to [min, max] (PyTorch's Hardtanh; ONNX's Clip): `hardTanh -1.0 1.0`.
let hardTanh (min: float) (max: float) : Layer = HardTanh(float32 min, float32 max)

/// ReLU6, min(max(x, 0), 6): MobileNet's activation (hard tanh with bounds 0 and 6).
let relu6 : Layer = HardTanh.Relu6

/// Hard sigmoid relu6(x + 3) / 6 (PyTorch's Hardsigmoid).
let hardSigmoid : Layer = HardSigmoid()

/// Hard sigmoid clamp(alpha * x + beta, 0, 1) with any slope and offset (ONNX's HardSigmoid; Keras's is `hardSigmoidWith 0.2 0.5`).
let hardSigmoidWith (alpha: float) (beta: float) : Layer = HardSigmoid(float32 alpha, float32 beta)

/// Hard swish x * relu6(x + 3) / 6 (PyTorch's Hardswish): MobileNet v3's activation.
let hardSwish : Layer = HardSwish()

/// SiLU (swish) x * sigmoid(x): EfficientNet's activation.
let silu : Layer = Silu()

/// GELU x * Φ(x), the exact form (PyTorch's GELU with approximate "none").
let gelu : Layer = Gelu()

/// Softmax along the last axis. For classification, train on logits instead (the default loss applies softmax).
let softmax : Layer = Softmax()

/// Softmax along an axis of the batched tensor (negative counts from the end; 0, the batch, is not allowed).
let softmaxAlong (axis: int) : Layer = Softmax(axis)

/// Log-softmax along the last axis; pair it with the `NegativeLogLikelihood` loss.
let logSoftmax : Layer = LogSoftmax()

/// Log-softmax along an axis of the batched tensor.
let logSoftmaxAlong (axis: int) : Layer = LogSoftmax(axis)

/// Batch normalisation over channels with PyTorch's momentum 0.1 and epsilon 1e-5.
let batchNorm : Layer = BatchNorm()

/// Batch normalisation with settings: `batchNormWith { BatchNorm.defaults with Momentum = 0.01; Epsilon = 1e-3 }`.
let batchNormWith (settings: BatchNormSettings) : Layer =
    BatchNorm(float32 settings.Momentum, float32 settings.Epsilon)

/// Local response normalisation across channels with PyTorch's constants.
let lrn : Layer = Lrn()

/// Local response normalisation with settings: `lrnWith (Lrn.fromPaper 5 1e-4 0.75 2.0)` for AlexNet.
let lrnWith (settings: LrnSettings) : Layer =
    Lrn(settings.Size, float32 settings.Alpha, float32 settings.Beta, float32 settings.K)

/// Inverted dropout with drop probability `p` in [0, 1); the identity in inference.
let dropout (p: float) : Layer = Dropout(float32 p)

/// Flattens each sample to one axis.
let flatten : Layer = Flatten()

/// Gives each sample a new shape with the same number of elements: `reshape [ 128; 7; 7 ]`.
let reshape (dims: int list) : Layer = Reshape(Shape(dims))

/// The input combined with a tensor of its own, `x op value`, broadcast over each sample (ONNX's Add, Sub, Mul or Div by a
/// constant): `constantOperand BinaryOp.Multiply [ 1; 1; 28 ]` scales each column of [C, H, 28] samples. `value` has the
/// sample's rank, each axis the sample's size or 1; it starts at the operation's identity and trains like a bias.
let constantOperand (op: Cnn.Core.Kernels.BinaryOp) (dims: int list) : Layer = ConstantOperand(op, Shape(dims))

/// Zero padding of [C, H, W] samples: `pad2d (top, bottom, left, right)`.
let pad2d (top: int, bottom: int, left: int, right: int) : Layer = Pad2d(top, bottom, left, right)

/// Padding with a mode and, for `PadMode.Constant`, a value: `pad2dWith PadMode.Reflect 0.0 (1, 1, 1, 1)`.
let pad2dWith (mode: PadMode) (value: float) (top: int, bottom: int, left: int, right: int) : Layer =
    Pad2d(top, bottom, left, right, mode, float32 value)

/// Channels [start, start + count) of each sample (ShuffleNet v2's channel split: `concat [ channelSlice 0 c >-> ...; channelSlice c c ]`).
let channelSlice (start: int) (count: int) : Layer = ChannelSlice(start, count)

/// ShuffleNet's channel shuffle with `groups` groups (the channels must be a multiple of it).
let channelShuffle (groups: int) : Layer = ChannelShuffle(groups)

/// Reorders the axes of each sample (the batch axis stays first): output axis i is sample axis `axes.[i]`, so
/// `permute [1; 0]` turns [C, L] into [L, C], as PyTorch's `x.permute(0, 2, 1)`.
let permute (axes: int list) : Layer = Permute(Array.ofList axes)

/// Each of a sample's matrices [..., R, K] times a matrix of its own (the parameter weight [..., K, units]): [..., R, units],
/// as PyTorch's `torch.matmul(x, weight)`; a flat sample is `dense`'s.
let matMul (units: int) : Layer = MatMul(units)

/// The identity (the neutral element of `>->`, as a function).
let identity : Layer = Identity()

/// An affine layer with `units` outputs and a bias, on flat samples (put `flatten` before it).
let dense (units: int) : Layer = Dense(units)

/// An affine layer with settings: `denseWith { Dense.defaults with Bias = false } 10`.
let denseWith (settings: DenseSettings) (units: int) : Layer = Dense(units, settings.Bias)

/// Layers applied one after the other, as one group (name it with `named` to give its parameters a path segment).
let serial (layers: Layer list) : Layer = Serial(layers)

/// Serial composition: `a >-> b` runs `a`, then `b`. Unnamed serial compositions on either side melt into one, so
/// `(a >-> b) >-> c` and `a >-> (b >-> c)` are the same value, `serial [ a; b; c ]`.
let (>->) (a: Layer) (b: Layer) : Layer =
    let parts (l: Layer) =
        match l with
        | :? Serial as s when Option.ofObj s.Name |> Option.isNone && Option.ofObj s.WeightInit |> Option.isNone -> List.ofSeq s.Layers
        | _ -> [ l ]
    Serial(parts a @ parts b)

/// Branches fed by the same input, their outputs concatenated along channels (an inception module).
let concat (branches: Layer list) : Layer = FanOut(Cnn.Dsl.Join.Concat, branches)

/// Branches fed by the same input, their outputs summed element-wise (every branch must give the same shape).
let sum (branches: Layer list) : Layer = FanOut(Cnn.Dsl.Join.Sum, branches)

/// Two branches fed by the same input, their outputs multiplied element-wise; they broadcast against each other (each axis
/// equal, or 1 in one), so a squeeze-and-excitation gate is `product identity (globalAvgPool >-> ... >-> sigmoid)`.
let product (first: Layer) (second: Layer) : Layer = FanOut.Product(first, second)

/// How `fanOut` joins its branches.
type Join =
    /// Element-wise sum.
    | Sum
    /// Concatenation along channels.
    | Concat
    /// Element-wise product of two branches, broadcasting.
    | Product

/// Branches fed by the same input, joined as said (stax's FanOut then FanInSum or FanInConcat):
/// `fanOut Concat [ a; b ]` is `concat [ a; b ]`. (F# reserves the word `parallel`.)
let fanOut (join: Join) (branches: Layer list) : Layer =
    match join with
    | Sum -> sum branches
    | Concat -> concat branches
    | Product -> FanOut(Cnn.Dsl.Join.Product, branches)

/// A residual block with an identity shortcut: `block(x) + x`.
let residual (block: Layer) : Layer = Residual(block)

/// A residual block with a projection shortcut, for blocks that change the shape: `residualVia shortcut block` is
/// `block(x) + shortcut(x)`.
let residualVia (shortcut: Layer) (block: Layer) : Layer = Residual(block, shortcut)

/// Freezes a layer: no gradient, no update, batch normalisation with fixed running statistics. Paths are unchanged.
let freeze (layer: Layer) : Layer = Freeze(layer)

/// An auxiliary classifier tapped off the trunk (GoogLeNet's side heads): the identity for inference; in training the
/// head also runs and its loss, times `weight`, joins the main loss with the same labels. Its parameters read
/// `aux1/head/...`: `auxiliaryHead 0.3 (avgPool2d 5 >-> flatten >-> dense 10) |> named "aux1"`.
let auxiliaryHead (weight: float) (head: Layer) : Layer = AuxiliaryHead(head, float32 weight)

/// Names a layer, so that its parameters read `name/weight`: `conv2d 6 (5, 5) |> named "c1"`.
let named (name: string) (layer: Layer) : Layer = layer.Named name

/// Sets how a layer's weights (and those of the layers under it) are initialised: `net |> initWith HeNormal`.
let initWith (scheme: WeightInit) (layer: Layer) : Layer = layer.InitWith(Resolve.init scheme)
