using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>The window along one spatial axis of a random convolution, and the input's size there.</summary>
public sealed record ConvAxis(int Size, int K, int S, int PadBegin, int PadEnd, int D)
{
    /// <summary>The dilated kernel's extent.</summary>
    public int Extent => D * (K - 1) + 1;

    /// <summary>The output size (floored).</summary>
    public int Out => (Size + PadBegin + PadEnd - Extent) / S + 1;

    /// <summary>Whether the last input rows go unused because the strided window does not tile the padded input.</summary>
    public bool DoesNotTile => (Size + PadBegin + PadEnd - Extent) % S != 0;

    /// <summary>
    /// Kernel 1..<paramref name="maxK"/>, stride 1..3, dilation mostly 1 (2..3 one time in four), padding 0..2 before
    /// and, one time in three, independently 0..2 after (else the same), input size from the smallest that gives an
    /// output up to <paramref name="maxSize"/>.
    /// </summary>
    public static Gen<ConvAxis> Generator(int maxSize, int maxK) =>
        from k in Gen.Choose(1, maxK)
        from s in Gen.Choose(1, 3)
        from d in Gen.Frequency((3, Gen.Constant(1)), (1, Gen.Choose(2, 3)))
        from pb in Gen.Choose(0, 2)
        from pe in Gen.Frequency((2, Gen.Constant(pb)), (1, Gen.Choose(0, 2)))
        let min = Math.Max(1, d * (k - 1) + 1 - pb - pe)
        from size in Gen.Choose(min, Math.Max(min, maxSize))
        select new ConvAxis(size, k, s, pb, pe, d);

    /// <summary>A 1-tap, stride-1, unpadded axis: with every axis like this the convolution skips im2col.</summary>
    public static Gen<ConvAxis> Pointwise(int maxSize) =>
        from size in Gen.Choose(1, maxSize)
        from d in Gen.Choose(1, 2)
        select new ConvAxis(size, 1, 1, 0, 0, d);
}

/// <summary>One random N-d convolution problem: batch, channels in groups, filters, one <see cref="ConvAxis"/> per spatial axis, and the seed of its data.</summary>
public sealed record ConvNdCase(int N, int Groups, int CPerGroup, int FPerGroup, ConvAxis[] Axes, bool Bias, int Seed)
{
    /// <summary>Input channels.</summary>
    public int C => Groups * CPerGroup;

    /// <summary>Filters.</summary>
    public int F => Groups * FPerGroup;

    /// <summary>The number of spatial axes.</summary>
    public int Rank => Axes.Length;

    /// <summary>The geometry under test.</summary>
    public ConvGeometry Geometry => ConvGeometry.Create(
        Axes.Select(a => a.K).ToArray(), Axes.Select(a => a.S).ToArray(), Axes.Select(a => a.PadBegin).ToArray(),
        Axes.Select(a => a.PadEnd).ToArray(), Axes.Select(a => a.D).ToArray(), Groups);

    /// <summary>Input dimensions <c>[N, C, spatial...]</c>.</summary>
    public int[] XDims => new[] { N, C }.Concat(Axes.Select(a => a.Size)).ToArray();

    /// <summary>Weight dimensions <c>[F, C/groups, kernel...]</c>.</summary>
    public int[] WDims => new[] { F, CPerGroup }.Concat(Axes.Select(a => a.K)).ToArray();

    /// <summary>Output dimensions <c>[N, F, out...]</c>.</summary>
    public int[] YDims => new[] { N, F }.Concat(Axes.Select(a => a.Out)).ToArray();

    /// <summary>Whether every axis is 1-tap, stride 1 and unpadded (the no-im2col path).</summary>
    public bool Pointwise => Axes.All(a => a.K == 1 && a.S == 1 && a.PadBegin == 0 && a.PadEnd == 0);

