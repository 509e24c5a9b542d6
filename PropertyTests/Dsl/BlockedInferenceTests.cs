using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using Cnn.Tests.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Dsl;

/// <summary>
/// The inference plan's channel-blocked regions (<see cref="BlockedConv"/> and the blocked pooling and residual sums
/// between them) against the same plan without them: the same bits, since the blocked convolution sums in the GEMM's
/// order and the pooling and sums are the NCHW kernels' operations. Random networks of the layers a region takes (a
/// first convolution on a planar input of 1-4 channels; convolutions of 32 or 64 filters, kernels 1-5, strides 1-2,
/// padding up to 2, with or without bias, folded batch norm and ReLU; padded and unpadded max pooling; dropout; residual
/// blocks with identity and projection shortcuts, their branch ending with or without a ReLU of its own), then a layer it does not take (flatten and dense); batches of 1-5 on one worker or two, so that both the layer-by-layer
/// split and the image-by-image one run; on the CPU's widest tile and on the AVX2 one (<see cref="Vector256Paths"/>).
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class BlockedInferenceTests
{
    private static Tensor Random(Shape shape, Random rng) =>
        Tensor.FromArray(Enumerable.Range(0, shape.Size).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), shape);

    private static Parameters RandomState(Network network, Random rng) =>
        Parameters.Of(Initializer.InitState(network).Entries.Select(kv => KeyValuePair.Create(kv.Key, kv.Key.EndsWith("running_var", StringComparison.Ordinal)
            ? Tensor.FromArray(Enumerable.Range(0, kv.Value.Size).Select(_ => (float)(0.5 + rng.NextDouble() * 1.5)).ToArray(), kv.Value.Shape)
            : Tensor.FromArray(Enumerable.Range(0, kv.Value.Size).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), kv.Value.Shape))));

    /// <summary>A network the blocked region takes up to its flatten, built from <paramref name="seed"/> so that every size stays at least 2.</summary>
    private static Network RandomNetwork(int seed)
    {
        var rng = new Random(seed);
        int channels = rng.Next(1, 5), input = rng.Next(9, 21), size = input, filters = rng.Next(2) == 0 ? 32 : 64;
        Layer Conv(int f, int k, int s, int p, bool bn, bool relu)
        {
            Layer conv = new Conv2d(f, k, k, s, s, p, p, UseBias: rng.Next(2) == 0);
            var parts = new List<Layer> { conv };
            if (bn) parts.Add(new BatchNorm());
            if (relu) parts.Add(new Relu());
            return parts.Count == 1 ? conv : new Serial(parts.ToArray());
        }
        int k0 = rng.Next(1, 4) * 2 - 1, p0 = rng.Next(0, k0 / 2 + 1), s0 = size > 12 ? rng.Next(1, 3) : 1;
        var layers = new List<Layer> { Conv(filters, k0, s0, p0, rng.Next(2) == 0, rng.Next(3) > 0) };
        size = (size + 2 * p0 - k0) / s0 + 1;
        for (int block = rng.Next(1, 4); block > 0; block--)
            switch (rng.Next(5))
            {
                case 0 when size >= 4:
                {
                    int k = rng.Next(1, 4) * 2 - 1, p = rng.Next(0, Math.Min(2, k / 2) + 1), s = rng.Next(1, 3);
                    if (size + 2 * p - k < 1) break;
                    filters = rng.Next(2) == 0 ? 32 : 64;
                    layers.Add(Conv(filters, k, s, p, rng.Next(2) == 0, rng.Next(2) == 0));
                    size = (size + 2 * p - k) / s + 1;
                    break;
                }
                case 1 when size >= 4:
                    bool padded = rng.Next(2) == 0;
                    layers.Add(padded ? new MaxPool2d(3, 3, 2, 2, 1, 1) : new MaxPool2d(2, 2, 2, 2));
                    size = padded ? (size - 1) / 2 + 1 : size / 2;
                    break;
                case 2:
                    // A branch ending in a ReLU of its own sums in a pass of its own; one ending without, as it writes.
                    layers.Add(new Serial(new Residual(new Serial(Conv(filters, 3, 1, 1, true, true), Conv(filters, 3, 1, 1, true, rng.Next(3) == 0))), new Relu()));
                    break;
                case 3 when size >= 4:
                {
                    int wider = filters == 32 ? 64 : 32;
                    layers.Add(new Serial(new Residual(new Serial(Conv(wider, 3, 2, 1, true, true), Conv(wider, 3, 1, 1, true, false)),
                        Conv(wider, 1, 2, 0, true, false)), new Relu()));
                    (filters, size) = (wider, (size - 1) / 2 + 1);
                    break;
                }
                default:
                    layers.Add(new Dropout(0.5f));
                    break;
            }
        layers.Add(new Flatten());
        layers.Add(new Dense(5));
        return Network.Create(new Serial(layers.ToArray()), new Shape(channels, input, input));
    }

    /// <summary>The plan's output with the blocked path on and off (both bound afresh), and the blocked convolutions counted.</summary>
    private static (Tensor On, Tensor Off, int Blocked) BothWays(Network net, int seed, int batch)
    {
        var rng = new Random(seed);
        var p = Initializer.Init(net, seed);
        var state = RandomState(net, rng);
        var x = Random(net.InputShape.PrependBatch(batch), rng);
        var on = InferenceModel.Compile(net, p, state);
        bool saved = BlockedConv.Disabled;
        BlockedConv.Disabled = true;
        try
        {
            var off = InferenceModel.Compile(net, p, state);
            Assert.Equal(0, off.BlockedConvolutions);
            Assert.Equal((on.FoldedBatchNorms, on.FusedRelus), (off.FoldedBatchNorms, off.FusedRelus));
            return (on.Predict(x), off.Predict(x), on.BlockedConvolutions);
        }
        finally { BlockedConv.Disabled = saved; }
    }

    private static void AssertSameBits(Tensor on, Tensor off, string what)
    {
        Assert.Equal(off.Shape, on.Shape);
        for (int i = 0; i < on.Size; i++)
            if (BitConverter.SingleToInt32Bits(on[i]) != BitConverter.SingleToInt32Bits(off[i]) && !(float.IsNaN(on[i]) && float.IsNaN(off[i])))
                throw new Xunit.Sdk.XunitException($"{what}: element {i} is {on[i]:R} blocked, {off[i]:R} without.");
    }

    private static void RandomNetwork(int seed, int batch)
    {
        var net = RandomNetwork(seed);
        var (on, off, blocked) = WorkerCountCollection.With(1 + seed % 2, () => BothWays(net, seed, batch));
        Assert.True(blocked >= 1, $"seed {seed}: no convolution ran blocked");
        AssertSameBits(on, off, $"seed {seed}, batch {batch}");
    }

    [Property(MaxTest = 25)]
    public Property RandomNetworksPredictTheSameBitsBlockedOrNot() =>
        Prop.ForAll(Gen.Choose(0, 1_000_000).ToArbitrary(), Gen.Choose(1, 5).ToArbitrary(), (seed, batch) =>
        {
            if (BlockedConv.Available) RandomNetwork(seed, batch);
        });

    [Property(MaxTest = 25)]
    public Property RandomNetworksPredictTheSameBitsBlockedOrNotOnTheAvx2Tile() =>
        Prop.ForAll(Gen.Choose(0, 1_000_000).ToArbitrary(), Gen.Choose(1, 5).ToArbitrary(), (seed, batch) =>
        {
            if (BlockedConv.Available && Vector256Paths.Supported) Vector256Paths.With(() => { RandomNetwork(seed, batch); return 0; });
        });

    [Theory]
    [InlineData("keras-cifar", 3, 4, false)]
    [InlineData("resnet18", 1, 20, false)]
    [InlineData("keras-cifar", 3, 4, true)]
    [InlineData("resnet18", 1, 20, true)]
    public void ZooNetworksPredictTheSameBitsBlockedOrNot(string name, int batch, int convolutions, bool avx2)
    {
        if (!BlockedConv.Available || (avx2 && !Vector256Paths.Supported)) return;
        var (on, off, blocked) = avx2 ? Vector256Paths.With(() => BothWays(Zoo.ByName(name), 3, batch)) : BothWays(Zoo.ByName(name), 3, batch);
        Assert.Equal(convolutions, blocked);
        AssertSameBits(on, off, name);
    }
}
