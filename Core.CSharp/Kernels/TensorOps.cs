using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>Structural tensor operations the combinators need: sums of branches, channel concatenation and its pullback.</summary>
public static class TensorOps
{
    /// <summary>The element-wise sum of two tensors of the same shape (a residual connection; its pullback passes dy to both).</summary>
    /// <exception cref="ShapeException">The shapes differ.</exception>
    public static Tensor Add(Tensor a, Tensor b) => Add(a, b, relu: false);

    /// <summary>
    /// <c>max(a + b, 0)</c>: a residual sum and the ReLU after it, each block rectified while it is in the cache, the bits of
    /// <see cref="Add(Tensor, Tensor)"/> and then <see cref="Activations.Relu"/>.
    /// </summary>
    /// <exception cref="ShapeException">The shapes differ.</exception>
    internal static Tensor AddRelu(Tensor a, Tensor b) => Add(a, b, relu: true);

    private static Tensor Add(Tensor a, Tensor b, bool relu)
    {
        if (a.Shape != b.Shape) throw new ShapeException($"Add: expected two tensors of the same shape; found {a.Shape} and {b.Shape}.");
        var y = TensorArena.Uninitialized<float>(a.Size);
        Elementwise.For(y.Length, (s, e) => AddBlock(a.Span[s..e], b.Span[s..e], y.AsSpan(s..e), relu));
        return Tensor.Own(y, a.Shape);
    }

    /// <summary>
    /// <c>y = a + b</c>, then rectified in place when <paramref name="relu"/>: one block of <see cref="Add(Tensor, Tensor)"/>
    /// or <see cref="AddRelu"/>, allocating nothing (the blocked inference path's sums call it too, for the same bits).
    /// </summary>
    internal static void AddBlock(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, bool relu)
    {
        TensorPrimitives.Add(a, b, y);
        if (relu) FusedActivation.Relu.ApplyInPlace(y);
    }

    /// <summary>Concatenates tensors along axis 1 (channels); every other axis must agree.</summary>
    /// <exception cref="ShapeException">No parts, a part of rank below 2, or parts that differ on an axis other than 1.</exception>
    public static Tensor ConcatChannels(IReadOnlyList<Tensor> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var shape = ConcatShape(parts, static p => p.Shape);
        var y = TensorArena.Zeroed<float>(shape.Size);
        ConcatChannels(parts, shape, y);
        return Tensor.Own(y, shape);
    }

    /// <summary>The shape of the parts (their shapes by <paramref name="shapeOf"/>) concatenated along axis 1.</summary>
    /// <exception cref="ShapeException">No parts, a part of rank below 2, or parts that differ on an axis other than 1.</exception>
    internal static Shape ConcatShape<T>(IReadOnlyList<T> parts, Func<T, Shape> shapeOf)
    {
        if (parts.Count == 0) throw new ShapeException("Concat (channels): expected at least one tensor; found none.");
        var first = shapeOf(parts[0]);
        if (first.Rank < 2) throw new ShapeException($"Concat (channels): expected tensors [N, C, ...] of rank >= 2; found {first} at position 0.");
        int total = 0;
        for (int i = 0; i < parts.Count; i++)
        {
            var s = shapeOf(parts[i]);
            bool fits = s.Rank == first.Rank;
            for (int a = 0; fits && a < s.Rank; a++) fits = a == 1 || s[a] == first[a];
            if (!fits)
                throw new ShapeException($"Concat (channels): expected every part to match {first} on all axes but 1; found {s} at position {i}.");
            total += s[1];
        }
        var dims = first.ToArray();
        dims[1] = total;
        return new Shape(dims);
    }

    /// <summary>The parts (checked by <see cref="ConcatShape"/>, which gave <paramref name="shape"/>) concatenated along axis 1 into <paramref name="y"/>.</summary>
    internal static void ConcatChannels(IReadOnlyList<Tensor> parts, Shape shape, Span<float> y)
    {
        int n = shape[0], total = shape[1];
        int inner = shape.Size == 0 || n == 0 || total == 0 ? 0 : shape.Size / (n * total);
        for (int i = 0; i < n; i++)
        {
            int offset = i * total * inner;
            for (int k = 0; k < parts.Count; k++)
            {
                var part = parts[k];
                int block = part.Shape[1] * inner;
                part.Span.Slice(i * block, block).CopyTo(y.Slice(offset, block));
                offset += block;
            }
        }
    }

    /// <summary>
    /// Splits <paramref name="dy"/> along axis 1 into consecutive parts of the given channel counts: the pullback of
    /// <see cref="ConcatChannels(IReadOnlyList{Tensor})"/>.
    /// </summary>
    /// <exception cref="ShapeException">The counts are negative or do not add up to the channels of <paramref name="dy"/>.</exception>
    public static IReadOnlyList<Tensor> SplitChannels(Tensor dy, IReadOnlyList<int> channels)
    {
        ArgumentNullException.ThrowIfNull(channels);
        if (dy.Shape.Rank < 2) throw new ShapeException($"Split (channels): expected a tensor [N, C, ...] of rank >= 2; found {dy.Shape}.");
        int total = 0;
        foreach (var c in channels)
        {
            if (c < 0) throw new ShapeException($"Split (channels): channel counts must be >= 0; found [{string.Join(", ", channels)}].");
            total += c;
        }
        if (total != dy.Shape[1])
            throw new ShapeException($"Split (channels): expected channel counts adding up to {dy.Shape[1]} (axis 1 of {dy.Shape}); found [{string.Join(", ", channels)}] = {total}.");
        int n = dy.Shape[0];
        int inner = dy.Size == 0 ? 0 : dy.Size / (n * total);
        var result = new Tensor[channels.Count];
        int start = 0;
        for (int k = 0; k < channels.Count; k++)
        {
            var dims = dy.Shape.ToArray();
            dims[1] = channels[k];
            int block = channels[k] * inner;
            var part = TensorArena.Zeroed<float>(n * block);
            for (int i = 0; i < n; i++) dy.Span.Slice(i * total * inner + start, block).CopyTo(part.AsSpan(i * block, block));
            result[k] = Tensor.Own(part, new Shape(dims));
            start += block;
        }
        return result;
    }
}