    /// <summary>
    /// Spatial rank 1..3 (sizes up to 16, 9 and 6, kernels up to 5, 4 and 3 per axis), batch 1..4, and one of: dense
    /// (1 group, 1..4 channels and filters), grouped (2..3 groups of 1..3 channels and filters), or depthwise (groups =
    /// channels = 2..4, 1..2 filters per channel). One case in five is pointwise (1x1, stride 1, unpadded, maybe dilated).
    /// </summary>
    public static Gen<ConvNdCase> Generator(int minRank = 1, int maxRank = 3) =>
        from rank in Gen.Choose(minRank, maxRank)
        from pointwise in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
        let maxSize = rank switch { 1 => 16, 2 => 9, _ => 6 }
        let maxK = rank switch { 1 => 5, 2 => 4, _ => 3 }
        let axis = pointwise ? ConvAxis.Pointwise(maxSize) : ConvAxis.Generator(maxSize, maxK)
        from a0 in axis
        from a1 in axis
        from a2 in axis
        from grouping in ConvNdCase.Grouping
        from n in Gen.Choose(1, 4)
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ConvNdCase(n, grouping.Item1, grouping.Item2, grouping.Item3, new[] { a0, a1, a2 }[..rank], bias, seed);

    /// <summary>
    /// Groups, input and output channels per group: mostly ungrouped, sometimes grouped with several channels a group,
    /// sometimes depthwise-like (one input channel a group). Shared by the direct and the transposed convolution cases.
    /// </summary>
    public static Gen<(int Groups, int CPerGroup, int FPerGroup)> Grouping { get; } = Gen.Frequency(
        (3, from c in Gen.Choose(1, 4) from f in Gen.Choose(1, 4) select (1, c, f)),
        (1, from g in Gen.Choose(2, 3) from c in Gen.Choose(1, 3) from f in Gen.Choose(1, 3) select (g, c, f)),
        (1, from g in Gen.Choose(2, 4) from f in Gen.Choose(1, 2) select (g, 1, f)));

    /// <summary>Prints the axes in full (a record prints arrays as their type name).</summary>
    public override string ToString() =>
        $"ConvNdCase {{ N = {N}, Groups = {Groups}, C = {C}, F = {F}, Axes = [{string.Join(", ", Axes.Select(a => a.ToString()))}], Bias = {Bias}, Seed = {Seed} }}";
}

/// <summary>
/// ConvKernel and ImToCol against TorchSharp's conv1d/conv2d/conv3d (asymmetric padding as F.pad, then an unpadded
/// convolution), their autograd, and unfold/fold; a golden 2-d case from a textbook.
/// </summary>
public sealed class ConvNdProperties
{
    /// <summary>
    /// |a-b| &lt;= 1e-5 + 1e-4 max|b|: each output is a float32 sum of up to C/groups * taps = 3*27 products (dX: up to
    /// F/groups * taps; dW and db: up to N * outputs = 4 * 10^3 for 3-d) that LibTorch adds in another order, and the sum of
    /// uniform [-1, 1) terms cancels, so the bound scales with the largest reference value, not with each element.
    /// </summary>
    private const double Atol = 1e-5, Rtol = 1e-4;

