using Cnn.Core;
using Cnn.Interop.LibTorch;
using TorchSharp;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>Random data and tolerance checks shared by the kernel-versus-TorchSharp properties.</summary>
internal static class TorchReference
{
    /// <summary>Uniform values in [-scale, scale).</summary>
    public static float[] Uniform(Random rng, int count, float scale = 1f)
    {
        var a = new float[count];
        for (int i = 0; i < a.Length; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }

    /// <summary>
    /// <paramref name="count"/> pairwise distinct values in [-1, 1), shuffled: no two elements tie, so which element a
    /// max-pooling window picks is unambiguous.
    /// </summary>
    public static float[] Distinct(Random rng, int count)
    {
        var a = new float[count];
        for (int i = 0; i < count; i++) a[i] = -1f + 2f * i / count;
        rng.Shuffle(a);
        return a;
    }

    /// <summary>A tensor of uniform values in [-scale, scale).</summary>
    public static Tensor RandomTensor(Random rng, float scale, params int[] dims) =>
        Tensor.FromArray(Uniform(rng, new Shape(dims).Size, scale), dims);

    /// <summary>A TorchSharp copy of a tensor, registered in the current dispose scope.</summary>
    public static TorchTensor T(Tensor t, bool requiresGrad = false) => TorchTensors.ToTorch(t, requiresGrad);

    /// <summary>A TorchSharp tensor of the given elements and dimensions.</summary>
    public static TorchTensor T(float[] data, params int[] dims) => TorchTensors.ToTorch(Tensor.FromArray(data, dims));

    /// <summary>
    /// Asserts same shape and <c>|a - b| &lt;= atol + rtol * max|b|</c> element-wise, where b is the reference: a
    /// tolerance scaled by the reference's largest magnitude, because float32 sums taken in a different order differ by a
    /// few ulps of the partial sums, not of each (possibly cancelled) result. NaN anywhere fails.
    /// </summary>
    public static void Close(Tensor actual, TorchTensor expected, double atol, double rtol, string what) =>
        Close(actual, TorchTensors.FromTorch(expected), atol, rtol, what);

    /// <inheritdoc cref="Close(Tensor, TorchTensor, double, double, string)"/>
    public static void Close(Tensor actual, Tensor expected, double atol, double rtol, string what)
    {
        if (actual.Shape != expected.Shape)
            throw new Xunit.Sdk.XunitException($"{what}: shape {actual.Shape}, reference {expected.Shape}.");
        Close(actual.Span, expected.Span, atol, rtol, what);
    }

    /// <inheritdoc cref="Close(Tensor, TorchTensor, double, double, string)"/>
    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double atol, double rtol, string what)
    {
        if (actual.Length != expected.Length)
            throw new Xunit.Sdk.XunitException($"{what}: {actual.Length} elements, reference {expected.Length}.");
        double scale = 0;
        foreach (var v in expected) scale = Math.Max(scale, Math.Abs((double)v));
        double bound = atol + rtol * scale;
        for (int i = 0; i < actual.Length; i++)
        {
            double diff = Math.Abs((double)actual[i] - expected[i]);
            if (!(diff <= bound))
                throw new Xunit.Sdk.XunitException(
                    $"{what}: element {i} is {actual[i]:R}, reference {expected[i]:R}; |diff| {diff:E3} > {atol:E0} + {rtol:E0} * max|ref| {scale:G4} = {bound:E3}.");
        }
    }

    /// <summary>Asserts bitwise-equal elements and the same shape (for operations that only copy or select).</summary>
    public static void Exact(Tensor actual, TorchTensor expected, string what) => Close(actual, expected, 0, 0, what);

    /// <inheritdoc cref="Exact(Tensor, TorchTensor, string)"/>
    public static void Exact(Tensor actual, Tensor expected, string what) => Close(actual, expected, 0, 0, what);

    /// <summary>The gradient autograd accumulated in a leaf, as a tensor.</summary>
    public static Tensor Grad(TorchTensor leaf) => TorchTensors.FromTorch(TorchGrad(leaf));

    /// <summary>The gradient autograd accumulated in a leaf, as LibTorch's tensor.</summary>
    public static TorchTensor TorchGrad(TorchTensor leaf) =>
        leaf.grad ?? throw new Xunit.Sdk.XunitException("Autograd left no gradient in a leaf.");

    /// <summary>Runs <paramref name="body"/> in a TorchSharp dispose scope so no native tensor outlives one property case.</summary>
    public static void Scoped(Action body)
    {
        using var scope = torch.NewDisposeScope();
        body();
    }
}
