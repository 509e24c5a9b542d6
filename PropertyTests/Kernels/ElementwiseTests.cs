using Cnn.Core;
using Cnn.Core.Kernels;
using Xunit;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The element-wise passes of a training step (ReLU, its pullback, residual sums) split large tensors across the workers:
/// the bits must not depend on the worker count, and the fused residual sum and ReLU must be the two operations' bits.
/// The length is above the parallel threshold and not a multiple of the block or of a vector, and holds exact zeros of
/// both signs and NaN, where ReLU's choices show.
/// It sets the worker count, which every kernel reads: in the collection whose tests run alone.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class ElementwiseTests
{
    private static Tensor Data(int seed, int length)
    {
        var rng = new Random(seed);
        var v = new float[length];
        for (int i = 0; i < length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < length; i += 97) v[i] = 0f;
        for (int i = 50; i < length; i += 89) v[i] = -0f;
        for (int i = 7; i < length; i += 1009) v[i] = float.NaN;
        return Tensor.FromArray(v, 3, length / 3);
    }

    private static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    [Fact]
    public void Relu_its_pullback_and_sums_give_the_same_bits_for_any_worker_count()
    {
        const int length = 3 * 40_001;
        var (a, b, dy) = (Data(1, length), Data(2, length), Data(3, length));
        (int[] Relu, int[] Mask, int[] Sum, int[] SumRelu) Run(int workers) => WorkerCountCollection.With(workers, () =>
            (Bits(Activations.Relu(a)), Bits(Activations.ReluBackward(a, dy)), Bits(TensorOps.Add(a, b)), Bits(TensorOps.AddRelu(a, b))));
        var one = Run(1);
        var three = Run(3);
        Assert.Equal(one.Relu, three.Relu);
        Assert.Equal(one.Mask, three.Mask);
        Assert.Equal(one.Sum, three.Sum);
        Assert.Equal(one.SumRelu, three.SumRelu);
        Assert.Equal(Bits(Activations.Relu(TensorOps.Add(a, b))), one.SumRelu);

        // The values themselves, element by element: max(x, 0) keeps NaN and turns -0 into +0; the pullback passes dy where x > 0.
        var (x, d, relu, mask) = (a.ToArray(), dy.ToArray(), Activations.Relu(a).ToArray(), Activations.ReluBackward(a, dy).ToArray());
        for (int i = 0; i < length; i++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(float.IsNaN(x[i]) ? x[i] : x[i] > 0f ? x[i] : 0f), BitConverter.SingleToInt32Bits(relu[i]));
            Assert.Equal(BitConverter.SingleToInt32Bits(x[i] > 0f ? d[i] : 0f), BitConverter.SingleToInt32Bits(mask[i]));
        }
    }
}
