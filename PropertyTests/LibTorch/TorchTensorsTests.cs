using Cnn.Core;
using Cnn.Interop.LibTorch;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;

namespace Cnn.Tests.LibTorch;

/// <summary>Copies between Tensor and TorchSharp keep every bit and the shape.</summary>
public sealed class TorchTensorsTests
{
    /// <summary>Ranks 0..5, axes 0..6 (empty tensors included), values of any bit pattern (NaNs, infinities, subnormals).</summary>
    private static readonly Arbitrary<(int[] Dims, int Seed)> Shapes =
        (from rank in Gen.Choose(0, 5)
         from dims in Gen.ArrayOf(Gen.Choose(0, 6), rank)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (dims, seed)).ToArbitrary();

    [Property(MaxTest = 100)]
    public Property Round_trip_is_exact() => Prop.ForAll(Shapes, s =>
    {
        var rng = new Random(s.Seed);
        var data = new float[new Shape(s.Dims).Size];
        for (int i = 0; i < data.Length; i++) data[i] = BitConverter.Int32BitsToSingle(rng.Next(int.MinValue, int.MaxValue));
        var x = Tensor.FromArray(data, s.Dims);
        using var scope = torch.NewDisposeScope();
        var t = TorchTensors.ToTorch(x);
        Assert.Equal(s.Dims.Select(d => (long)d).ToArray(), t.shape);
        Assert.Equal(torch.ScalarType.Float32, t.dtype);
        var back = TorchTensors.FromTorch(t);
        Assert.Equal(x.Shape, back.Shape);
        Assert.True(BitsEqual(x, back), "Round trip changed an element.");
    });

    [Fact]
    public void FromTorch_reads_a_transposed_float64_tensor_in_row_major_order()
    {
        using var scope = torch.NewDisposeScope();
        var t = torch.tensor(new double[] { 1, 2, 3, 4, 5, 6 }, new long[] { 2, 3 }).t();
        var x = TorchTensors.FromTorch(t);
        Assert.Equal(new Shape(3, 2), x.Shape);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, x.ToArray());
    }

    [Fact]
    public void ToTorch_copies_so_later_torch_writes_do_not_reach_the_tensor()
    {
        var x = Tensor.FromArray(new float[] { 1, 2, 3 }, 3);
        using var scope = torch.NewDisposeScope();
        var t = TorchTensors.ToTorch(x);
        t.add_(1f);
        Assert.Equal(new float[] { 1, 2, 3 }, x.ToArray());
        Assert.True(TorchTensors.ToTorch(x, requiresGrad: true).requires_grad);
    }

    private static bool BitsEqual(Tensor a, Tensor b)
    {
        for (int i = 0; i < a.Size; i++)
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i])) return false;
        return true;
    }
}
