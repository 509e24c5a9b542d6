using BenchmarkDotNet.Attributes;
using Cnn.Core.Kernels;

namespace Cnn.Benchmarks;

/// <summary>im2col (unfold) and col2im (fold-add) of one image of each convolution shape.</summary>
[MemoryDiagnoser]
public class ImToColBenchmarks
{
    private float[] _image = [], _cols = [], _dx = [];
    private int[] _spatial = [];
    private ConvGeometry _g = null!;

    [ParamsSource(nameof(Cases))]
    public ConvCase Case { get; set; } = null!;

    public static IEnumerable<ConvCase> Cases => ConvCase.All;

    [GlobalSetup]
    public void Setup()
    {
        var c = Case;
        _g = c.Geometry;
        _spatial = new[] { c.H, c.W };
        _image = Data.Uniform(c.C * c.H * c.W, 1);
        _dx = new float[_image.Length];
        _cols = new float[c.C * c.Kernel * c.Kernel * c.OutH * c.OutW];
    }

    [Benchmark]
    public void Unfold() => ImToCol.Unfold(_image, Case.C, _spatial, _g, _cols);

    [Benchmark]
    public void FoldAdd() => ImToCol.FoldAdd(_cols, Case.C, _spatial, _g, _dx);
}
