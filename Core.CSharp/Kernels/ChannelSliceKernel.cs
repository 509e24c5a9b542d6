namespace Cnn.Core.Kernels;

/// <summary>
/// A run of channels of <c>[N, C, spatial...]</c> (ShuffleNet v2's channel split): the forward pass copies channels
/// <c>[start, start + count)</c>; its pullback puts the gradient back in their place and zeros elsewhere.
/// </summary>
public static class ChannelSliceKernel
{
    /// <summary>Channels <c>[start, start + count)</c>.</summary>
    /// <exception cref="ShapeException">The run does not lie within the tensor's channels.</exception>
    public static Tensor Forward(Tensor x, int start, int count)
    {
        Check(x.Shape, start, count);
        int n = x.Shape[0], c = x.Shape[1], site = x.Size / Math.Max(1, n * c);
        var dims = x.Shape.ToArray();
        dims[1] = count;
        var y = TensorArena.Uninitialized<float>(n * count * site);
        for (int b = 0; b < n; b++) x.Span.Slice((b * c + start) * site, count * site).CopyTo(y.AsSpan(b * count * site, count * site));
        return Tensor.Own(y, new Shape(dims));
    }

    /// <summary>The pullback: <paramref name="dy"/> in channels <c>[start, start + count)</c> of a zero tensor of the input's shape.</summary>
    public static Tensor Backward(Tensor dy, Shape input, int start)
    {
        int count = dy.Shape.Rank > 1 ? dy.Shape[1] : 0;
        Check(input, start, count);
        int n = input[0], c = input[1], site = input.Size / Math.Max(1, n * c);
        var dx = TensorArena.Zeroed<float>(input.Size);
        for (int b = 0; b < n; b++) dy.Span.Slice(b * count * site, count * site).CopyTo(dx.AsSpan((b * c + start) * site, count * site));
        return Tensor.Own(dx, input);
    }

    private static void Check(Shape x, int start, int count)
    {
        if (x.Rank < 2 || start < 0 || count < 1 || start + count > x[1])
            throw new ShapeException($"Channel slice: channels [{start}, {start + count}) do not lie within the channels of {x}.");
    }
}
