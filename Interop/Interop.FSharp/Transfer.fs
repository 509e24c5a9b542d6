namespace Cnn.FSharp

/// <summary>Network surgery for transfer learning on a model: freeze subtrees by path, replace the classifier head.</summary>
/// <remarks>
/// Paths are those of <c>Model.summary</c> (<c>features</c>, <c>layer4</c>, <c>classifier/1</c>). Kept parameters and state
/// are the same tensors; a new head is drawn by the initialiser from a seed. Errors raise <c>Cnn.Core.ShapeException</c>
/// naming the path. <c>model |> Transfer.replaceHead 10 1 |> Transfer.freeze [ Transfer.allButHead ]</c> is the usual
/// fine-tuning start.
/// </remarks>
[<RequireQualifiedAccess>]
module Transfer =
    /// The freeze path that stands for every layer with parameters or state except the classifier head.
    let allButHead : string = Cnn.Dsl.Transfer.AllButHead

    /// The path of the classifier head: the last layer with parameters, a dense layer or a 1x1 convolution.
    let findHead (network: Cnn.Dsl.Network) : string = Cnn.Dsl.Transfer.FindHead network

    /// The model with the layers at `paths` frozen (no gradient, no update, batch normalisation on its running
    /// statistics); `allButHead` freezes everything but the head.
    let freeze (paths: string list) (model: Model) : Model =
        { model with Network = Cnn.Dsl.Transfer.Freeze(model.Network, paths) }

    /// The model with every frozen layer trainable again (the second stage of a fine-tuning).
    let unfreeze (model: Model) : Model =
        { model with Network = Cnn.Dsl.Transfer.Unfreeze model.Network }

    let private ofTransfer (t: Cnn.Dsl.TransferModel) : Model =
        { Network = t.Network; Parameters = t.Parameters; State = t.State }

    /// The model with its classifier head (found by `findHead`) replaced by one of `classes` outputs, drawn from `seed`;
    /// the auxiliary heads' classifiers (GoogLeNet's `aux1`, `aux2`) are replaced too (see `replaceHeadWith`).
    let replaceHead (classes: int) (seed: int) (model: Model) : Model =
        Cnn.Dsl.Transfer.ReplaceHead(model.Network, model.Parameters, model.State, classes, seed) |> ofTransfer

    /// As `replaceHead`, for the head at `path`.
    let replaceHeadAt (path: string) (classes: int) (seed: int) (model: Model) : Model =
        Cnn.Dsl.Transfer.ReplaceHead(model.Network, model.Parameters, model.State, classes, seed, path) |> ofTransfer

    /// As `replaceHead`, with the auxiliary heads replaced (`AuxiliaryHeadChoice.Replace`), dropped (`Drop`) or kept
    /// (`Keep`, when `classes` does not change).
    let replaceHeadWith (auxiliaryHeads: Cnn.Dsl.AuxiliaryHeadChoice) (classes: int) (seed: int) (model: Model) : Model =
        Cnn.Dsl.Transfer.ReplaceHead(model.Network, model.Parameters, model.State, classes, seed, auxiliaryHeads = auxiliaryHeads) |> ofTransfer
