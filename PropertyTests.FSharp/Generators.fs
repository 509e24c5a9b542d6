/// Random network descriptions written with the F# surface, each with the shape it must give, computed here from
/// the output-size formula independently of the library's shape inference; and helpers shared by the tests.
module Cnn.Tests.FSharp.Generators

open System
open Cnn.Core
open Cnn.Dsl
open Cnn.FSharp
open FsCheck
open FsCheck.FSharp

/// One sample's shape: channels, height, width.
type Chw =
    { C: int
      H: int
      W: int }

    member s.Dims = [ s.C; s.H; s.W ]

/// A description that fits samples of `Input`, and the shape the formula says it gives.
type Piece =
    { Layer: Layer
      Input: Chw
      Output: Chw }

/// `(size + 2 pad - dilation (kernel - 1) - 1) / stride + 1`; callers keep the numerator non-negative.
let outSize size kernel stride pad dilation =
    (size + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1

let private conv (s: Chw) : Gen<Layer * Chw> =
    gen {
        let! filters = Gen.choose (1, 4)
        let! stride = Gen.choose (1, 2)
        let! dilation = Gen.elements [ 1; 1; 2 ]
        let! padding = Gen.elements [ Valid; Pad 1; PadHW(1, 0); Same ]
        // The largest kernel whose dilated extent fits the padded input, so that every generated network builds.
        let largest extent pad = max 1 (min 3 ((extent + 2 * pad - 1) / dilation + 1))
        let! kh, kw, ph, pw =
            match padding with
            | Same -> Gen.map2 (fun kh kw -> kh, kw, dilation * (kh - 1) / 2, dilation * (kw - 1) / 2) (Gen.elements [ 1; 3 ]) (Gen.elements [ 1; 3 ])
            | _ ->
                let ph, pw =
                    match padding with
                    | Pad p -> p, p
                    | PadHW (h, w) -> h, w
                    | _ -> 0, 0
                Gen.map2 (fun kh kw -> kh, kw, ph, pw) (Gen.choose (1, largest s.H ph)) (Gen.choose (1, largest s.W pw))
        let! groups = if s.C % 2 = 0 && filters % 2 = 0 then Gen.elements [ 1; 2 ] else Gen.constant 1
        let! bias = Gen.elements [ true; false ]
        let settings = { Conv2d.defaults with Stride = stride; Padding = padding; Dilation = dilation; Groups = groups; Bias = bias }
        return
            conv2dWith settings filters (kh, kw),
            { C = filters
              H = outSize s.H kh stride ph dilation
              W = outSize s.W kw stride pw dilation }
    }

/// Layers that keep the shape (element-wise, normalisation, 'same' convolutions and pooling).
let private shapeKeeping (s: Chw) : Gen<Layer> =
    Gen.oneof
        [ Gen.elements
              [ relu; tanh'; sigmoid; leakyRelu 0.1; elu 1.0; batchNorm; dropout 0.3; lrn; identity; softmaxAlong 1
                batchNormWith { BatchNorm.defaults with Momentum = 0.3 }; lrnWith (Lrn.fromPaper 3 1e-4 0.75 2.0)
                avgPool2dWith { AvgPool2d.defaults with Stride = Some 1; Padding = Same } 3
                maxPool2dWith { MaxPool2d.defaults with Stride = Some 1; Padding = Same } 3 ]
          Gen.elements [ 1; 3 ]
          |> Gen.map (fun k -> conv2dWith { Conv2d.defaults with Padding = Same } s.C (k, k)) ]

/// A piece fitting `s`: a layer, or (while `depth` > 0) a combinator over smaller pieces.
let rec piece (depth: int) (s: Chw) : Gen<Layer * Chw> =
    let keep l = l, s
    let leaves =
        [ yield 4, conv s
          yield 3, shapeKeeping s |> Gen.map keep
          if s.H >= 2 && s.W >= 2 then
              yield 1, Gen.constant (maxPool2d 2, { s with H = s.H / 2; W = s.W / 2 })
              yield 1, Gen.constant (avgPool2d 2, { s with H = s.H / 2; W = s.W / 2 })
              yield 1, Gen.constant (maxPool2dWith { MaxPool2d.defaults with CeilMode = true } 2, { s with H = (s.H + 1) / 2; W = (s.W + 1) / 2 })
          if s.C >= 2 then
              yield 1, Gen.constant (channelMaxPool 2, { s with C = s.C / 2 })
              yield 1, Gen.constant (channelMaxPoolWith { ChannelMaxPool.defaults with Stride = Some 1 } 2, { s with C = s.C - 1 })
              yield 1, Gen.constant (channelAvgPool 2, { s with C = s.C / 2 })
          if s.H <= 5 && s.W <= 5 then
              yield 1,
                    Gen.choose (1, 3)
                    |> Gen.map (fun f ->
                        convTranspose2dWith { ConvTranspose2d.defaults with Stride = 2; Bias = false } f 2, { C = f; H = 2 * s.H; W = 2 * s.W }) ]
    let combinators =
        if depth <= 0 then
            []
        else
            let sub = piece (depth - 1)
            [ 1, shapeKeeping s |> Gen.map (fun l -> keep (residual (l >-> relu)))
              1,
              gen {
                  let! f = Gen.choose (1, 3)
                  let project = conv2dWith { Conv2d.defaults with Stride = 2; Bias = false } f (1, 1)
                  let body = conv2dWith { Conv2d.defaults with Stride = 2; Padding = Same } f (3, 3) >-> batchNorm >-> relu
                  return residualVia project body, { C = f; H = (s.H - 1) / 2 + 1; W = (s.W - 1) / 2 + 1 }
              }
              1,
              gen {
                  let! a = Gen.choose (1, 3)
                  let! b = Gen.choose (1, 3)
                  let branch n k = conv2dWith { Conv2d.defaults with Padding = Same } n (k, k)
                  let! join = Gen.elements [ concat; fanOut Concat ]
                  return join [ branch a 1; branch b 3 >-> relu; identity ], { s with C = a + b + s.C }
              }
              1,
              gen {
                  let! layer = shapeKeeping s
                  let! join = Gen.elements [ sum; fanOut Sum ]
                  return join [ layer; identity; conv2dWith { Conv2d.defaults with Padding = Same } s.C (1, 1) ], s
              }
              1, sub s |> Gen.map (fun (l, o) -> freeze l, o)
              1, sub s |> Gen.map (fun (l, o) -> initWith HeNormal l, o)
              1,
              gen {
                  let! a, sa = sub s
                  let! b, sb = sub sa
                  return serial [ a; b ], sb
              } ]
    Gen.frequency (leaves @ combinators)

/// An input shape of 1 to 3 channels and 1 to 9 pixels a side.
let chw: Gen<Chw> =
    Gen.map3 (fun c h w -> { C = c; H = h; W = w }) (Gen.choose (1, 3)) (Gen.choose (1, 9)) (Gen.choose (1, 9))

/// A chain of `count` pieces, each fitting the previous one's output.
let chain (count: int) (input: Chw) : Gen<Piece list> =
    let rec go n s acc =
        if n = 0 then
            Gen.constant (List.rev acc)
        else
            gen {
                let! l, o = piece 2 s
                return! go (n - 1) o ({ Layer = l; Input = s; Output = o } :: acc)
            }
    go count input []

/// A network of one to four pieces on a random input, sometimes with a dense head.
let network: Gen<Layer * Chw * int list> =
    gen {
        let! input = chw
        let! n = Gen.choose (1, 4)
        let! pieces = chain n input
        let body = pieces |> List.map _.Layer |> List.reduce (>->)
        let last = (List.last pieces).Output
        let! head = Gen.elements [ None; Some 3 ]
        match head with
        | None -> return body, input, last.Dims
        | Some units -> return body >-> flatten >-> dense units, input, [ units ]
    }

/// A deterministic tensor of uniform values in [-1, 1).
let randomTensor (seed: int) (shape: int list) : Tensor =
    let rng = Random(seed)
    Array.init (List.reduce (*) shape) (fun _ -> float32 (rng.NextDouble() * 2.0 - 1.0)) |> Tensor.ofArray shape

/// `model`'s parameters moved onto `target`, leaf by leaf in execution order (identities, which own nothing, left
/// out): two descriptions of one function whose paths differ then compute with the same weights. Fails unless the
/// leaves are equal records.
let transfer (model: Model) (target: Network) : Model =
    let leavesOf (network: Network) = network.Leaves |> Seq.filter (fun n -> not (n.Layer :? Identity)) |> List.ofSeq
    let source = leavesOf model.Network
    let leaves = leavesOf target
    if source.Length <> leaves.Length then
        failwith $"transfer: %d{source.Length} leaves against %d{leaves.Length}"
    let entries =
        List.zip source leaves
        |> List.collect (fun (s, t) ->
            if s.Layer <> t.Layer then
                failwith $"transfer: leaf '%s{s.Path}' is %A{s.Layer}, '%s{t.Path}' is %A{t.Layer}"
            List.zip (List.ofSeq (s.ParameterSpecs())) (List.ofSeq (t.ParameterSpecs()))
            |> List.map (fun (struct (fromPath, _), struct (toPath, _)) -> Collections.Generic.KeyValuePair(toPath, model.Parameters[fromPath])))
    { Network = target
      Parameters = Parameters.Of entries
      State = Initializer.InitState target }

/// Bitwise equality of two tensors' shapes and elements.
let bitwiseEqual (a: Tensor) (b: Tensor) =
    let bits (t: Tensor) = Tensor.toArray t |> Array.map BitConverter.SingleToInt32Bits
    Tensor.shape a = Tensor.shape b && bits a = bits b

/// Bitwise equality of two parameter sets: the same paths, each tensor bitwise equal.
let sameParameters (a: Parameters) (b: Parameters) =
    List.ofSeq a.Paths = List.ofSeq b.Paths && a.Paths |> Seq.forall (fun p -> bitwiseEqual a[p] b[p])
