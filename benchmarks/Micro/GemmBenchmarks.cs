using BenchmarkDotNet.Attributes;
using Cnn.Core.Kernels;

namespace Cnn.Benchmarks;

/// <summary>Square products at each instruction set the CPU has, on one thread and on every core.</summary>
[MemoryDiagnoser]
public class GemmBenchmarks
{
    private float[] _a = [], _b = [], _c = [];

    [Params(64, 256, 512, 1024, 2048)]
    public int Size { get; set; }

    [Params(1, 0)]
    public int Threads { get; set; }

    [Params(GemmInstructionSet.Auto, GemmInstructionSet.Vector256)]
    public GemmInstructionSet Isa { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _a = Data.Uniform(Size * Size, 1);
        _b = Data.Uniform(Size * Size, 2);
        _c = new float[Size * Size];
    }

    [Benchmark]
    public void Multiply() => Gemm.Multiply(false, false, Size, Size, Size, _a, _b, _c, false, new GemmOptions { InstructionSet = Isa, Threads = Threads });

    /// <summary>The transposes convolution backward uses: dW = dY x cols^T and dcols = W^T x dY.</summary>
    [Benchmark]
    public void MultiplyTransposedB() => Gemm.Multiply(false, true, Size, Size, Size, _a, _b, _c, false, new GemmOptions { InstructionSet = Isa, Threads = Threads });

    [Benchmark]
    public void MultiplyTransposedA() => Gemm.Multiply(true, false, Size, Size, Size, _a, _b, _c, false, new GemmOptions { InstructionSet = Isa, Threads = Threads });
}
