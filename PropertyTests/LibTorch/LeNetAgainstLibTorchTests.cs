using System.Diagnostics;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Interop.LibTorch;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.LibTorch;

/// <summary>
/// The acceptance run: LeNet-5 trained on 8,000 of the real digits (2,000 held out) with Adam at lr 1e-3, batch 100,
/// for 10 epochs, on our backend with <c>Trainer.Fit</c> and in LibTorch (the <see cref="TorchModule"/> translation with
/// <c>torch.optim.Adam</c>), from the same initial weights, on the same data and with the same batches in the same order
/// (<see cref="Trainer.EpochOrder"/>). Our held-out accuracy must reach 96 % and land within 0.5 points of LibTorch's.
/// </summary>
/// <remarks>
/// <para>The pixels are standardised with the training set's mean and standard deviation (0.131 and 0.309), as PyTorch's MNIST
/// example does. Without it the tanh network learns more slowly: on the raw [0, 1] pixels, seeds 1 to 5 reach only 95.65, 95.70,
/// 95.80, 95.40 and 95.80 % after 10 epochs (and LibTorch, from the same start, the same 95.65 % for seed 1); standardised, seeds 1
/// and 2 reach 96.55 and 96.45 %.</para>
/// <para>Cost: about 65 s of CPU for our side and 10 s for LibTorch's. LibTorch runs on one thread here: its OpenMP workers
/// spin while they wait, and on a loaded two-core machine two of them took 17.6 s of CPU per epoch against 1.0 s for one.</para>
/// </remarks>
public sealed class LeNetAgainstLibTorchTests(ITestOutputHelper output)
{
    private const int Seed = 1, Epochs = 10, BatchSize = 100;
    private const float LearningRate = 1e-3f;

    [Fact]
    public void LeNet5_reaches_96_percent_on_held_out_digits_within_half_a_point_of_LibTorch()
    {
        var split = MnistNpm.Load().Split(8000, Seed);
        var standardise = Normalization.Fit(split.First.Images);
        var (train, heldOut) = (standardise.Apply(split.First), standardise.Apply(split.Second));
        Assert.Equal(2000, heldOut.Count);
        var net = Zoo.LeNet5();
        var initial = Initializer.Init(net, Seed);

        var clock = Stopwatch.StartNew();
        var ours = Trainer.Fit(net, initial, train, new TrainOptions(Epochs, BatchSize, new Adam(LearningRate), Seed));
        var ourAccuracy = Trainer.Evaluate(net, ours.Parameters, heldOut).Accuracy;
        var ourTime = clock.Elapsed;

        clock.Restart();
        float torchAccuracy;
        Parameters torchParameters;
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        try
        {
            using var module = TorchModule.Build(net, initial);
            using var optimizer = torch.optim.Adam(module.parameters(), LearningRate);
            using var images = TorchTensors.ToTorch(train.Images);
            using var labels = torch.tensor(train.Labels.Select(l => (long)l).ToArray());
            module.train();
            for (int epoch = 1; epoch <= Epochs; epoch++)
            {
                // Trainer.Fit's order for this seed and epoch, cut into the same batches.
                var order = Trainer.EpochOrder(train.Count, Seed, epoch);
                for (int start = 0; start < order.Length; start += BatchSize)
                {
                    using var scope = torch.NewDisposeScope();
                    var rows = torch.tensor(order.Skip(start).Take(BatchSize).Select(i => (long)i).ToArray());
                    optimizer.zero_grad();
                    var loss = cross_entropy(module.call(images.index_select(0, rows)), labels.index_select(0, rows));
                    loss.backward();
                    optimizer.step();
                }
            }
            module.eval();
            torchParameters = TorchModule.ReadParameters(net, module);
            using (torch.no_grad())
            using (torch.NewDisposeScope())
            {
                var predicted = module.call(TorchTensors.ToTorch(heldOut.Images)).argmax(1);
                var expected = torch.tensor(heldOut.Labels.Select(l => (long)l).ToArray());
                torchAccuracy = predicted.eq(expected).sum().item<long>() / (float)heldOut.Count;
            }
        }
        finally
        {
            torch.set_num_threads(threads);
        }
        var torchTime = clock.Elapsed;
        // LibTorch's weights in our forward pass give LibTorch's accuracy: the two runs differ by training alone.
        var torchWeightsHere = Trainer.Evaluate(net, torchParameters, heldOut).Accuracy;

        output.WriteLine($"held-out accuracy after {Epochs} epochs: ours {ourAccuracy:P2} ({ourTime.TotalSeconds:F1} s), " +
            $"LibTorch {torchAccuracy:P2} ({torchTime.TotalSeconds:F1} s; its weights in our forward pass {torchWeightsHere:P2})");
        // Measured: ours 96.55 %, LibTorch 96.55 %.
        Assert.True(ourAccuracy >= 0.96f, $"our held-out accuracy {ourAccuracy:P2} is below 96 %");
        Assert.True(Math.Abs(ourAccuracy - torchAccuracy) <= 0.005f, $"ours {ourAccuracy:P2} vs LibTorch {torchAccuracy:P2}: more than 0.5 points apart");
        Assert.True(Math.Abs(torchWeightsHere - torchAccuracy) <= 0.001f, $"LibTorch's weights: {torchAccuracy:P2} there, {torchWeightsHere:P2} in our forward pass");
    }
}
