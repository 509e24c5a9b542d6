using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// Which random transforms <see cref="Augment.Apply(Tensor, AugmentOptions, int)"/> draws for each image, and how far:
/// the set of Keras's <c>ImageDataGenerator</c> and random erasing. The geometric ones (crop, shifts, rotation, zoom,
/// shear, flips) compose into one affine map per image, sampled once (bilinear) with <see cref="Fill"/>; then
/// brightness and contrast; then random erasing. Each is off at its default.
/// </summary>
/// <param name="FlipHorizontal">Mirror left-right with probability 1/2 (right for photographs, wrong for digits).</param>
/// <param name="MaxShift">Shift by a whole number of pixels in [-MaxShift, MaxShift] on each axis.</param>
/// <param name="MaxRotationDegrees">Rotate about the centre by an angle in [-Max, Max] degrees.</param>
/// <param name="CropPadding">Pad each side with this many pixels (read as <see cref="Fill"/> says) and crop a random window of the original size.</param>
public sealed record AugmentOptions(bool FlipHorizontal = false, int MaxShift = 0, float MaxRotationDegrees = 0, int CropPadding = 0)
{
    /// <summary>Mirror top-bottom with probability 1/2 (Keras's <c>vertical_flip</c>).</summary>
    public bool FlipVertical { get; init; }

    /// <summary>
    /// Shift by a fraction of the width and of the height drawn in [-Max, Max] on each axis, not rounded to whole pixels
    /// (Keras's <c>width_shift_range</c> and <c>height_shift_range</c> below 1); at most 1.
    /// </summary>
    public float MaxShiftFraction { get; init; }

    /// <summary>
    /// Zoom by factors drawn in [1 - Range, 1 + Range] for each axis on its own (Keras's <c>zoom_range</c>): a factor
    /// above 1 shows more of the surroundings, below 1 enlarges the content; in [0, 1).
    /// </summary>
    public float ZoomRange { get; init; }

    /// <summary>Shear by an angle drawn in [-Max, Max] degrees (Keras's <c>shear_range</c>); below 90.</summary>
    public float MaxShearDegrees { get; init; }

    /// <summary>
    /// Multiply every value by a factor drawn in [max(0, 1 - B), 1 + B] and clamp to [0, 1] (torchvision's
    /// <c>ColorJitter(brightness=B)</c>, <c>adjust_brightness</c>): for images in [0, 1], before normalisation.
    /// </summary>
    public float Brightness { get; init; }

    /// <summary>
    /// Blend each image with its mean grey by a factor drawn in [max(0, 1 - C), 1 + C] and clamp to [0, 1]
    /// (torchvision's <c>ColorJitter(contrast=C)</c>, <c>adjust_contrast</c>): for images in [0, 1], before normalisation.
    /// </summary>
    public float Contrast { get; init; }

    /// <summary>What the geometric transforms read outside the image (Keras's <c>fill_mode</c>; constant by default).</summary>
    public FillMode Fill { get; init; }

    /// <summary>The value read outside the image with <see cref="FillMode.Constant"/> (Keras's <c>cval</c>; 0 by default).</summary>
    public float FillValue { get; init; }

    /// <summary>
    /// Random erasing of a rectangle of each image (<see cref="RandomErasing"/>), none when null. It comes last; the batch
    /// pipeline applies it after normalising (<see cref="PipelineOptions"/>), as torchvision does.
    /// </summary>
    public RandomErasing? Erasing { get; init; }

    /// <summary>For digits: shifts of up to 2 pixels and rotations of up to 10 degrees; no flip.</summary>
    public static AugmentOptions Digits { get; } = new(MaxShift: 2, MaxRotationDegrees: 10);

    /// <summary>For photographs (CIFAR-10): horizontal flips and random crops with 4 pixels of padding, as in the ResNet paper.</summary>
    public static AugmentOptions Photos { get; } = new(FlipHorizontal: true, CropPadding: 4);

    /// <summary>The largest whole-pixel shift or crop padding: far beyond any image, and every sampled coordinate stays an int.</summary>
    internal const int MaxPixels = 65_536;

    /// <summary>Checks that every figure is in its range.</summary>
    /// <exception cref="CnnException">A figure is negative, not finite, or beyond its bound.</exception>
    internal void Check()
    {
        if (MaxShift is < 0 or > MaxPixels || CropPadding is < 0 or > MaxPixels || !(MaxRotationDegrees >= 0 && MaxRotationDegrees <= 360) || !(MaxShiftFraction >= 0 && MaxShiftFraction <= 1)
            || !(ZoomRange >= 0 && ZoomRange < 1) || !(MaxShearDegrees >= 0 && MaxShearDegrees < 90) || !(Brightness >= 0 && Brightness <= 100)
            || !(Contrast >= 0 && Contrast <= 100) || !float.IsFinite(FillValue) || !Enum.IsDefined(Fill))
            throw new CnnException($"Augment options out of range: 0 <= MaxShift, CropPadding <= {MaxPixels}; 0 <= MaxRotationDegrees <= 360; 0 <= MaxShiftFraction <= 1; " +
                $"0 <= ZoomRange < 1; 0 <= MaxShearDegrees < 90; 0 <= Brightness, Contrast <= 100; a finite FillValue and a defined Fill; found {this}.");
        Erasing?.Check();
    }
}