    private static readonly Arbitrary<ConvNdCase> Cases = ConvNdCase.Generator().ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = ConvNdCase.Generator().Sample(3000, 50);
        foreach (var rank in new[] { 1, 2, 3 }) Assert.Contains(cases, c => c.Rank == rank);
        Assert.Contains(cases, c => c.N == 1);
        Assert.Contains(cases, c => c.N == 4);
        Assert.Contains(cases, c => c.Groups == 1 && c.C == 1);
        Assert.Contains(cases, c => c.Groups > 1 && c.CPerGroup > 1);
        Assert.Contains(cases, c => c.Groups == c.C && c.C > 1);
        Assert.Contains(cases, c => c.Groups == c.C && c.FPerGroup == 2);
        Assert.Contains(cases, c => c.Rank == 2 && c.Axes[0].K == 1 && c.Axes[1].K > 1);
        Assert.Contains(cases, c => c.Rank == 2 && c.Axes[0].K > 1 && c.Axes[1].K == 1);
        Assert.Contains(cases, c => c.Rank == 3 && c.Axes.Select(a => a.K).Distinct().Count() == 3);
        Assert.Contains(cases, c => c.Axes.Any(a => a.D > 1 && a.K > 1));
        Assert.Contains(cases, c => c.Axes.Any(a => a.PadBegin != a.PadEnd));
        Assert.Contains(cases, c => c.Axes.Any(a => a.PadBegin >= a.K));
        Assert.Contains(cases, c => c.Axes.Any(a => a.S == 3));
        Assert.Contains(cases, c => c.Axes.Any(a => a.DoesNotTile));
        Assert.Contains(cases, c => c.Axes.Any(a => a.Size % 2 == 1 && a.Size > 1));
        Assert.Contains(cases, c => c.Axes.All(a => a.Out == 1));
        Assert.Contains(cases, c => c.Pointwise && c.Rank == 1);
        Assert.Contains(cases, c => c.Pointwise && c.Rank == 3);
        Assert.Contains(cases, c => !c.Bias);
    }

    [Property(MaxTest = 150)]
    public Property Forward_matches_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.XDims);
        var w = RandomTensor(rng, 1f, c.WDims);
        var b = c.Bias ? RandomTensor(rng, 1f, c.F) : null;

        var y = ConvKernel.Forward(x, w, b, c.Geometry);

        Close(y, TorchConv(c, T(x), T(w), b is null ? null : T(b)), Atol, Rtol, $"conv{c.Rank}d forward");
    }));

    [Property(MaxTest = 150)]
    public Property Backward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() => BackwardMatchesTorch(c)));

    /// <summary>
    /// A 3-d window whose depth axis is one plane, one tap, and padded (here 1 on each side, stride 3): its one output plane
    /// reads the padding, so every output is the bias and every gradient but db is zero. The 2-d column layout once took it
    /// for a 2-d window and read the input's plane (found by the property above, one draw in a few thousand).
    /// </summary>
    [Fact]
    public void A_padded_depth_axis_of_one_plane_reads_only_padding()
    {
        var c = new ConvNdCase(2, 1, 1, 4, new[] { new ConvAxis(1, 1, 3, 1, 1, 3), new ConvAxis(3, 3, 3, 2, 2, 1), new ConvAxis(20, 1, 1, 0, 0, 3) }, true, 374833002);
        Scoped(() =>
        {
            var rng = new Random(c.Seed);
            var x = RandomTensor(rng, 1f, c.XDims);
            var w = RandomTensor(rng, 1f, c.WDims);
            var b = RandomTensor(rng, 1f, c.F);
            Close(ConvKernel.Forward(x, w, b, c.Geometry), TorchConv(c, T(x), T(w), T(b)), Atol, Rtol, "conv3d forward");
        });
        Scoped(() => BackwardMatchesTorch(c));
    }

    private static void BackwardMatchesTorch(ConvNdCase c)
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.XDims);
        var w = RandomTensor(rng, 1f, c.WDims);
        var b = c.Bias ? RandomTensor(rng, 1f, c.F) : null;
        var dy = RandomTensor(rng, 1f, c.YDims);

        var grads = ConvKernel.Backward(x, w, c.Bias, dy, c.Geometry);

        var tx = T(x, requiresGrad: true);
        var tw = T(w, requiresGrad: true);
        var tb = b is null ? null : T(b, requiresGrad: true);
        TorchConv(c, tx, tw, tb).backward(new[] { T(dy) });
        Close(grads.Input, Grad(tx), Atol, Rtol, $"conv{c.Rank}d dx");
        Close(grads.Weight, Grad(tw), Atol, Rtol, $"conv{c.Rank}d dW");
        if (tb is null) Assert.Null(grads.Bias);
        else Close(grads.Bias ?? throw new Xunit.Sdk.XunitException("db missing"), Grad(tb), Atol, Rtol, $"conv{c.Rank}d db");
    }

    /// <summary>
    /// 2-d unfold only copies (or writes padding zeros), so it must equal torch's unfold of the explicitly padded image
    /// bit for bit, and write nothing past the column matrix.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property ImToCol_unfold_matches_torch_unfold() => Prop.ForAll(ConvNdCase.Generator(2, 2).ToArbitrary(), c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, 1, c.C, c.Axes[0].Size, c.Axes[1].Size);
        int rows = c.C * c.Axes[0].K * c.Axes[1].K, cols = c.Axes[0].Out * c.Axes[1].Out;
        var buffer = new float[rows * cols + 3];
        Array.Fill(buffer, float.NaN);

        ImToCol.Unfold(x.Span, c.C, new[] { c.Axes[0].Size, c.Axes[1].Size }, c.Geometry, buffer);

        var (h, w) = (c.Axes[0], c.Axes[1]);
        var expected = unfold(Pad(T(x), c), (h.K, w.K), dilation: (h.D, w.D), stride: (h.S, w.S));
        Exact(Tensor.FromArray(buffer[..(rows * cols)], 1, rows, cols), expected, "unfold");
        Assert.All(buffer[(rows * cols)..], v => Assert.True(float.IsNaN(v), "Unfold wrote past the column matrix."));
    }));

    /// <summary>
    /// FoldAdd is the adjoint of unfold: torch's fold onto the padded image, padding cropped. Each image element is a sum
    /// of at most KH*KW column entries added to what was there: |a-b| &lt;= 1e-6 + 1e-5 max|b|.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property ImToCol_fold_add_matches_torch_fold() => Prop.ForAll(ConvNdCase.Generator(2, 2).ToArbitrary(), c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var (h, w) = (c.Axes[0], c.Axes[1]);
        int rows = c.C * h.K * w.K, cols = h.Out * w.Out;
        var columns = RandomTensor(rng, 1f, 1, rows, cols);
        var initial = RandomTensor(rng, 1f, 1, c.C, h.Size, w.Size);
        var dx = initial.ToArray();

        ImToCol.FoldAdd(columns.Span, c.C, new[] { h.Size, w.Size }, c.Geometry, dx);

        var folded = fold(T(columns), (h.Size + h.PadBegin + h.PadEnd, w.Size + w.PadBegin + w.PadEnd), (h.K, w.K), dilation: (h.D, w.D), stride: (h.S, w.S));
        var expected = T(initial) + folded.narrow(2, h.PadBegin, h.Size).narrow(3, w.PadBegin, w.Size);
        Close(Tensor.FromArray(dx, 1, c.C, h.Size, w.Size), expected, 1e-6, 1e-5, "fold-add");
    }));

    /// <summary>1-d, 2-d and 3-d unfold against the definition, index by index: exact, and nothing written past the matrix.</summary>
    [Property(MaxTest = 100)]
    public Property ImToCol_unfold_matches_the_definition() => Prop.ForAll(Cases, c =>
    {
        var rng = new Random(c.Seed);
        var x = Uniform(rng, c.C * c.Axes.Aggregate(1, (p, a) => p * a.Size));
        int rows = c.C * c.Axes.Aggregate(1, (p, a) => p * a.K), cols = c.Axes.Aggregate(1, (p, a) => p * a.Out);
        var buffer = new float[rows * cols + 3];
        Array.Fill(buffer, float.NaN);

        ImToCol.Unfold(x, c.C, c.Axes.Select(a => a.Size).ToArray(), c.Geometry, buffer);

        var expected = new float[rows * cols];
        foreach (var (row, col, src) in Taps(c)) expected[row * cols + col] = src < 0 ? 0f : x[src];
        Assert.Equal(expected, buffer[..(rows * cols)]);
        Assert.All(buffer[(rows * cols)..], v => Assert.True(float.IsNaN(v), "Unfold wrote past the column matrix."));
    });

    /// <summary>
    /// 1-d, 2-d and 3-d fold-add against the definition, summed in double: each image element gets at most 5 (1-d),
    /// 16 (2-d) or 27 (3-d) float32 terms, |a-b| &lt;= 1e-6 + 1e-5 max|b|.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property ImToCol_fold_add_matches_the_definition() => Prop.ForAll(Cases, c =>
    {
        var rng = new Random(c.Seed);
        int size = c.C * c.Axes.Aggregate(1, (p, a) => p * a.Size);
        int rows = c.C * c.Axes.Aggregate(1, (p, a) => p * a.K), cols = c.Axes.Aggregate(1, (p, a) => p * a.Out);
        var columns = Uniform(rng, rows * cols);
        var dx = Uniform(rng, size);
        var expected = dx.Select(v => (double)v).ToArray();

        ImToCol.FoldAdd(columns, c.C, c.Axes.Select(a => a.Size).ToArray(), c.Geometry, dx);

        foreach (var (row, col, dst) in Taps(c))
            if (dst >= 0) expected[dst] += columns[row * cols + col];
        Close(dx, expected.Select(v => (float)v).ToArray(), 1e-6, 1e-5, "fold-add");
    });

    /// <summary>
    /// "Deep Learning from Scratch" (Saito), section 7.2: a 4x4 input and a 3x3 filter give [[15, 16], [6, 15]], and a
    /// bias of 3 gives [[18, 19], [9, 18]]. With stride 1 and padding 1 the output is 4x4; its corners are checked by hand.
    /// </summary>
    [Fact]
    public void Golden_textbook_convolution()
    {
        var x = Tensor.FromArray(new float[] { 1, 2, 3, 0, 0, 1, 2, 3, 3, 0, 1, 2, 2, 3, 0, 1 }, 1, 1, 4, 4);
        var w = Tensor.FromArray(new float[] { 2, 0, 1, 0, 1, 2, 1, 0, 2 }, 1, 1, 3, 3);
        var g = ConvGeometry.Create(new[] { 3, 3 });

        Assert.Equal(new float[] { 15, 16, 6, 15 }, ConvKernel.Forward(x, w, null, g).ToArray());
        Assert.Equal(new float[] { 18, 19, 9, 18 }, ConvKernel.Forward(x, w, Tensor.FromArray(new float[] { 3 }, 1), g).ToArray());
        Assert.Equal(new float[] { 15, 16, 6, 15 }, Conv2dKernel.Forward(x, w, null, new Window2d(3, 3)).ToArray());

        // Padding 1: top-left sees x[0..1, 0..1] under w[1..2, 1..2]: 1*1 + 2*2 + 0*0 + 1*2 = 7;
        // bottom-right sees x[2..3, 2..3] under w[0..1, 0..1]: 1*2 + 2*0 + 0*0 + 1*1 = 3.
        var padded = ConvKernel.Forward(x, w, null, ConvGeometry.Create(new[] { 3, 3 }, padBegin: new[] { 1, 1 }, padEnd: new[] { 1, 1 }));
        Assert.Equal(new Shape(1, 1, 4, 4), padded.Shape);
        Assert.Equal(7f, padded[0]);
        Assert.Equal(15f, padded[5]);
        Assert.Equal(3f, padded[15]);

        // The backward of the same case: with dy = 1 everywhere, dW[i, j] is the sum of the 2x2 block of x at (i, j).
        var grads = ConvKernel.Backward(x, w, true, Tensor.Full(new Shape(1, 1, 2, 2), 1f), g);
        Assert.Equal(new float[] { 4, 8, 8, 4, 4, 8, 8, 4, 4 }, grads.Weight.ToArray());
        Assert.Equal(new float[] { 4 }, grads.Bias!.ToArray());
    }

    [Fact]
    public void Geometry_defaults_equality_and_output_size()
    {
        var g = ConvGeometry.Create(new[] { 3, 2 });
        Assert.Equal(new[] { 1, 1 }, g.Stride);
        Assert.Equal(new[] { 0, 0 }, g.PadBegin);
        Assert.Equal(new[] { 0, 0 }, g.PadEnd);
        Assert.Equal(new[] { 1, 1 }, g.Dilation);
        Assert.Equal(1, g.Groups);
        Assert.Equal(ConvGeometry.Create(new List<int> { 3, 2 }), g);
        Assert.Equal(ConvGeometry.Create(new List<int> { 3, 2 }).GetHashCode(), g.GetHashCode());
        Assert.NotEqual(ConvGeometry.Create(new[] { 3, 2 }, dilation: new[] { 1, 2 }), g);
        Assert.NotEqual(ConvGeometry.Create(new[] { 3, 2 }, groups: 2), g);
        Assert.Equal(ConvGeometry.From(new Window2d(3, 2, 2, 1, 1, 0)), ConvGeometry.Create(new[] { 3, 2 }, new[] { 2, 1 }, new[] { 1, 0 }, new[] { 1, 0 }));

        // (10 + 1 + 2 - 2*(3-1) - 1)/2 + 1 = 5 (8/2 + 1); (7 + 0 + 0 - 1*(2-1) - 1)/3 + 1 = 2 (5/3 floored, + 1).
        var h = ConvGeometry.Create(new[] { 3, 2 }, new[] { 2, 3 }, new[] { 1, 0 }, new[] { 2, 0 }, new[] { 2, 1 });
        Assert.Equal(new[] { 5, 2 }, h.OutputSize(new[] { 10, 7 }));
        Assert.Contains("Kernel = [3, 2]", h.ToString());

        Assert.Throws<ShapeException>(() => ConvGeometry.Create(new[] { 3, 3, 3, 3 }));
        Assert.Throws<ShapeException>(() => ConvGeometry.Create(new[] { 3 }, stride: new[] { 0 }));
        Assert.Throws<ShapeException>(() => ConvGeometry.Create(new[] { 3 }, padEnd: new[] { -1 }));
        Assert.Throws<ShapeException>(() => ConvGeometry.Create(new[] { 3 }, dilation: new[] { 1, 1 }));
        Assert.Throws<ShapeException>(() => ConvGeometry.Create(new[] { 3 }, groups: 0));
        var tooSmall = Assert.Throws<ShapeException>(() => ConvGeometry.Create(new[] { 3 }, dilation: new[] { 2 }).OutputSize(new[] { 4 }));
        Assert.Contains("(4 + 0 + 0 - 2*(3-1) - 1)/1 + 1", tooSmall.Message);
    }

    [Fact]
    public void Mismatched_shapes_are_rejected_with_the_shapes()
    {
        var g = ConvGeometry.Create(new[] { 3 }, groups: 2);
        var x = Tensor.Zeros(2, 4, 9);
        Assert.Throws<ShapeException>(() => ConvKernel.Forward(Tensor.Zeros(2, 4, 9, 9), Tensor.Zeros(6, 2, 3), null, g));
        Assert.Throws<ShapeException>(() => ConvKernel.Forward(Tensor.Zeros(2, 3, 9), Tensor.Zeros(6, 1, 3), null, g));
        var badWeight = Assert.Throws<ShapeException>(() => ConvKernel.Forward(x, Tensor.Zeros(5, 2, 3), null, g));
        Assert.Contains("[5, 2, 3]", badWeight.Message);
        Assert.Throws<ShapeException>(() => ConvKernel.Forward(x, Tensor.Zeros(6, 4, 3), null, g));
        Assert.Throws<ShapeException>(() => ConvKernel.Forward(x, Tensor.Zeros(6, 2, 3), Tensor.Zeros(5), g));
        Assert.Throws<ShapeException>(() => ConvKernel.Backward(x, Tensor.Zeros(6, 2, 3), false, Tensor.Zeros(2, 6, 8), g));
        Assert.Equal(new Shape(2, 6, 7), ConvKernel.Forward(x, Tensor.Zeros(6, 2, 3), null, g).Shape);
    }

    private static TorchTensor TorchConv(ConvNdCase c, TorchTensor x, TorchTensor w, TorchTensor? b)
    {
        var p = Pad(x, c);
        long[] s = c.Axes.Select(a => (long)a.S).ToArray(), d = c.Axes.Select(a => (long)a.D).ToArray();
        return c.Rank switch
        {
            1 => conv1d(p, w, b, stride: s[0], dilation: d[0], groups: c.Groups),
            2 => conv2d(p, w, b, strides: s, dilation: d, groups: c.Groups),
            _ => conv3d(p, w, b, strides: s, dilation: d, groups: c.Groups),
        };
    }

    // F.pad takes (before, after) pairs from the last axis to the first.
    private static TorchTensor Pad(TorchTensor x, ConvNdCase c) =>
        pad(x, c.Axes.Reverse().SelectMany(a => new long[] { a.PadBegin, a.PadEnd }).ToArray());

    /// <summary>
    /// Every (column-matrix row, column, flat image index or -1 for padding) of one image, from the definition:
    /// row (channel, taps...), column (outputs...), image index o*stride - padBegin + tap*dilation on each axis.
    /// </summary>
    private static IEnumerable<(int Row, int Col, int Src)> Taps(ConvNdCase c)
    {
        int rank = c.Rank;
        int taps = c.Axes.Aggregate(1, (p, a) => p * a.K), outs = c.Axes.Aggregate(1, (p, a) => p * a.Out);
        int plane = c.Axes.Aggregate(1, (p, a) => p * a.Size);
        var tap = new int[rank];
        var o = new int[rank];
        for (int ch = 0; ch < c.C; ch++)
            for (int t = 0; t < taps; t++)
            {
                Unflatten(t, c.Axes.Select(a => a.K).ToArray(), tap);
                for (int col = 0; col < outs; col++)
                {
                    Unflatten(col, c.Axes.Select(a => a.Out).ToArray(), o);
                    int src = 0;
                    for (int a = 0; a < rank && src >= 0; a++)
                    {
                        var ax = c.Axes[a];
                        int i = o[a] * ax.S - ax.PadBegin + tap[a] * ax.D;
                        src = i < 0 || i >= ax.Size ? -1 : src * ax.Size + i;
                    }
                    yield return (ch * taps + t, col, src < 0 ? -1 : ch * plane + src);
                }
            }
    }

    private static void Unflatten(int flat, int[] dims, int[] index)
    {
        for (int a = dims.Length - 1; a >= 0; a--)
        {
            index[a] = flat % dims[a];
            flat /= dims[a];
        }
    }
}
