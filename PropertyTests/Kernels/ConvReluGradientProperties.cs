using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The gradients of a convolution and the ReLU after it, with the mask applied inside the convolution's backward pass a
/// few images at a time (<see cref="ConvKernel.Gradients"/> with the ReLU's output), against ReLU's own pullback
/// (<see cref="Activations.ReluBackward"/>) followed by the convolution's: the same bits for dx, dW and db, on the GEMM
/// path's shapes (strides, padding, dilation, groups) and the direct kernels' (stride 1, rows of 16 outputs or more), for
/// 2 and 3 workers, with every image its own group and with the default group size.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class ConvReluGradientProperties
{
    /// <summary>Shapes the direct gradient kernels take: stride 1, rows of 16-40 outputs, a shallow column matrix.</summary>
    private static Gen<ConvGemmCase> DirectCases =>
        from k in Gen.Choose(1, 3)
        from pad in Gen.Choose(0, 1)
        from outH in Gen.Choose(1, 5)
        from outW in Gen.Choose(16, 40)
        from c in Gen.Choose(1, 6)
        from f in Gen.Choose(5, 20)
        from n in Gen.Choose(2, 9)
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ConvGemmCase(n, 1, c, f, new ConvAxis(outH + k - 1 - 2 * pad, k, 1, pad, pad, 1),
            new ConvAxis(outW + k - 1 - 2 * pad, k, 1, pad, pad, 1), bias, seed);

    private static Gen<ConvGemmCase> Cases =>
        Gen.Frequency((1, ConvGemmCase.Generator.Select(c => c with { N = c.N + 1 })), (1, DirectCases))
            .Where(c => c.H.Size >= 1 && c.W.Size >= 1);

    private static void Same(Tensor? actual, Tensor? expected, string what)
    {
        Assert.Equal(expected is null, actual is null);
        if (expected is null) return;
        var a = actual!.ToArray();
        var e = expected.ToArray();
        Assert.Equal(e.Length, a.Length);
        for (int i = 0; i < e.Length; i++)
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(e[i]))
                throw new Xunit.Sdk.XunitException($"{what}: element {i} is {a[i]:R}; ReLU's pullback, then the convolution's, gives {e[i]:R}.");
    }

    private static bool Run(ConvGemmCase c, int workers, int maskedBytes)
    {
        var rng = new Random(c.Seed);
        var x = TorchReference.RandomTensor(rng, 1f, c.N, c.C, c.H.Size, c.W.Size);
        var w = TorchReference.RandomTensor(rng, 1f, c.F, c.CPerGroup, c.H.K, c.W.K);
        var b = c.Bias ? TorchReference.RandomTensor(rng, 1f, c.F) : null;
        var dy = TorchReference.RandomTensor(rng, 1f, c.N, c.F, c.H.Out, c.W.Out);
        var g = c.Geometry;
        int saved = ConvKernel.MaskedBytes;
        try
        {
            return WorkerCountCollection.With(workers, () =>
            {
                ConvKernel.MaskedBytes = maskedBytes;
                var y = ConvKernel.Forward(x, w, b, g, GemmInstructionSet.Auto, relu: true, packedWeights: null);
                var masked = Activations.ReluBackward(y, dy);
                foreach (bool inputGradient in new[] { true, false })
                {
                    var expected = ConvKernel.Gradients(x, w, c.Bias, masked, g, inputGradient);
                    var actual = ConvKernel.Gradients(x, w, c.Bias, dy, g, inputGradient, reluOutput: y);
                    string where = $"{workers} workers, groups of {maskedBytes} bytes, inputGradient {inputGradient}";
                    Same(actual.Input, expected.Input, $"dx ({where})");
                    Same(actual.Weight, expected.Weight, $"dW ({where})");
                    Same(actual.Bias, expected.Bias, $"db ({where})");
                }
                return true;
            });
        }
        finally
        {
            ConvKernel.MaskedBytes = saved;
        }
    }

    [Property(MaxTest = 60)]
    public Property Masking_inside_the_backward_pass_gives_the_bits_of_relu_then_convolution() => Prop.ForAll(Cases.ToArbitrary(), c =>
        Run(c, workers: 2, maskedBytes: 1) && Run(c, workers: 3, maskedBytes: 1) && Run(c, workers: 2, maskedBytes: 256 * 1024));

    [Fact]
    public void A_relu_output_of_another_shape_is_rejected()
    {
        var x = Tensor.FromArray(new float[2 * 3 * 8 * 8], 2, 3, 8, 8);
        var w = Tensor.FromArray(new float[6 * 3 * 9], 6, 3, 3, 3);
        var g = ConvGeometry.Create(new[] { 3, 3 }, new[] { 1, 1 }, new[] { 0, 0 }, new[] { 0, 0 }, new[] { 1, 1 });
        var dy = Tensor.FromArray(new float[2 * 6 * 36], 2, 6, 6, 6);
        var wrong = Tensor.FromArray(new float[2 * 6 * 35], 2, 6, 5, 7);
        var e = Assert.Throws<ShapeException>(() => ConvKernel.Gradients(x, w, false, dy, g, true, reluOutput: wrong));
        Assert.Contains("ReLU output", e.Message);
    }
}
