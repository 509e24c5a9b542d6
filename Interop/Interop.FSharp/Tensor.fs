namespace Cnn.FSharp

open Cnn.Core

/// Tensors from and to F# values. Shapes are F# lists of dimensions, batch first (<c>[ n; c; h; w ]</c>).
[<RequireQualifiedAccess>]
module Tensor =
    /// A tensor of the given shape holding a copy of `values` (row-major).
    let ofArray (shape: int list) (values: float32[]) : Tensor = Tensor.FromArray(values, Shape(shape))

    /// A tensor of the given shape filled with zeros.
    let zeros (shape: int list) : Tensor = Tensor.Zeros(Shape(shape))

    /// A copy of the elements, row-major.
    let toArray (tensor: Tensor) : float32[] = tensor.ToArray()

    /// The dimensions, batch first.
    let shape (tensor: Tensor) : int list = List.ofSeq tensor.Shape
