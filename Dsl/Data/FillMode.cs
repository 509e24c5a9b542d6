namespace Cnn.Dsl.Data;

/// <summary>
/// What a geometric transform reads where it samples outside the image, as Keras's <c>ImageDataGenerator</c>
/// <c>fill_mode</c> (shown for a row <c>abcd</c>).
/// </summary>
public enum FillMode
{
    /// <summary>A constant value (<see cref="AugmentOptions.FillValue"/>, 0 by default): <c>kkkk|abcd|kkkk</c>.</summary>
    Constant,

    /// <summary>The nearest edge pixel: <c>aaaa|abcd|dddd</c>.</summary>
    Nearest,

    /// <summary>The image mirrored about its edge, the edge pixel repeated: <c>dcba|abcd|dcba</c>.</summary>
    Reflect,

    /// <summary>The image repeated: <c>abcd|abcd|abcd</c>.</summary>
    Wrap,
}
