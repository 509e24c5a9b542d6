using System.Diagnostics;
using Cnn.Core;
using Cnn.Dsl;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.Dsl;

/// <summary>
/// Zoo networks take a training step on a batch of each other shape their documentation names (issue 20: <c>resnet-mini</c> on
/// the digits once failed with a shape error though its documentation said 1x28x28 fits): built, initialised, one
/// <see cref="Trainer.Step(Network, Parameters, Parameters, Optimizer, OptimizerState, Tensor, ReadOnlySpan{int}, LossFunction?, int)"/>
/// with Adam on a random batch of 2, a finite loss, and every trainable parameter tensor changed (Adam moves every weight
/// whose gradient is not zero by about its learning rate, so a tensor left as it was means no gradient reached it).
/// </summary>
public sealed class ZooTrainingStepTests(ITestOutputHelper output)
{
    private static readonly Shape Digits = new(1, 28, 28);

    /// <summary>
    /// The other inputs the documentation says fit (<see cref="Zoo.ForInput"/>): 1x28x28 digits for vgg-mini, inception-mini
    /// and resnet-mini, 3x32x32 images for alexnet-mini; and the DCGAN pair at their own inputs on float targets. Every
    /// canonical name at its default input already takes a step in <c>ZooTests.EveryZooNetworkTrainsForOneStep</c>.
    /// </summary>
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var name in new[] { "dcgan-generator", "dcgan-discriminator" }) data.Add(name, "default");
        foreach (var name in new[] { "vgg-mini", "inception-mini", "resnet-mini" }) data.Add(name, "1x28x28");
        data.Add("alexnet-mini", "3x32x32");
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_zoo_network_trains_a_step_on_data_of_its_documented_shape(string name, string input)
    {
        var net = input == "default" ? Zoo.ByName(name) : Zoo.ForInput(name, new Shape(input.Split('x').Select(int.Parse).ToArray()));
        if (input != "default") Assert.Equal(input, string.Join("x", net.InputShape));
        var clock = Stopwatch.StartNew();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var p = Initializer.Init(net, 1);
        var s = Initializer.InitState(net);
        var rng = new Random(3);
        const int batch = 2;
        var x = Tensor.FromArray(Enumerable.Range(0, batch * net.InputShape.Size).Select(_ => (float)rng.NextDouble()).ToArray(), net.InputShape.PrependBatch(batch));
        var adam = new Adam(1e-3f);
        var trainable = Trainer.TrainablePaths(net);
        var before = Parameters.Of(p.Entries.Where(kv => trainable.Contains(kv.Key)));
        StepResult r;
        string loss;
        if (net.OutputShape.Rank == 1 && net.OutputShape[0] > 1)
        {
            // A classifier: softmax cross-entropy on random labels.
            var labels = Enumerable.Range(0, batch).Select(_ => rng.Next(net.OutputShape[0])).ToArray();
            r = Trainer.Step(net, p, s, adam, adam.Init(before), x, labels, LossFunction.SoftmaxCrossEntropy, seed: 5);
            loss = "softmax cross-entropy";
        }
        else
        {
            // The DCGAN pair: the generator's image regressed on random targets, the discriminator's logit on 0/1 targets.
            bool logit = net.OutputShape.Size == 1;
            var targets = Tensor.FromArray(Enumerable.Range(0, batch * net.OutputShape.Size).Select(i => logit ? i % 2 : (float)rng.NextDouble()).ToArray(),
                net.OutputShape.PrependBatch(batch));
            var lossFunction = logit ? LossFunction.BinaryCrossEntropyWithLogits : LossFunction.MeanSquaredError;
            r = Trainer.Step(net, p, s, adam, adam.Init(before), x, targets, lossFunction, seed: 5);
            loss = lossFunction.ToString();
        }
        Trainer.ReleaseCachedMemory();
        output.WriteLine($"{name} at {net.InputShape}: {loss} {r.Loss:F4}; {clock.Elapsed.TotalSeconds:F2} s wall, " +
            $"{(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds:F2} s processor (whole process)");

        Assert.True(float.IsFinite(r.Loss) && r.Loss > 0, $"{name}: the loss is {r.Loss}.");
        Assert.Equal(net.OutputShape.PrependBatch(batch), r.Output.Shape);
        Assert.Equal(1, r.OptimizerState.Step);
        var unchanged = before.Paths.Where(path => before[path].Span.SequenceEqual(r.Parameters[path].Span)).ToList();
        Assert.True(unchanged.Count == 0, $"{name}: the step left {unchanged.Count} of {before.Paths.Count()} trainable tensors as they were: {string.Join(", ", unchanged.Take(5))}.");
    }
}
