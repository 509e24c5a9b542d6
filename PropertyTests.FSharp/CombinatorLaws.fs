/// The laws of the combinators, stated through the F# surface on random networks.
module Cnn.Tests.FSharp.CombinatorLaws

open Cnn.Core
open Cnn.Dsl
open Cnn.FSharp
open Cnn.Tests.FSharp.Generators
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit

let private build input layer =
    match Model.build input layer with
    | Ok network -> network
    | Error message -> failwith $"a generated network did not build: %s{message}"

/// Three pieces, each fitting the previous one's output, on a random input, and a seed.
let private threePieces =
    gen {
        let! input = chw
        let! pieces = chain 3 input
        let! seed = Gen.choose (0, 9999)
        return pieces, seed
    }
    |> Arb.fromGen

/// Outputs of the model and of the same function described otherwise, on one random batch.
let private sameFunction (model: Model) (other: Network) (seed: int) =
    let x = randomTensor seed (2 :: Model.inputShape model.Network)
    let expected = model |> Model.predict x
    let actual = transfer model other |> Model.predict x
    Assert.True(bitwiseEqual expected actual, $"outputs differ for %O{model.Network.Root} and %O{other.Root}")

[<Property(MaxTest = 300)>]
let ``serial composition is associative as a value`` () =
    Prop.forAll threePieces (fun (pieces, _) ->
        let a, b, c =
            match pieces with
            | [ a; b; c ] -> a.Layer, b.Layer, c.Layer
            | _ -> failwith "three pieces"
        Assert.Equal<Layer>((a >-> b) >-> c, a >-> (b >-> c)))

[<Property(MaxTest = 200)>]
let ``grouping serial compositions differently computes the same function`` () =
    Prop.forAll threePieces (fun (pieces, seed) ->
        let input = pieces.Head.Input.Dims
        let a, b, c =
            match pieces |> List.map _.Layer with
            | [ a; b; c ] -> a, b, c
            | _ -> failwith "three pieces"
        let left = build input (serial [ serial [ a; b ]; c ]) |> Model.init seed
        sameFunction left (build input (serial [ a; serial [ b; c ] ])) seed
        sameFunction left (build input (a >-> b >-> c)) seed)

[<Property(MaxTest = 200)>]
let ``identity is neutral on both sides of serial composition`` () =
    Prop.forAll threePieces (fun (pieces, seed) ->
        let input = pieces.Head.Input.Dims
        let a = pieces |> List.map _.Layer |> List.reduce (>->)
        let alone = build input a |> Model.init seed
        sameFunction alone (build input (identity >-> a)) seed
        sameFunction alone (build input (a >-> identity)) seed)

[<Property(MaxTest = 200)>]
let ``parameter counts add up over serial composition and branches`` () =
    Prop.forAll threePieces (fun (pieces, seed) ->
        let count (p: Piece) = build p.Input.Dims p.Layer |> Model.parameterCount
        let input = pieces.Head.Input.Dims
        let whole = build input (pieces |> List.map _.Layer |> List.reduce (>->))
        Assert.Equal(pieces |> List.sumBy count, Model.parameterCount whole)
        let model = Model.init seed whole
        // Keras-style counts include the batch-norm running statistics (state) as non-trainable.
        Assert.Equal(Model.parameterCount whole, model.Parameters.ScalarCount + model.State.ScalarCount)
        let first = pieces.Head
        let branches = [ first.Layer; first.Layer |> named "twin" ]
        Assert.Equal(2L * count first, build input (sum branches) |> Model.parameterCount)
        Assert.Equal(2L * count first, build input (concat branches) |> Model.parameterCount)
        let rest = pieces.Tail
        let frozen = Summary.Totals(build input (freeze first.Layer >-> (rest |> List.map _.Layer |> List.reduce (>->))))
        let frozenBefore = rest |> List.sumBy (fun p -> Summary.Totals(build p.Input.Dims p.Layer).NonTrainable)
        Assert.Equal(count first + frozenBefore, frozen.NonTrainable)
        Assert.Equal(Model.parameterCount whole, frozen.Parameters))

[<Property(MaxTest = 300)>]
let ``the inferred shape is the shape of the output`` () =
    Prop.forAll (Gen.zip network (Gen.choose (0, 9999)) |> Arb.fromGen) (fun ((layer, input, expected), seed) ->
        let model = build input.Dims layer |> Model.init seed
        let batch = 3
        let y = model |> Model.predict (randomTensor seed (batch :: input.Dims))
        Assert.Equal<int list>(expected, Model.outputShape model.Network)
        Assert.Equal<int list>(batch :: expected, Tensor.shape y))
