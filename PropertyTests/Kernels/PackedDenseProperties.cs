using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>
/// B packed once (<see cref="GemmPackedB"/>) and the dense layer built on it (<see cref="PackedDense"/>) against the GEMM and
/// <see cref="DenseKernel"/> that pack B per call: equal bit for bit (the same sums in the same order on the same micro-kernel),
/// on every micro-kernel the CPU has, on one and two threads, across the tile and depth-block boundaries, for products of
/// 1 to 4 rows (handed to the GEMM's in-place kernels) and more.
/// </summary>
public sealed class PackedDenseProperties
{
    private static readonly Gen<(int M, int N, int K, bool TransB, GemmInstructionSet Isa, int Threads, int Seed)> Products =
        from m in GemmTests.Size
        from n in GemmTests.Size
        from k in Gen.OneOf(GemmTests.Size, Gen.Choose(500, 1100))
        from tb in Gen.Elements(false, true)
        from isa in Gen.Elements(GemmTests.Paths)
        from threads in Gen.Elements(1, 2)
        from seed in Gen.Choose(0, int.MaxValue)
        select (m, n, k, tb, isa, threads, seed);

    [Fact]
    public void Generator_reaches_several_depth_blocks_and_threaded_products()
    {
        var cases = Products.Sample(2000, 50);
        Assert.Contains(cases, c => c.K > 512 && c.M > 4 && c.N > 32);
        Assert.Contains(cases, c => c.M <= 4);
        Assert.Contains(cases, c => c.Threads == 2 && 2L * c.M * c.N * c.K > 3_000_000);
    }

    [CnnProperty(150)]
    public Property Packed_product_has_the_bits_of_the_gemm() => Prop.ForAll(Products.ToArbitrary(), c =>
    {
        var rng = new Random(c.Seed);
        var a = RandomTensor(rng, 1f, c.M, c.K).ToArray();
        var b = RandomTensor(rng, 1f, c.N, c.K).ToArray();
        var expected = new float[c.M * c.N];
        Gemm.Multiply(false, c.TransB, c.M, c.N, c.K, a, b, expected, false, new GemmOptions { InstructionSet = c.Isa, Threads = c.Threads });
        // NaN past the end: a write beyond C would change it.
        var actual = Enumerable.Repeat(float.NaN, c.M * c.N + 7).ToArray();
        new GemmPackedB(b, c.TransB, c.K, c.N, c.Isa).Multiply(c.M, a, actual, c.Threads);
        Assert.Equal(expected, actual.Take(c.M * c.N));
        Assert.All(actual.Skip(c.M * c.N), v => Assert.True(float.IsNaN(v)));
    });

    private static readonly Gen<(int N, int F, int U, bool Bias, FusedActivation Activation, int Seed)> Layers =
        from n in Gen.OneOf(Gen.Choose(1, 6), Gen.Choose(7, 80))
        from f in Gen.OneOf(Gen.Choose(1, 40), Gen.Choose(250, 600))
        from u in Gen.Choose(1, 70)
        from bias in Gen.Elements(true, false)
        from activation in Gen.Elements(Enum.GetValues<FusedActivation>())
        from seed in Gen.Choose(0, int.MaxValue)
        select (n, f, u, bias, activation, seed);

    [CnnProperty(100)]
    public Property Packed_dense_layer_has_the_bits_of_the_kernel_and_its_activation() => Prop.ForAll(Layers.ToArbitrary(), c =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 2f, c.N, c.F);
        var w = RandomTensor(rng, 1f, c.U, c.F);
        var b = c.Bias ? RandomTensor(rng, 1f, c.U) : null;
        var y = DenseKernel.Forward(x, w, b);
        var expected = c.Activation switch
        {
            FusedActivation.Relu => Activations.Relu(y),
            FusedActivation.Tanh => Activations.Tanh(y),
            FusedActivation.Sigmoid => Activations.Sigmoid(y),
            _ => y,
        };
        var actual = PackedDense.Create(w, b, c.Activation).Forward(x);
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(expected.ToArray(), actual.ToArray());
    });

    [Fact]
    public void Bad_shapes_are_named()
    {
        var w = Tensor.Zeros(3, 5);
        Assert.Contains("[U, F]", Assert.Throws<ShapeException>(() => PackedDense.Create(Tensor.Zeros(3, 5, 1), null)).Message);
        Assert.Contains("bias [3]", Assert.Throws<ShapeException>(() => PackedDense.Create(w, Tensor.Zeros(4))).Message);
        var e = Assert.Throws<ShapeException>(() => PackedDense.Create(w, null).Forward(Tensor.Zeros(2, 4)));
        Assert.Contains("[N, 5]", e.Message);
        Assert.Contains("[2, 4]", e.Message);
    }
}
