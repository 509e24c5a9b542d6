/// The F# surface of the DSL: curried, lower-case layer functions and serial composition.
/// Each function builds the same immutable C# layer record the C# API builds, so F# and C#
/// descriptions of one network are equal values.
module Cnn.FSharp.Layers

open Cnn.Core
open Cnn.Dsl

/// 2-d convolution with `filters` output channels and a (height, width) kernel; stride 1, no padding, bias on.
let conv2d (filters: int) (kernelH: int, kernelW: int) : Layer = Conv2d(filters, kernelH, kernelW) :> Layer

/// 2-d convolution with explicit stride and symmetric padding.
let conv2dWith (filters: int) (kernelH: int, kernelW: int) (stride: int) (padding: int) : Layer =
    Conv2d(filters, kernelH, kernelW, stride, stride, padding, padding) :> Layer

/// Square max pooling with window and stride `size`.
let maxPool2d (size: int) : Layer = MaxPool2d(size, size, size, size) :> Layer

/// The rectifier max(x, 0).
let relu : Layer = Relu() :> Layer

/// Flattens each sample to one axis.
let flatten : Layer = Flatten() :> Layer

/// An affine layer with `units` outputs and a bias.
let dense (units: int) : Layer = Dense(units) :> Layer

/// Names a layer, so that its parameters read `name/weight`.
let named (name: string) (layer: Layer) : Layer = layer.Named name

/// Serial composition of a list of layers.
let serial (layers: Layer list) : Layer = Serial(layers) :> Layer

/// Serial composition of two layers: `a >-> b` runs `a` then `b`. Nested uses flatten into one Serial,
/// so `(a >-> b) >-> c` and `a >-> (b >-> c)` are the same value.
let (>->) (a: Layer) (b: Layer) : Layer =
    let parts (l: Layer) =
        match l with
        | :? Serial as s when isNull s.Name -> List.ofSeq s.Layers
        | _ -> [ l ]
    Serial(parts a @ parts b) :> Layer

/// Resolves a description against a per-sample input shape: `Ok network`, or `Error message` naming the
/// layer path, the shapes and the output-size formula.
let build (inputShape: int list) (layer: Layer) : Result<Network, string> =
    try Ok(Network.Create(layer, Shape(Array.ofList inputShape)))
    with :? CnnException as e -> Error e.Message
