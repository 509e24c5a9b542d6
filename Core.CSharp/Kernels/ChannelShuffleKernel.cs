namespace Cnn.Core.Kernels;

/// <summary>
/// ShuffleNet's channel shuffle of <c>[N, C, spatial...]</c> with g groups: the channels seen as a <c>[g, C/g]</c> matrix are
/// transposed, so output channel <c>j*g + i</c> is input channel <c>i*(C/g) + j</c> (PyTorch's <c>channel_shuffle</c>). It is a
/// permutation, so its pullback is the inverse permutation: the shuffle with C/g groups.
/// </summary>
public static class ChannelShuffleKernel
{
    /// <summary>The shuffled tensor.</summary>
    /// <exception cref="ShapeException">The tensor has no channel axis, or its channels are not a multiple of <paramref name="groups"/>.</exception>
    public static Tensor Forward(Tensor x, int groups)
    {
        if (x.Shape.Rank < 2 || groups < 1 || x.Shape[1] % groups != 0)
            throw new ShapeException($"Channel shuffle: expected [N, C, ...] with C a multiple of {groups} groups; found {x.Shape}.");
        int n = x.Shape[0], c = x.Shape[1], perGroup = c / groups, site = x.Size / Math.Max(1, n * c);
        var y = TensorArena.Uninitialized<float>(x.Size);
        var xs = x.Span;
        for (int b = 0; b < n; b++)
            for (int i = 0; i < groups; i++)
                for (int j = 0; j < perGroup; j++)
                    xs.Slice((b * c + i * perGroup + j) * site, site).CopyTo(y.AsSpan((b * c + j * groups + i) * site, site));
        return Tensor.Own(y, x.Shape);
    }

    /// <summary>The pullback: <paramref name="dy"/> shuffled back (with C/g groups).</summary>
    public static Tensor Backward(Tensor dy, int groups) => Forward(dy, dy.Shape[1] / groups);
}
