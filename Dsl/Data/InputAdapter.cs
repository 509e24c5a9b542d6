using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// Fits a data set's images to a network's input, for fine-tuning a network made for other images (the digits'
/// <c>[1, 28, 28]</c> into a torchvision network's <c>[3, H, W]</c>): a bilinear resize with half-pixel centres
/// (as PyTorch's <c>interpolate(mode="bilinear", align_corners=False)</c>, without antialiasing), then a grey channel
/// replicated to every channel the network takes (as torchvision's <c>Grayscale(num_output_channels=3)</c>).
/// Nothing else is changed: values keep their range, labels and order are the same.
/// </summary>
public static class InputAdapter
{
    /// <summary>Why images of shape <paramref name="sample"/> cannot be fitted to <paramref name="input"/>, or null when they can.</summary>
    /// <param name="sample">One image's shape, without the batch axis.</param>
    /// <param name="input">The network's input shape, without the batch axis.</param>
    public static string? Problem(Shape sample, Shape input)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(input);
        if (sample.Rank != 3 || input.Rank != 3)
            return $"only images [C, H, W] can be fitted to a network taking [C, H, W]; the images are {sample}, the network takes {input}";
        if (sample[0] != input[0] && sample[0] != 1)
            return $"images of {sample[0]} channels cannot feed a network taking {input[0]} (only 1 channel is replicated)";
        return null;
    }

    /// <summary>
    /// <paramref name="data"/> with every image resized to the network's height and width and its channels replicated
    /// when it has 1 and the network takes more; the same instance when the shapes already agree.
    /// </summary>
    /// <exception cref="CnnException">The images cannot be fitted (see <see cref="Problem"/>); the message says what the network needs.</exception>
    public static LabeledData Fit(LabeledData data, Shape input)
    {
        ArgumentNullException.ThrowIfNull(data);
        var sample = data.Images.Shape.DropBatch();
        if (sample == input) return data;
        if (Problem(sample, input) is { } problem) throw new CnnException($"The data cannot feed the network: {problem}.");
        int n = data.Count, c = sample[0], h = sample[1], w = sample[2], height = input[1], width = input[2];
        var maps = data.Images.Reshape(new Shape(n * c, h, w));
        var resized = (h, w) == (height, width) ? maps : GradCam.Upsample(maps, height, width);
        if (c == input[0]) return new LabeledData(resized.Reshape(new Shape(n, c, height, width)), data.Labels, data.Classes);
        int plane = height * width;
        var src = resized.Span;
        var dst = new float[(long)n * input[0] * plane <= Array.MaxLength ? n * input[0] * plane
            : throw new CnnException($"{n} images of {input} are more than one array holds; use fewer examples.")];
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < input[0]; ch++)
                src.Slice(i * plane, plane).CopyTo(dst.AsSpan((i * input[0] + ch) * plane, plane));
        return new LabeledData(Tensor.Own(dst, new Shape(n, input[0], height, width)), data.Labels, data.Classes);
    }
}
