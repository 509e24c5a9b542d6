using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Interop.LibTorch;
using Cnn.Tests.Dsl;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.LibTorch;

/// <summary>
/// The LibTorch training backend on float targets: the same run of <c>Trainer.Fit</c> (network with batch norm and dropout,
/// weights, batches, seeds, Adam) on im2col and on LibTorch, whose losses are PyTorch's <c>binary_cross_entropy</c>,
/// <c>binary_cross_entropy_with_logits</c>, <c>mse_loss</c> and <c>l1_loss</c> through autograd. The bounds of
/// <see cref="LibTorchBackendTests"/>: 1e-4 relative per-epoch loss, 1e-5 relative final parameters (||a-b||/||b||).
/// </summary>
public sealed class TargetLossBackendTests(ITestOutputHelper output)
{
    [Theory]
    [MemberData(nameof(TargetTrainingTests.Losses), MemberType = typeof(TargetTrainingTests))]
    public void LibTorch_backend_trains_float_targets_as_im2col_does(string name)
    {
        var (net, data, loss) = TargetTrainingTests.Case(name);
        var init = Initializer.Init(net, 7);
        var options = new TrainOptions(2, 8, new Adam(0.01f), Seed: 3, Loss: loss);
        var ours = Trainer.Fit(net, init, data, options);
        var theirs = Trainer.Fit(net, init, data, options with { Backend = LibTorchBackend.Cpu });

        for (int e = 0; e < ours.History.Count; e++)
        {
            double d = Math.Abs((double)ours.History[e].TrainLoss - theirs.History[e].TrainLoss) / Math.Abs((double)ours.History[e].TrainLoss);
            Assert.True(d <= 1e-4, $"{loss}, epoch {e + 1}: im2col loss {ours.History[e].TrainLoss}, LibTorch {theirs.History[e].TrainLoss}.");
            Assert.True(float.IsNaN(theirs.History[e].TrainAccuracy));
        }
        double worst = 0;
        foreach (var path in ours.Parameters.Paths)
        {
            double d = SideBySideTrainingTests.RelativeNorm(theirs.Parameters[path], ours.Parameters[path]);
            Assert.True(d <= 1e-5, $"{loss}: parameter '{path}' ||a-b||/||b|| = {d:E2} > 1e-5.");
            worst = Math.Max(worst, d);
        }
        output.WriteLine($"{loss}: loss {ours.History[0].TrainLoss:F5} -> {ours.History[^1].TrainLoss:F5}; worst parameter difference {worst:E2}");
    }

    [Fact]
    public void LibTorch_backend_refuses_what_its_losses_do_not_take_with_the_project_exception()
    {
        var (net, data, _) = TargetTrainingTests.Case("bce-logits");
        var p = Initializer.Init(net, 1);
        using var session = LibTorchBackend.Cpu.Start(net, p, Initializer.InitState(net), new Sgd(0.1f).Init(p));
        var batch = data.Batch(0, 4);
        var e = Assert.Throws<CnnException>(() => session.Step(new Sgd(0.1f), batch.Images, batch.Targets, LossFunction.SoftmaxCrossEntropy, 0));
        Assert.Contains("takes integer class labels", e.Message);
        e = Assert.Throws<CnnException>(() => session.Step(new Sgd(0.1f), batch.Images, Tensor.Full(batch.Targets.Shape, 1.5f), LossFunction.BinaryCrossEntropyWithLogits, 0));
        Assert.Contains("[0, 1]", e.Message);
        Assert.Throws<ShapeException>(() => session.Step(new Sgd(0.1f), batch.Images, Tensor.Zeros(4, 2), LossFunction.BinaryCrossEntropyWithLogits, 0));
    }
}
