using Cnn.Core;

namespace Cnn.Benchmarks;

/// <summary>Seeded operands shared by the benchmarks.</summary>
internal static class Data
{
    /// <summary>Uniform floats in [-1, 1) from a seeded generator.</summary>
    public static float[] Uniform(int count, int seed)
    {
        var rng = new Random(seed);
        var a = new float[count];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    public static Tensor Tensor(int seed, params int[] dims) => Core.Tensor.FromArray(Uniform(new Shape(dims).Size, seed), dims);
}

/// <summary>
/// The convolution shapes of <c>cnn bench</c>: the four of ../shared/notes/libtorch-on-debian12.md, a 1x1 and a strided one.
/// </summary>
public sealed record ConvCase(string Name, int N, int C, int H, int W, int K, int Kernel, int Stride, int Pad)
{
    public static IEnumerable<ConvCase> All { get; } = new ConvCase[]
    {
        new("N64 C1 28x28 K30 5x5", 64, 1, 28, 28, 30, 5, 1, 0),
        new("N64 C32 15x15 K64 3x3", 64, 32, 15, 15, 64, 3, 1, 0),
        new("N64 C3 32x32 K32 3x3", 64, 3, 32, 32, 32, 3, 1, 0),
        new("N32 C64 56x56 K64 3x3", 32, 64, 56, 56, 64, 3, 1, 0),
        new("N64 C64 28x28 K128 1x1", 64, 64, 28, 28, 128, 1, 1, 0),
        new("N64 C32 32x32 K64 3x3 s2 p1", 64, 32, 32, 32, 64, 3, 2, 1),
    };

    public int OutH => (H + 2 * Pad - Kernel) / Stride + 1;

    public int OutW => (W + 2 * Pad - Kernel) / Stride + 1;

    public Core.Kernels.ConvGeometry Geometry =>
        Core.Kernels.ConvGeometry.Create(new[] { Kernel, Kernel }, new[] { Stride, Stride }, new[] { Pad, Pad }, new[] { Pad, Pad });

    public override string ToString() => Name;
}
