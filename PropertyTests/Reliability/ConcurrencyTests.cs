using Cnn.Core;
using Cnn.Dsl;
using Xunit;

namespace Cnn.Tests.Reliability;

public class ConcurrencyTests
{
    /// <summary>
    /// Inference shares nothing mutable: 16 threads calling apply on one model, thousands of times in all,
    /// each get exactly the single-threaded result (kernels split work by batch deterministically, and the
    /// GEMM's worker and buffer pools are per call or per thread).
    /// </summary>
    [Fact]
    public void SixteenThreadsServingOneModelGetTheSingleThreadedResults()
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 3);
        var rng = new Random(5);
        var inputs = Enumerable.Range(0, 8).Select(i =>
            Tensor.FromArray(Enumerable.Range(0, (1 + i % 3) * 784).Select(_ => (float)rng.NextDouble()).ToArray(), 1 + i % 3, 1, 28, 28)).ToArray();
        var expected = inputs.Select(x => Apply.Forward(net, p, x).ToArray()).ToArray();
        int mismatches = 0, calls = 0;
        var threads = Enumerable.Range(0, 16).Select(t => new Thread(() =>
        {
            for (int k = 0; k < 125; k++)
            {
                int i = (t + k) % inputs.Length;
                var y = Apply.Forward(net, p, inputs[i]);
                if (!y.Span.SequenceEqual(expected[i])) Interlocked.Increment(ref mismatches);
                Interlocked.Increment(ref calls);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(16 * 125, calls);
        Assert.Equal(0, mismatches);
    }
}
