using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>Which random transforms <see cref="Augment.Apply(Tensor, AugmentOptions, int)"/> draws for each image, and how far.</summary>
/// <param name="FlipHorizontal">Mirror left-right with probability 1/2 (right for photographs, wrong for digits).</param>
/// <param name="MaxShift">Shift by a whole number of pixels in [-MaxShift, MaxShift] on each axis, filling with 0.</param>
/// <param name="MaxRotationDegrees">Rotate about the centre by an angle in [-Max, Max] degrees (bilinear, filling with 0).</param>
/// <param name="CropPadding">Pad each side with this many zeros and crop a random window of the original size.</param>
public sealed record AugmentOptions(bool FlipHorizontal = false, int MaxShift = 0, float MaxRotationDegrees = 0, int CropPadding = 0)
{
    /// <summary>
    /// Random erasing of a rectangle of each image (<see cref="RandomErasing"/>), none when null. It comes last; the batch
    /// pipeline applies it after normalising (<see cref="PipelineOptions"/>), as torchvision does.
    /// </summary>
    public RandomErasing? Erasing { get; init; }

    /// <summary>For digits: shifts of up to 2 pixels and rotations of up to 10 degrees; no flip.</summary>
    public static AugmentOptions Digits { get; } = new(MaxShift: 2, MaxRotationDegrees: 10);

    /// <summary>For photographs (CIFAR-10): horizontal flips and random crops with 4 pixels of padding, as in the ResNet paper.</summary>
    public static AugmentOptions Photos { get; } = new(FlipHorizontal: true, CropPadding: 4);
}
