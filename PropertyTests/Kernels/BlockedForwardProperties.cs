using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The training forward pass on the blocked kernel (<see cref="BlockedForward"/>: NCHW in, NCHW out, each item transposed
/// on the way out) against the GEMM path, bit for bit, on <see cref="BlockedConvProperties"/>'s cases read as NCHW:
/// input channels 1-5 or 16-128, kernels 1/3/5/7, strides 1 and 2 (and 3 vertically), padding 0-3 on either side (the
/// bordered copy), widths that leave ragged tiles and items, 32-128 filters, batches of 1 (items split between the
/// workers) to 3 (images split), bias or none, ReLU, zeros of both signs and a NaN in the input; every output element
/// written; on one worker and two, and on the AVX2 tile.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class BlockedForwardProperties
{
    private static Gen<BlockedConvProperties.Case> Cases =>
        BlockedConvProperties.Cases.Select(c => c with { Blocked = false, ExtraBorder = 0, OutBorder = 0 });

    /// <summary>The blocked path, into an output filled beforehand with a value no element has, so an unwritten one shows.</summary>
    private static float[] Blocked(BlockedConvProperties.Case c, Tensor x, Tensor w, Tensor? b)
    {
        var y = new float[c.N * c.F * c.H.Out * c.W.Out];
        Array.Fill(y, 12345.5f);
        BlockedForward.For(x.Shape, c.Geometry, c.F, c.Relu).Run(x, w, b, y);
        return y;
    }

    private static bool Matches(BlockedConvProperties.Case c, int workers) => WorkerCountCollection.With(workers, () =>
    {
        var (x, w, b) = BlockedConvProperties.Operands(c);
        var gemm = GemmPathReference.Forward(x, w, b, c.Geometry, c.Relu);
        var blocked = Blocked(c, x, w, b);
        for (int i = 0; i < gemm.Length; i++)
            if (!GemmPathReference.SameBits(gemm[i], blocked[i]))
                throw new Xunit.Sdk.XunitException($"{c}, {workers} workers: element {i} is {blocked[i]:R} blocked, {gemm[i]:R} on the GEMM path.");
        return true;
    });

    /// <summary>A planar case of a layer: square, symmetric padding, bias, no NaN.</summary>
    private static BlockedConvProperties.Case Layer(int n, int c, int size, int f, int k, int stride, int pad, bool relu, int seed) =>
        new(n, c, false, f, new ConvAxis(size, k, stride, pad, pad, 1), new ConvAxis(size, k, stride, pad, pad, 1), 0, 0, Bias: true, relu, Zeros: 5, Nan: false, seed);

    private static bool Runs => BlockedConv.Available;

    [Property(MaxTest = 60)]
    public Property Matches_the_gemm_path_bit_for_bit_on_one_and_two_workers() =>
        Prop.ForAll(Cases.ToArbitrary(), c => !Runs || (Matches(c, 1) && Matches(c, 2)));

    [Property(MaxTest = 40)]
    public Property Matches_the_gemm_path_bit_for_bit_on_the_avx2_tile() =>
        Prop.ForAll(Cases.ToArbitrary(), c => !Runs || !Vector256Paths.Supported || Vector256Paths.With(() => Matches(c, 1) && Matches(c, 2)));

    /// <summary>
    /// One thread's convolution of a shape, kept between calls, with new weights each call; between them a padded layer of
    /// another shape whose interior overlaps the first one's border in the thread's bordered buffer (so a border left
    /// unzeroed shows). keras-cifar's and resnet-mini's layers, at batch 1 and 4.
    /// </summary>
    [Theory]
    [InlineData(4, 32, 15, 64, 3, 1, 0)]
    [InlineData(1, 64, 15, 64, 3, 1, 1)]
    [InlineData(4, 16, 32, 32, 3, 2, 1)]
    [InlineData(4, 32, 16, 64, 1, 2, 0)]
    public void Keeps_each_shape_and_takes_each_calls_weights(int n, int ch, int size, int f, int k, int stride, int pad)
    {
        if (!Runs) return; // the kernel needs AVX-512 or AVX2: nothing to compare
        for (int seed = 1; seed <= 3; seed++)
        {
            Assert.True(Matches(Layer(n, ch, size, f, k, stride, pad, seed == 2, seed), 2));
            Assert.True(Matches(Layer(n, ch, size + 3, 32, 3, 1, 2, false, seed), 2));
        }
    }

    /// <summary>keras-cifar's 13x13 layer, which the training forward gives the blocked path, has the GEMM path's bits through the public entry point.</summary>
    [Fact]
    public void The_public_forward_gives_the_gemm_paths_bits_on_a_layer_the_blocked_path_takes()
    {
        if (!Runs) return;
        var c = Layer(8, 32, 15, 64, 3, 1, 0, relu: false, seed: 7);
        var (x, w, b) = BlockedConvProperties.Operands(c);
        var on = ConvKernel.Forward(x, w, b, c.Geometry).ToArray();
        Assert.True(BlockedForward.Covers(c.Geometry, c.F));
        Assert.Equal(on, GemmPathReference.Forward(x, w, b, c.Geometry, relu: false));
    }
}
