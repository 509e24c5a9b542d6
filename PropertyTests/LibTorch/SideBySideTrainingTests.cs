using Cnn.Core;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.LibTorch;

/// <summary>
/// The same network, initial weights, batches and optimizer, trained for 50 steps on both backends: the im2col backend with the DSL's
/// optimizers, and the nn.Module translation with torch.optim. The two share no code beyond the initial weights.
/// </summary>
/// <remarks>
/// <para>The two runs diverge as rounding differences are fed back through the updates, so the tolerance grows with the
/// step: the loss at step t (0-based) within a relative <c>LossBase * (1 + t)</c> of LibTorch's, and each final parameter
/// within <c>||a-b|| &lt;= ParameterPerStep * steps * ||b||</c>. Measured: loss differences at most 2.5e-7 relative at any step
/// (LossBase 2e-6 allows 1e-4 at step 50, ten times tighter than the 1e-3 the issue asks); final parameters at most 4e-7
/// with SGD, and 2.7e-5 with Adam (on simple-convnet, in development runs), which divides each step by the root of the running squared gradient, so that a weight
/// whose gradients stay near zero moves by an O(learning rate) step set by their rounding (ParameterPerStep 1e-5 allows
/// 5e-4 at 50 steps).</para>
/// <para>The data are a learnable synthetic task (a bright square at one of ten places, plus noise), so the loss falls and
/// the updates are not noise: a wrong optimizer step shows as a loss curve that bends away.</para>
/// </remarks>
public sealed class SideBySideTrainingTests(ITestOutputHelper output)
{
    private const int Steps = 50;
    private const int Batch = 16;
    private const double LossBase = 2e-6;
    private const double ParameterPerStep = 1e-5;

    public static IEnumerable<object[]> Runs() => new[]
    {
        new object[] { "simple-convnet", "sgd", 0.01f },
        new object[] { "lenet5", "sgd", 0.05f },
        new object[] { "lenet5", "adam", 1e-3f },
    };

    [Theory]
    [MemberData(nameof(Runs))]
    public void Training_on_both_backends_agrees_step_by_step(string model, string optimizerName, float learningRate)
    {
        var net = Zoo.ByName(model);
        var p0 = Initializer.Init(net, 21);
        var batches = Enumerable.Range(0, 10).Select(i => SyntheticBatch(100 + i)).ToArray();
        Optimizer ours = optimizerName == "sgd" ? new Sgd(learningRate, Momentum: 0.9f) : new Adam(learningRate);

        var p = p0;
        var slots = ours.Init(p);
        var ourLosses = new float[Steps];
        for (int t = 0; t < Steps; t++)
        {
            var (x, labels) = batches[t % batches.Length];
            var g = Loss.Gradient(net, p, x, labels, LossFunction.SoftmaxCrossEntropy);
            ourLosses[t] = g.Loss;
            (p, slots) = ours.Step(p, g.Gradients, slots);
        }

        var torchLosses = new float[Steps];
        Parameters torchFinal;
        using (var module = TorchModule.Build(net, p0))
        {
            module.train();
            using var optimizer = optimizerName == "sgd"
                ? (torch.optim.Optimizer)torch.optim.SGD(module.parameters(), learningRate, momentum: 0.9)
                : torch.optim.Adam(module.parameters(), learningRate);
            for (int t = 0; t < Steps; t++)
            {
                var (x, labels) = batches[t % batches.Length];
                using var scope = torch.NewDisposeScope();
                optimizer.zero_grad();
                var loss = TorchModuleTests.TorchLoss(module.call(TorchTensors.ToTorch(x)), labels, LossFunction.SoftmaxCrossEntropy);
                loss.backward();
                optimizer.step();
                torchLosses[t] = loss.item<float>();
            }
            torchFinal = TorchModule.ReadParameters(net, module);
        }

        var lossDiffs = Enumerable.Range(0, Steps).Select(t => Math.Abs((double)ourLosses[t] - torchLosses[t]) / Math.Abs(torchLosses[t])).ToArray();
        var paramDiffs = p.Paths.ToDictionary(path => path, path => RelativeNorm(p[path], torchFinal[path]));
        output.WriteLine($"{model} {optimizerName}: loss {torchLosses[0]:F4} -> {torchLosses[^1]:F4} (im2col {ourLosses[^1]:F4})");
        output.WriteLine("relative loss difference by step: " + string.Join(" ", lossDiffs.Select(d => d.ToString("E1", System.Globalization.CultureInfo.InvariantCulture))));
        output.WriteLine($"worst loss difference / tolerance: {Enumerable.Range(0, Steps).Max(t => lossDiffs[t] / (LossBase * (1 + t))):P1}");
        output.WriteLine("final parameters, ||a-b||/||b||: " + string.Join(", ", paramDiffs.Select(kv => $"{kv.Key} {kv.Value:E2}")));

        Assert.True(torchLosses[^1] < 0.85 * torchLosses[0], $"The task should be learnable: LibTorch's loss went from {torchLosses[0]} to {torchLosses[^1]}.");
        for (int t = 0; t < Steps; t++)
            Assert.True(lossDiffs[t] <= LossBase * (1 + t), $"Step {t}: im2col loss {ourLosses[t]}, LibTorch {torchLosses[t]}: relative {lossDiffs[t]:E2} > {LossBase * (1 + t):E2}.");
        foreach (var (path, d) in paramDiffs)
            Assert.True(d <= ParameterPerStep * Steps, $"Final '{path}': ||a-b||/||b|| = {d:E2} > {ParameterPerStep * Steps:E2}.");
    }

    /// <summary>Ten classes: a brighter 8x8 square at one of ten places on a 28x28 image of noise.</summary>
    internal static (Tensor X, int[] Labels) SyntheticBatch(int seed)
    {
        var rng = new Random(seed);
        var x = new float[Batch * 784];
        var labels = new int[Batch];
        for (int i = 0; i < Batch; i++)
        {
            int label = rng.Next(10);
            labels[i] = label;
            int top = 2 + (label / 5) * 14, left = 1 + (label % 5) * 5;
            for (int j = 0; j < 784; j++) x[i * 784 + j] = 0.5f * rng.NextSingle();
            for (int r = 0; r < 8; r++)
                for (int c = 0; c < 8 && left + c < 28; c++)
                    x[i * 784 + (top + r) * 28 + left + c] += 0.5f;
        }
        return (Tensor.FromArray(x, Batch, 1, 28, 28), labels);
    }

    /// <summary><c>||a-b|| / ||b||</c>.</summary>
    internal static double RelativeNorm(Tensor a, Tensor b)
    {
        double d = 0, n = 0;
        for (int i = 0; i < a.Size; i++)
        {
            d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            n += (double)b[i] * b[i];
        }
        // A zero reference (a slot or bias still at zero) is matched only by zero.
        return n == 0 ? (d == 0 ? 0 : double.PositiveInfinity) : Math.Sqrt(d / n);
    }
}
