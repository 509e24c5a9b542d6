namespace Cnn.Core.Kernels;

/// <summary>The gradients of a matrix product by a parameter.</summary>
/// <param name="Input">dL/dx, the input's shape.</param>
/// <param name="Weight">dL/dW, the weight's shape.</param>
public sealed record MatMulGradients(Tensor Input, Tensor Weight);

/// <summary>
/// Each of a sample's matrices times a matrix of its own: x <c>[N, G..., R, K]</c>, W <c>[G..., K, M]</c>, y <c>[N, G..., R, M]</c>
/// with <c>y[n, g] = x[n, g] W[g]</c> (numpy's and ONNX's matmul with W broadcast over the batch), on the GEMM.
/// </summary>
public static class MatMulKernel
{
    /// <summary>y[n, g] = x[n, g] W[g].</summary>
    /// <exception cref="ShapeException">The shapes do not fit.</exception>
    public static Tensor Forward(Tensor x, Tensor w)
    {
        var (n, g, r, k, m) = Check(x, w);
        var y = TensorArena.Zeroed<float>(n * g * r * m);
        for (int i = 0; i < n * g; i++)
            Gemm.Multiply(false, false, r, m, k, x.Span.Slice(i * r * k, r * k), w.Span.Slice(i % g * k * m, k * m), y.AsSpan(i * r * m, r * m));
        var dims = x.Shape.ToArray();
        dims[^1] = m;
        return Tensor.Own(y, new Shape(dims));
    }

    /// <summary>dx[n, g] = dy[n, g] W[g]^T; dW[g] = the sum over the batch, in order, of x[n, g]^T dy[n, g].</summary>
    /// <exception cref="ShapeException">The shapes do not fit, or <paramref name="dy"/> is not the output's shape.</exception>
    public static MatMulGradients Backward(Tensor x, Tensor w, Tensor dy)
    {
        var (n, g, r, k, m) = Check(x, w);
        var expected = x.Shape.ToArray();
        expected[^1] = m;
        if (dy.Shape != new Shape(expected)) throw new ShapeException($"MatMul backward: expected an upstream gradient {new Shape(expected)}; found {dy.Shape}.");
        var dx = TensorArena.Zeroed<float>(x.Size);
        var dw = TensorArena.Zeroed<float>(w.Size);
        for (int i = 0; i < n * g; i++)
        {
            var dyi = dy.Span.Slice(i * r * m, r * m);
            Gemm.Multiply(false, true, r, k, m, dyi, w.Span.Slice(i % g * k * m, k * m), dx.AsSpan(i * r * k, r * k));
            Gemm.Multiply(true, false, k, m, r, x.Span.Slice(i * r * k, r * k), dyi, dw.AsSpan(i % g * k * m, k * m), accumulate: true);
        }
        return new MatMulGradients(Tensor.Own(dx, x.Shape), Tensor.Own(dw, w.Shape));
    }

    private static (int N, int G, int R, int K, int M) Check(Tensor x, Tensor w)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(w);
        var xs = x.Shape;
        var ws = w.Shape;
        bool fits = xs.Rank >= 3 && ws.Rank == xs.Rank - 1 && ws[-2] == xs[-1];
        for (int a = 0; fits && a < ws.Rank - 2; a++) fits = ws[a] == xs[a + 1];
        if (!fits)
            throw new ShapeException($"MatMul: expected x [N, G..., R, K] and a weight [G..., K, M] with the same G... and K; found x {xs} and weight {ws}.");
        int g = 1;
        for (int a = 0; a < ws.Rank - 2; a++) g *= ws[a];
        return (xs[0], g, xs[-2], xs[-1], ws[-1]);
    }
}
