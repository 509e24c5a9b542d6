namespace Cnn.FSharp

open Cnn.Core
open Cnn.Dsl.Data

/// What the geometric transforms read outside the image (Keras's `fill_mode`, shown for a row `abcd`).
type Fill =
    /// A constant: `kkkk|abcd|kkkk` (`Constant 0.0` is the default).
    | Constant of value: float
    /// The nearest edge pixel: `aaaa|abcd|dddd`.
    | Nearest
    /// The image mirrored about its edge: `dcba|abcd|dcba`.
    | Reflect
    /// The image repeated: `abcd|abcd|abcd`.
    | Wrap

/// Random erasing (Zhong et al. 2017, torchvision's `RandomErasing`); start from `Erasing.defaults`.
type Erasing =
    { /// The chance that an image is erased (default 0.5).
      Probability: float
      /// The smallest area of the rectangle as a fraction of the image's (default 0.02).
      MinArea: float
      /// The largest area as a fraction of the image's (default 0.33).
      MaxArea: float
      /// The smallest ratio of height to width; the largest is its inverse (default 0.3).
      MinAspect: float
      /// The value written into the rectangle, after normalisation in training (default 0: the mean).
      Value: float
      /// Fill with standard normal values instead of `Value` (default false).
      RandomValues: bool }

/// The default random erasing.
[<RequireQualifiedAccess>]
module Erasing =
    /// Probability 0.5, area 2 % to 33 %, aspect 0.3 to 3.3, filled with 0: the paper's and torchvision's values.
    let defaults: Erasing =
        { Probability = 0.5; MinArea = 0.02; MaxArea = 0.33; MinAspect = 0.3; Value = 0.0; RandomValues = false }

/// The random transforms drawn for each training image, every epoch afresh (`TrainOptions.Augment`); start from
/// `Augmentation.none`, `Augmentation.digits` or `Augmentation.photos`. The geometric ones compose into one affine map
/// per image, sampled once (bilinear) with `Fill`; then brightness and contrast; then erasing (after normalisation).
type Augmentation =
    { /// Mirror left-right with probability 1/2.
      FlipHorizontal: bool
      /// Mirror top-bottom with probability 1/2.
      FlipVertical: bool
      /// Shift by whole pixels in [-MaxShift, MaxShift] on each axis.
      MaxShift: int
      /// Shift by a fraction of the width and height in [-f, f], interpolated (at most 1).
      MaxShiftFraction: float
      /// Rotate by up to this many degrees either way.
      MaxRotationDegrees: float
      /// Pad each side by this many pixels and crop a random window of the original size.
      CropPadding: int
      /// Zoom each axis by a factor in [1 - z, 1 + z] (below 1).
      Zoom: float
      /// Shear by up to this many degrees (below 90).
      MaxShearDegrees: float
      /// Multiply by a factor in [1 - b, 1 + b], clamped to [0, 1].
      Brightness: float
      /// Blend with the mean grey by a factor in [1 - c, 1 + c], clamped to [0, 1].
      Contrast: float
      /// What is read outside the image.
      Fill: Fill
      /// Random erasing, if any.
      Erasing: Erasing option }

/// Augmentation presets and application.
[<RequireQualifiedAccess>]
module Augmentation =
    /// Nothing: every transform off.
    let none: Augmentation =
        { FlipHorizontal = false; FlipVertical = false; MaxShift = 0; MaxShiftFraction = 0.0; MaxRotationDegrees = 0.0; CropPadding = 0
          Zoom = 0.0; MaxShearDegrees = 0.0; Brightness = 0.0; Contrast = 0.0; Fill = Constant 0.0; Erasing = None }

    /// For digits: shifts of up to 2 pixels and rotations of up to 10 degrees.
    let digits: Augmentation = { none with MaxShift = 2; MaxRotationDegrees = 10.0 }

    /// For photographs: horizontal flips and random crops with 4 pixels of padding.
    let photos: Augmentation = { none with FlipHorizontal = true; CropPadding = 4 }

    /// The C# options for an F# augmentation.
    let toOptions (a: Augmentation) : AugmentOptions =
        let fill, value =
            match a.Fill with
            | Constant v -> FillMode.Constant, v
            | Nearest -> FillMode.Nearest, 0.0
            | Reflect -> FillMode.Reflect, 0.0
            | Wrap -> FillMode.Wrap, 0.0
        AugmentOptions(a.FlipHorizontal, a.MaxShift, float32 a.MaxRotationDegrees, a.CropPadding,
            FlipVertical = a.FlipVertical, MaxShiftFraction = float32 a.MaxShiftFraction, ZoomRange = float32 a.Zoom,
            MaxShearDegrees = float32 a.MaxShearDegrees, Brightness = float32 a.Brightness, Contrast = float32 a.Contrast,
            Fill = fill, FillValue = float32 value,
            Erasing =
                (match a.Erasing with
                 | Some e -> RandomErasing(float32 e.Probability, float32 e.MinArea, float32 e.MaxArea, float32 e.MinAspect, float32 e.Value, e.RandomValues)
                 | None -> null))

    /// Augments a batch `[N, C, H, W]`, each image drawn from `seed` and its index (erasing last, on these values).
    /// Raises `Cnn.Core.CnnException` for a figure out of range.
    let apply (seed: int) (a: Augmentation) (batch: Tensor) : Tensor = Augment.Apply(batch, toOptions a, seed)
