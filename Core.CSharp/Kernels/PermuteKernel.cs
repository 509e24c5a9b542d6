namespace Cnn.Core.Kernels;

/// <summary>
/// Reorders the axes of a tensor (PyTorch's <c>permute</c>, ONNX's <c>Transpose</c>): output axis <c>i</c> is input axis
/// <c>axes[i]</c>. A copy, so exact; its pullback is the inverse permutation.
/// </summary>
public static class PermuteKernel
{
    /// <summary>The tensor with its axes reordered.</summary>
    /// <param name="x">The input.</param>
    /// <param name="axes">For each output axis, the input axis it takes: a permutation of <c>0..rank-1</c>.</param>
    /// <exception cref="ShapeException"><paramref name="axes"/> is not a permutation of the input's axes.</exception>
    public static Tensor Forward(Tensor x, IReadOnlyList<int> axes)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(axes);
        int rank = x.Shape.Rank;
        if (axes.Count != rank || axes.Order().Where((a, i) => a != i).Any())
            throw new ShapeException($"Permute: expected a permutation of the {rank} axes of {x.Shape}; found [{string.Join(", ", axes)}].");
        var inStride = new int[rank];
        for (int a = rank - 1, s = 1; a >= 0; s *= x.Shape[a], a--) inStride[a] = s;
        var dims = axes.Select(a => x.Shape[a]).ToArray();
        var stride = axes.Select(a => inStride[a]).ToArray();
        var y = TensorArena.Uninitialized<float>(x.Size);
        var xs = x.Span;
        var index = new int[rank];
        // Output elements in row-major order; the input offset follows the permuted strides like an odometer.
        for (int o = 0, offset = 0; o < y.Length; o++)
        {
            y[o] = xs[offset];
            for (int d = rank - 1; d >= 0; d--)
            {
                offset += stride[d];
                if (++index[d] < dims[d]) break;
                offset -= stride[d] * dims[d];
                index[d] = 0;
            }
        }
        return Tensor.Own(y, new Shape(dims));
    }

    /// <summary>The pullback: <paramref name="dy"/> with the inverse permutation of <paramref name="axes"/>.</summary>
    /// <exception cref="ShapeException"><paramref name="axes"/> is not a permutation of <paramref name="dy"/>'s axes.</exception>
    public static Tensor Backward(Tensor dy, IReadOnlyList<int> axes)
    {
        ArgumentNullException.ThrowIfNull(axes);
        var inverse = new int[axes.Count];
        for (int i = 0; i < axes.Count; i++)
            if (axes[i] >= 0 && axes[i] < inverse.Length) inverse[axes[i]] = i;
        // A list that is no permutation fails Forward's check on the inverse too (it repeats an axis or leaves one out).
        return Forward(dy, axes.Order().Where((a, i) => a != i).Any() ? axes : inverse);
    }
}
