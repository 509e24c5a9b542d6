using BenchmarkDotNet.Attributes;
using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Benchmarks;

/// <summary>2-d max and average pooling, forward and backward, on the pooling layers of the zoo's small networks.</summary>
[MemoryDiagnoser]
public class PoolBenchmarks
{
    private Tensor _x = null!, _dy = null!;
    private PoolResult _max = null!;
    private Window2d _g;

    /// <summary>N, C, H, W, kernel, stride.</summary>
    [Params("64,30,24,24,2,2", "64,32,30,30,2,2", "64,6,28,28,2,2", "32,64,56,56,3,2")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var v = Shape.Split(',').Select(int.Parse).ToArray();
        _g = new Window2d(v[4], v[4], v[5], v[5], 0, 0);
        _x = Data.Tensor(1, v[0], v[1], v[2], v[3]);
        _max = MaxPool2dKernel.Forward(_x, _g);
        _dy = Data.Tensor(2, _max.Output.Shape.ToArray());
    }

    [Benchmark]
    public PoolResult MaxForward() => MaxPool2dKernel.Forward(_x, _g);

    [Benchmark]
    public Tensor MaxBackward() => MaxPool2dKernel.Backward(_dy, _max.ArgMax, _x.Shape);

    [Benchmark]
    public Tensor AverageForward() => AvgPool2dKernel.Forward(_x, _g, false, true);

    [Benchmark]
    public Tensor AverageBackward() => AvgPool2dKernel.Backward(_dy, _x.Shape, _g, false, true);
}
