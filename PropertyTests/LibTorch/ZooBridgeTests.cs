using Cnn.Core;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.LibTorch;

/// <summary>
/// Every zoo network small enough to run quickly, end to end on both backends at batch 2, in training and in inference:
/// output, loss, every parameter's gradient, the input's gradient and the state, with the tolerances of
/// <see cref="RandomNetworkBridgeProperties"/>. The generator's image is not a vector of class scores: it is compared through
/// the vector-Jacobian product for a random output gradient instead of a labelled loss.
/// </summary>
public sealed class ZooBridgeTests(ITestOutputHelper output)
{
    private const int Batch = 2;

    /// <summary>
    /// Every zoo network but AlexNet, VGG-16 and GoogLeNet (with or without heads, checked at 96x96 by AuxiliaryHeadBridgeTests), whose 61M, 138M and 7M parameters at 224x224 take tens of
    /// seconds per pass on two cores: `cnn verify --model NAME` checks them the same way.
    /// </summary>
    public static IEnumerable<object[]> Networks() =>
        Zoo.Names.Where(n => n is not ("alexnet" or "vgg16" or "googlenet" or "googlenet-aux")).Select(n => new object[] { n });

    [Theory]
    [MemberData(nameof(Networks))]
    public void Zoo_network_agrees_with_apply_in_both_modes(string name)
    {
        var net = Zoo.ByName(name);
        var p = Initializer.Init(net, 11);
        var rng = new Random(12);
        // Running statistics off their initial zeros and ones, so inference-mode batch norm is not the identity.
        var state = Initializer.InitState(net).Map((path, t) => Tensor.FromArray(
            Enumerable.Range(0, t.Size).Select(_ => path.EndsWith("running_var", StringComparison.Ordinal) ? 0.5f + rng.NextSingle() : rng.NextSingle() - 0.5f).ToArray(), t.Shape));
        var xShape = net.InputShape.PrependBatch(Batch);
        var x = Tensor.FromArray(Enumerable.Range(0, xShape.Size).Select(_ => rng.NextSingle()).ToArray(), xShape);
        foreach (var mode in new[] { Mode.Train, Mode.Eval })
        {
            GradientResult ours, theirs;
            // Classifiers on labels; an image (a generator) or one logit (a discriminator: softmax over one class has no
            // gradient) through the pullback of a random output gradient.
            if (net.OutputShape.Rank == 1 && net.OutputShape[0] > 1)
            {
                var labels = Enumerable.Range(0, Batch).Select(_ => rng.Next(net.OutputShape[0])).ToArray();
                ours = Loss.Gradient(net, p, x, labels, LossFunction.SoftmaxCrossEntropy, mode, state, seed: 3);
                theirs = TorchNetwork.Gradient(net, p, x, labels, LossFunction.SoftmaxCrossEntropy, mode, state, seed: 3);
            }
            else
            {
                var yShape = net.OutputShape.PrependBatch(Batch);
                var dy = Tensor.FromArray(Enumerable.Range(0, yShape.Size).Select(_ => rng.NextSingle() - 0.5f).ToArray(), yShape);
                ours = BridgeComparison.ApplyPullback(net, p, x, dy, mode, state, seed: 3);
                theirs = TorchNetwork.Pullback(net, p, x, dy, mode, state, seed: 3);
            }
            var rows = BridgeComparison.Compare(ours, theirs, RandomNetworkBridgeProperties.Output,
                RandomNetworkBridgeProperties.GradientFor(net, mode), RandomNetworkBridgeProperties.State);
            foreach (var group in rows.GroupBy(r => r.What.Split(' ')[0]))
            {
                var worst = group.MaxBy(r => r.Used)!;
                output.WriteLine($"{name} {mode}: {group.Count()} x {group.Key}, worst {worst}");
            }
            var failed = rows.Where(r => !r.Passed).ToList();
            Assert.True(failed.Count == 0, $"{name} in {mode} mode: {string.Join("; ", failed)}");
            Assert.Equal(p.Count, theirs.Gradients.Count);
        }
    }
}
