using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Onnx;

/// <summary>
/// Inference uses the main head: ONNX export leaves auxiliary heads (<see cref="AuxiliaryHead"/>) out, so a network with
/// heads exports to the very bytes of the network without them (on the trunk's parameters), and ONNX Runtime computes
/// what <see cref="Apply"/> computes in inference.
/// </summary>
public sealed class AuxiliaryHeadExportTests
{
    public static Arbitrary<int> Seeds() => Arb.From(Gen.Choose(0, int.MaxValue - 1));

    [Property(MaxTest = 40, Arbitrary = new[] { typeof(AuxiliaryHeadExportTests) })]
    public void A_network_with_heads_exports_as_the_network_without_them(int seed)
    {
        var plain = WithoutHeads(RandomLayerTrees.Create(seed));
        var rng = new Random(seed);
        var headed = RandomLayerTrees.WithHead(rng.Next(2) == 0 ? plain : RandomLayerTrees.WithHead(plain, rng), rng);
        var (p, state) = OnnxTestSupport.RandomParametersAndState(headed, seed);
        var trunk = ImportRoundTripProperties.ExportedPart(headed, p);
        var trunkState = ImportRoundTripProperties.ExportedPart(headed, state);
        var expected = OnnxExporter.ToBytes(plain, trunk, trunkState);
        Assert.True(expected.AsSpan().SequenceEqual(OnnxExporter.ToBytes(headed, p, state)), $"seed {seed}: the bytes differ");
        var x = OnnxTestSupport.RandomBatch(headed.InputShape, 2, seed);
        using var predictor = new OnnxPredictor(expected);
        OnnxTestSupport.AssertClose(Apply.Forward(headed, p, x, Mode.Eval, state), predictor.Run(x), $"seed {seed}");
    }

    [Fact]
    public void Inception_mini_with_heads_exports_as_inception_mini()
    {
        var headed = Zoo.InceptionMiniAux();
        var p = Initializer.Init(headed, 3);
        var plain = Zoo.InceptionMini();
        Assert.True(OnnxExporter.ToBytes(plain, ImportRoundTripProperties.ExportedPart(headed, p)).AsSpan().SequenceEqual(OnnxExporter.ToBytes(headed, p)));
    }

    /// <summary>The network with the heads at the top of its serial removed (where <see cref="RandomLayerTrees"/> puts them).</summary>
    private static Network WithoutHeads(Network net) => Network.Create(
        new Serial(((Serial)net.Root).Layers.Where(l => l is not AuxiliaryHead)) { Name = net.Root.Name, WeightInit = net.Root.WeightInit }, net.InputShape);
}
