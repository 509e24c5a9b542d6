namespace Cnn.FSharp

open Cnn.Core
open Cnn.Onnx

/// <summary>ONNX export and ONNX Runtime inference of a model (package <c>Cnn.Onnx</c>).</summary>
[<RequireQualifiedAccess>]
module Onnx =
    /// Writes the model (network, parameters, state) as an ONNX file, atomically, with the exporter of `Cnn.Onnx` (no
    /// tracing). Raises `Cnn.Onnx.OnnxUnsupportedException` for a layer the target opset cannot express.
    let export (path: string) (model: Model) : unit = (Model.toDsl model).ExportOnnx path

    /// As `export`, with options (opset, IR version, names, metadata).
    let exportWith (options: OnnxExportOptions) (path: string) (model: Model) : unit =
        (Model.toDsl model).ExportOnnx(path, options)

    /// Reads an ONNX file (ours, or another exporter's such as torch.onnx) into a model whose network trains here.
    /// Raises `Cnn.Onnx.OnnxUnsupportedException` naming the node and operation the layer tree cannot express.
    let import (path: string) : Model =
        let imported = OnnxImporter.Import path
        { Network = imported.Network; Parameters = imported.Parameters; State = imported.State }

    /// The model as the bytes of an ONNX file.
    let toBytes (model: Model) : byte[] = (Model.toDsl model).ToOnnxBytes()

    /// The outputs of an exported model for a batch, run in ONNX Runtime (a predictor is opened and closed per call; keep
    /// an `OnnxPredictor` for many calls).
    let run (path: string) (x: Tensor) : Tensor =
        use predictor = new OnnxPredictor(path)
        predictor.Run x

    /// The arg-max class of each sample of a batch, run in ONNX Runtime.
    let classify (path: string) (x: Tensor) : int[] =
        use predictor = new OnnxPredictor(path)
        predictor.PredictClasses x |> Array.ofSeq
