using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// Global average and max pooling over all spatial axes of <c>[N, C, ...]</c> (rank >= 3), keeping them as 1s:
/// <c>[N, C, H, W]</c> gives <c>[N, C, 1, 1]</c>, as PyTorch's <c>adaptive_avg_pool2d(x, 1)</c> and
/// <c>amax(x, (2, 3), keepdim=True)</c>.
/// </summary>
public static class GlobalPoolKernel
{
    /// <summary>The mean of each channel's spatial plane.</summary>
    /// <exception cref="ShapeException">The input's rank is below 3 or a spatial axis is empty.</exception>
    public static Tensor AverageForward(Tensor x)
    {
        var (planes, s, outShape) = Layout("Global average pool", x.Shape);
        var y = TensorArena.Zeroed<float>(planes);
        Average(x.Span, s, y);
        return Tensor.Own(y, outShape);
    }

    /// <summary><see cref="AverageForward"/>'s output shape for an input of shape <paramref name="x"/>.</summary>
    /// <exception cref="ShapeException">The input's rank is below 3 or a spatial axis is empty.</exception>
    internal static Shape AverageOutputShape(Shape x) => Layout("Global average pool", x).Output;

    /// <summary>The means of <paramref name="y"/>'s length planes of <paramref name="spatial"/> elements each, into <paramref name="y"/>.</summary>
    internal static void Average(ReadOnlySpan<float> x, int spatial, Span<float> y)
    {
        for (int p = 0; p < y.Length; p++) y[p] = TensorPrimitives.Sum(x.Slice(p * spatial, spatial)) / spatial;
    }

    /// <summary>Spreads each channel's upstream gradient evenly over its plane: <c>dy / (spatial size)</c>.</summary>
    /// <exception cref="ShapeException"><paramref name="dy"/> is not the forward output's shape.</exception>
    public static Tensor AverageBackward(Tensor dy, Shape inputShape)
    {
        var (planes, s, outShape) = Layout("Global average pool backward", inputShape);
        CheckGradient("Global average pool backward", dy, outShape, inputShape);
        var dx = TensorArena.Zeroed<float>(inputShape.Size);
        for (int p = 0; p < planes; p++) dx.AsSpan(p * s, s).Fill(dy[p] / s);
        return Tensor.Own(dx, inputShape);
    }

    /// <summary>
    /// The maximum of each channel's spatial plane and its flat input index. Ties go to the first maximum in row-major
    /// order and NaN wins (as max pooling), except that +0 counts above -0 (<see cref="TensorPrimitives.IndexOfMax(ReadOnlySpan{float})"/>).
    /// </summary>
    /// <exception cref="ShapeException">The input's rank is below 3 or a spatial axis is empty.</exception>
    public static PoolResult MaxForward(Tensor x)
    {
        var (planes, s, outShape) = Layout("Global max pool", x.Shape);
        var y = TensorArena.Zeroed<float>(planes);
        var arg = new int[planes];
        var xs = x.Span;
        for (int p = 0; p < planes; p++)
        {
            int i = p * s + TensorPrimitives.IndexOfMax(xs.Slice(p * s, s));
            arg[p] = i;
            y[p] = xs[i];
        }
        return new PoolResult(Tensor.Own(y, outShape), arg);
    }

    /// <summary>Routes each channel's upstream gradient to the element that won its plane.</summary>
    /// <exception cref="ShapeException"><paramref name="dy"/> or <paramref name="argMax"/> does not fit the input shape.</exception>
    public static Tensor MaxBackward(Tensor dy, ReadOnlyMemory<int> argMax, Shape inputShape)
    {
        var (planes, _, outShape) = Layout("Global max pool backward", inputShape);
        CheckGradient("Global max pool backward", dy, outShape, inputShape);
        if (argMax.Length != planes)
            throw new ShapeException($"Global max pool backward: expected {planes} winner indices for input {inputShape}; found {argMax.Length}.");
        var dx = TensorArena.Zeroed<float>(inputShape.Size);
        var a = argMax.Span;
        for (int p = 0; p < planes; p++) dx[a[p]] += dy[p];
        return Tensor.Own(dx, inputShape);
    }

    private static (int Planes, int Spatial, Shape Output) Layout(string op, Shape x)
    {
        if (x.Rank < 3) throw new ShapeException($"{op}: expected an input [N, C, spatial...] of rank >= 3; found {x}.");
        int s = 1;
        for (int i = 2; i < x.Rank; i++) s *= x[i];
        if (s == 0) throw new ShapeException($"{op}: expected non-empty spatial axes; found input {x}.");
        var dims = new int[x.Rank];
        Array.Fill(dims, 1);
        dims[0] = x[0];
        dims[1] = x[1];
        return (x[0] * x[1], s, new Shape(dims));
    }

    private static void CheckGradient(string op, Tensor dy, Shape expected, Shape input)
    {
        if (dy.Shape != expected)
            throw new ShapeException($"{op}: expected an upstream gradient of shape {expected} for input {input}; found {dy.Shape}.");
    }
}
