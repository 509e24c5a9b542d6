using BenchmarkDotNet.Attributes;
using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Benchmarks;

/// <summary>Convolution forward, backward and the parameter gradients alone, on one thread and on every core.</summary>
[MemoryDiagnoser]
public class ConvBenchmarks
{
    private Tensor _x = null!, _w = null!, _b = null!, _dy = null!;
    private ConvGeometry _g = null!;

    [ParamsSource(nameof(Cases))]
    public ConvCase Case { get; set; } = null!;

    public static IEnumerable<ConvCase> Cases => ConvCase.All;

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var c = Case;
        _g = c.Geometry;
        _x = Data.Tensor(1, c.N, c.C, c.H, c.W);
        _w = Data.Tensor(2, c.K, c.C, c.Kernel, c.Kernel);
        _b = Data.Tensor(3, c.K);
        _dy = Data.Tensor(4, c.N, c.K, c.OutH, c.OutW);
        BatchParallel.Workers = Threads;
        Gemm.Threads = Threads;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        BatchParallel.Workers = Environment.ProcessorCount;
        Gemm.Threads = Environment.ProcessorCount;
    }

    [Benchmark]
    public Tensor Forward() => ConvKernel.Forward(_x, _w, _b, _g);

    [Benchmark]
    public ConvGradients Backward() => ConvKernel.Backward(_x, _w, true, _dy, _g);

    /// <summary>A first layer's backward pass: weight and bias gradients, no input gradient.</summary>
    [Benchmark]
    public (Tensor, Tensor?) ParameterGradients() => ConvKernel.ParameterGradients(_x, _w, true, _dy, _g);
}
