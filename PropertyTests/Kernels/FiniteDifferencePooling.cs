using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Kernels;

/// <summary>The finite-difference check of the pooling kernels (max on distinct values, average, global and channel pooling).</summary>
public sealed partial class FiniteDifferenceProperties
{
    // ---------------------------------------------------------------- pooling

    /// <summary>Max pooling 2d on distinct values (no ties, no change of winner): the outputs are copies, so exact.</summary>
    [CnnProperty]
    public Property Max_pool_2d() => Prop.ForAll(PoolCase.Generator.ToArbitrary(), c =>
    {
        var (x, eps) = Distinct(c.Seed, new[] { c.N, c.C, c.H, c.W });
        var arg = MaxPool2dKernel.Forward(x, c.Window).ArgMax;
        Check($"max_pool2d {c}", c.Seed, new[] { x }, new[] { eps },
            a => MaxPool2dKernel.Forward(a[0], c.Window).Output,
            r => new[] { MaxPool2dKernel.Backward(r, arg, x.Shape) }, 1e-6, 1e-7);
    });

    /// <summary>Max pooling 2d in ceil mode (windows overhanging the padded input), as <see cref="Max_pool_2d"/>.</summary>
    [CnnProperty]
    public Property Max_pool_2d_ceil_mode() => Prop.ForAll(Pool2dCase.Generator.ToArbitrary(), c =>
    {
        var (x, eps) = Distinct(c.Seed, new[] { c.N, c.C, c.H, c.W });
        var arg = MaxPool2dKernel.Forward(x, c.Window, c.Ceil).ArgMax;
        Check($"max_pool2d ceil {c}", c.Seed, new[] { x }, new[] { eps },
            a => MaxPool2dKernel.Forward(a[0], c.Window, c.Ceil).Output,
            r => new[] { MaxPool2dKernel.Backward(r, arg, x.Shape) }, 1e-6, 1e-7);
    });

    /// <summary>
    /// Average pooling 2d (ceil mode, both divisor rules): linear, step 0.1; each output is a float32 sum of at most 16
    /// values divided once: floor 1e-6.
    /// </summary>
    [CnnProperty]
    public Property Avg_pool_2d() => Prop.ForAll(Pool2dCase.Generator.ToArbitrary(), c =>
    {
        var x = Uniformly(c.Seed, 1f, c.N, c.C, c.H, c.W);
        Check($"avg_pool2d {c}", c.Seed, new[] { x }, new[] { 0.1 },
            a => AvgPool2dKernel.Forward(a[0], c.Window, c.Ceil, c.CountIncludePad),
            r => new[] { AvgPool2dKernel.Backward(r, x.Shape, c.Window, c.Ceil, c.CountIncludePad) }, 1e-4, 1e-6);
    });

    /// <summary>Max pooling 1d/2d/3d (dilated too) on distinct values: exact, as <see cref="Max_pool_2d"/>.</summary>
    [CnnProperty]
    public Property Max_pool_nd() => Prop.ForAll(PoolNdCase.Generator(dilated: true).ToArbitrary(), c =>
    {
        var (x, eps) = Distinct(c.Seed, c.XDims);
        var arg = PoolNdKernel.MaxForward(x, c.Geometry).ArgMax;
        Check($"max_pool_nd {c}", c.Seed, new[] { x }, new[] { eps },
            a => PoolNdKernel.MaxForward(a[0], c.Geometry).Output,
            r => new[] { PoolNdKernel.MaxBackward(r, arg, x.Shape) }, 1e-6, 1e-7);
    });

    /// <summary>Average pooling 1d/2d/3d (both divisor rules): linear, step 0.1, floor 1e-6 (at most 125 values a window).</summary>
    [CnnProperty]
    public Property Avg_pool_nd() => Prop.ForAll(PoolNdCase.Generator(dilated: false).ToArbitrary(), c =>
    {
        var x = Uniformly(c.Seed, 1f, c.XDims);
        Check($"avg_pool_nd {c}", c.Seed, new[] { x }, new[] { 0.1 },
            a => PoolNdKernel.AverageForward(a[0], c.Geometry, c.CountIncludePad),
            r => new[] { PoolNdKernel.AverageBackward(r, x.Shape, c.Geometry, c.CountIncludePad) }, 1e-4, 1e-6);
    });

    private static readonly Arbitrary<ReducePoolCase> GlobalCases = ReducePoolCase.Generator.Where(c => c.Dims.Length >= 3).ToArbitrary();

    /// <summary>Global average pooling: linear, step 0.1, floor 1e-6 (planes of at most 216 values).</summary>
    [CnnProperty]
    public Property Global_avg_pool() => Prop.ForAll(GlobalCases, c =>
    {
        var x = Uniformly(c.Seed, 1f, c.Dims);
        Check($"global avg {c}", c.Seed, new[] { x }, new[] { 0.1 },
            a => GlobalPoolKernel.AverageForward(a[0]),
            r => new[] { GlobalPoolKernel.AverageBackward(r, x.Shape) }, 1e-4, 1e-6);
    });

    /// <summary>Global max pooling on distinct values: exact.</summary>
    [CnnProperty]
    public Property Global_max_pool() => Prop.ForAll(GlobalCases, c =>
    {
        var (x, eps) = Distinct(c.Seed, c.Dims);
        var arg = GlobalPoolKernel.MaxForward(x).ArgMax;
        Check($"global max {c}", c.Seed, new[] { x }, new[] { eps },
            a => GlobalPoolKernel.MaxForward(a[0]).Output,
            r => new[] { GlobalPoolKernel.MaxBackward(r, arg, x.Shape) }, 1e-6, 1e-7);
    });

    /// <summary>Max pooling across channels on distinct values: exact.</summary>
    [CnnProperty]
    public Property Channel_max_pool() => Prop.ForAll(ReducePoolCase.Generator.ToArbitrary(), c =>
    {
        var (x, eps) = Distinct(c.Seed, c.Dims);
        var arg = ChannelMaxPoolKernel.Forward(x, c.Kernel, c.Stride).ArgMax;
        Check($"channel max {c}", c.Seed, new[] { x }, new[] { eps },
            a => ChannelMaxPoolKernel.Forward(a[0], c.Kernel, c.Stride).Output,
            r => new[] { ChannelMaxPoolKernel.Backward(r, arg, x.Shape) }, 1e-6, 1e-7);
    });
}
