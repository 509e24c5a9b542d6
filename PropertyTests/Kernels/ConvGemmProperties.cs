using System.Numerics.Tensors;
using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// One convolution for <see cref="ConvGemmProperties"/>: big enough in filters (more than four per group) to run on
/// <see cref="ConvGemm{TK}"/>, with everything its column layout has to get right: stride 1 read in place, padding and
/// strides staged (stride 2 on the AVX-512 pair path, 3 on the generic one), dilation, windows that do not tile the
/// input, images smaller than a 16-column group (so groups straddle images) and larger than a strip.
/// </summary>
public sealed record ConvGemmCase(int N, int Groups, int CPerGroup, int FPerGroup, ConvAxis H, ConvAxis W, bool Bias, int Seed)
{
    public int C => Groups * CPerGroup;

    public int F => Groups * FPerGroup;

    public ConvGeometry Geometry => ConvGeometry.Create(new[] { H.K, W.K }, new[] { H.S, W.S }, new[] { H.PadBegin, W.PadBegin },
        new[] { H.PadEnd, W.PadEnd }, new[] { H.D, W.D }, Groups);

    public static Gen<ConvGemmCase> Generator =>
        from h in ConvAxis.Generator(20, 5)
        from w in Gen.Frequency((1, ConvAxis.Generator(70, 5)), (3, ConvAxis.Generator(20, 5)))
        from groups in Gen.Frequency((4, Gen.Constant(1)), (1, Gen.Choose(2, 3)))
        from c in Gen.Choose(1, 9)
        from f in Gen.Choose(5, 40)
        from n in Gen.Choose(1, 5)
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ConvGemmCase(n, groups, c, f, h, w, bias, seed);

    public override string ToString() =>
        $"ConvGemmCase {{ N = {N}, Groups = {Groups}, C = {C}, F = {F}, H = {H}, W = {W}, Bias = {Bias}, Seed = {Seed} }}";
}

/// <summary>
/// The convolution with the column matrix packed straight from the image (<see cref="ConvGemm{TK}"/>) against the
/// definition it replaces: im2col (<see cref="ImToCol"/>) and <see cref="Gemm.Multiply(bool, bool, int, int, int, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, bool, GemmOptions)"/>
/// image by image, which it must match bit for bit (the forward output, dW and db; dx too when an image's dcols is folded
/// in one block, which these sizes guarantee up to 256 output positions; beyond, dx is folded block by block and is only
/// close), on every micro-kernel, on the code paths of CPUs without AVX-512, and for any worker count.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class ConvGemmProperties
{
    private static readonly GemmInstructionSet[] Paths =
        new[] { GemmInstructionSet.Vector512, GemmInstructionSet.Vector256, GemmInstructionSet.Scalar }.Where(Gemm.IsSupported).ToArray();

    private sealed record Reference(float[] Y, float[] Dx, float[] Dw, float[] Db);

    /// <summary>im2col and one GEMM per image and group, on one thread; dW and db summed image by image.</summary>
    private static Reference Compute(ConvGemmCase c, Tensor x, Tensor w, Tensor? b, Tensor dy, GemmInstructionSet isa)
    {
        var g = c.Geometry;
        int h = c.H.Size, wd = c.W.Size, outSize = c.H.Out * c.W.Out, rowsG = c.CPerGroup * c.H.K * c.W.K, rows = rowsG * c.Groups;
        int fg = c.FPerGroup, inSize = c.C * h * wd;
        var options = new GemmOptions { Threads = 1, InstructionSet = isa };
        var cols = new float[rows * outSize];
        var dcols = new float[rows * outSize];
        var y = new float[c.N * c.F * outSize];
        var dx = new float[c.N * inSize];
        var dw = new float[c.F * rowsG];
        var db = new float[c.F];
        for (int i = 0; i < c.N; i++)
        {
            ImToCol.Unfold(x.Span.Slice(i * inSize, inSize), c.C, new[] { h, wd }, g, cols);
            var dyi = dy.Span.Slice(i * c.F * outSize, c.F * outSize);
            for (int gi = 0; gi < c.Groups; gi++)
            {
                var wg = w.Span.Slice(gi * fg * rowsG, fg * rowsG);
                var colsG = cols.AsSpan(gi * rowsG * outSize, rowsG * outSize);
                var dyg = dyi.Slice(gi * fg * outSize, fg * outSize);
                Gemm.Multiply(false, false, fg, outSize, rowsG, wg, colsG, y.AsSpan((i * c.F + gi * fg) * outSize, fg * outSize), false, options);
                Gemm.Multiply(false, true, fg, rowsG, outSize, dyg, colsG, dw.AsSpan(gi * fg * rowsG, fg * rowsG), true, options);
                Gemm.Multiply(true, false, rowsG, outSize, fg, wg, dyg, dcols.AsSpan(gi * rowsG * outSize, rowsG * outSize), false, options);
            }
            if (b is not null)
                for (int o = 0; o < c.F; o++)
                {
                    var yo = y.AsSpan((i * c.F + o) * outSize, outSize);
                    TensorPrimitives.Add(yo, b[o], yo);
                }
            ImToCol.FoldAdd(dcols, c.C, new[] { h, wd }, g, dx.AsSpan(i * inSize, inSize));
            for (int o = 0; o < c.F; o++) db[o] += TensorPrimitives.Sum(dyi.Slice(o * outSize, outSize));
        }
        return new Reference(y, dx, dw, db);
    }

    private static (Tensor X, Tensor W, Tensor? B, Tensor Dy) Operands(ConvGemmCase c)
    {
        var rng = new Random(c.Seed);
        return (TorchReference.RandomTensor(rng, 1f, c.N, c.C, c.H.Size, c.W.Size),
            TorchReference.RandomTensor(rng, 1f, c.F, c.CPerGroup, c.H.K, c.W.K),
            c.Bias ? TorchReference.RandomTensor(rng, 1f, c.F) : null,
            TorchReference.RandomTensor(rng, 1f, c.N, c.F, c.H.Out, c.W.Out));
    }

    private static void Same(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                throw new Xunit.Sdk.XunitException($"{what}: element {i} is {actual[i]:R}, im2col and GEMM give {expected[i]:R}.");
    }

    private static bool Run(ConvGemmCase c, GemmInstructionSet isa, bool portable, int workers, bool vector256 = false)
    {
        var (x, w, b, dy) = Operands(c);
        var expected = Compute(c, x, w, b, dy, isa);
        bool saved = ColumnPacker.ForcePortable, saved256 = KernelWidth.ForceVector256, savedDirect = DirectConv.Disabled;
        ColumnPacker.ForcePortable = portable;
        KernelWidth.ForceVector256 = vector256;
        // The GEMM path itself: DirectConvProperties checks the direct kernel that takes stride-1 layers from it.
        DirectConv.Disabled = true;
        try
        {
            WorkerCountCollection.With(workers, () =>
            {
                string where = $"{isa}{(portable ? ", portable" : "")}{(vector256 ? ", AVX2 paths" : "")}, {workers} workers";
                Same(ConvKernel.Forward(x, w, b, c.Geometry, isa).Span, expected.Y, $"y ({where})");
                var (dx, dw, db) = ConvKernel.Gradients(x, w, b is not null, dy, c.Geometry, inputGradient: true, isa);
                if (c.H.Out * c.W.Out <= 256) Same(dx!.Span, expected.Dx, $"dx ({where})");
                else TorchReference.Close(dx!.Span, expected.Dx, 1e-5, 1e-5, $"dx ({where})");
                // dW and db are summed per worker's chunk, then the chunks in order: the reference's order with one.
                if (workers == 1)
                {
                    Same(dw.Span, expected.Dw, $"dW ({where})");
                    if (b is not null) Same(db!.Span, expected.Db, $"db ({where})");
                }
                else TorchReference.Close(dw.Span, expected.Dw, 1e-5, 1e-5, $"dW ({where})");
                var (_, dwOnly, _) = ConvKernel.Gradients(x, w, b is not null, dy, c.Geometry, inputGradient: false, isa);
                Same(dwOnly.Span, dw.Span, $"dW without dx ({where})");
                return 0;
            });
        }
        finally
        {
            ColumnPacker.ForcePortable = saved;
            KernelWidth.ForceVector256 = saved256;
            DirectConv.Disabled = savedDirect;
        }
        return true;
    }

    [Property(MaxTest = 60)]
    public Property Matches_im2col_and_gemm_bit_for_bit_on_every_kernel() => Prop.ForAll(ConvGemmCase.Generator.ToArbitrary(), c =>
        Paths.All(isa => Run(c, isa, portable: false, workers: 1)));

    [Property(MaxTest = 40)]
    public Property Matches_on_the_paths_of_cpus_without_avx512() => Prop.ForAll(ConvGemmCase.Generator.ToArbitrary(), c =>
        Run(c, GemmInstructionSet.Auto, portable: true, workers: 1));

    [Property(MaxTest = 40)]
    public Property Matches_on_the_paths_of_cpus_with_avx2_and_without_avx512() => Prop.ForAll(ConvGemmCase.Generator.ToArbitrary(), c =>
        Run(c, Gemm.Resolve(GemmInstructionSet.Vector256), portable: false, workers: 1, vector256: true)
        && Run(c, Gemm.Resolve(GemmInstructionSet.Vector256), portable: false, workers: 2, vector256: true));

    [Property(MaxTest = 40)]
    public Property Forward_and_dx_do_not_depend_on_the_worker_count() => Prop.ForAll(ConvGemmCase.Generator.ToArbitrary(), c =>
        Run(c, GemmInstructionSet.Auto, portable: false, workers: 2) && Run(c, GemmInstructionSet.Auto, portable: false, workers: 3));

    /// <summary>
    /// One image with more filters than output positions and enough work to share (ResNet's last stages at batch 1): the
    /// forward product is split between the workers by filters, in tiles of the micro-kernel's rows, not by columns.
    /// </summary>
    private static Gen<ConvGemmCase> SplitByFilters =>
        from f in Gen.Choose(100, 200)
        from c in Gen.Choose(24, 40)
        from h in OneImageAxis
        from w in OneImageAxis
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ConvGemmCase(1, 1, c, f, h, w, bias, seed);

    /// <summary>3 taps, stride 1 or 2, padding 0 or 1, 6 to 9 outputs: with 24 or more channels at least 1.5 MFLOP a filter tile row.</summary>
    private static Gen<ConvAxis> OneImageAxis =>
        from s in Gen.Choose(1, 2)
        from p in Gen.Choose(0, 1)
        from outputs in Gen.Choose(6, 9)
        select new ConvAxis((outputs - 1) * s + 3 - 2 * p, 3, s, p, p, 1);

    [Property(MaxTest = 25)]
    public Property One_image_split_by_filters_matches_bit_for_bit_on_every_kernel() => Prop.ForAll(SplitByFilters.ToArbitrary(), c =>
    {
        int outSize = c.H.Out * c.W.Out;
        // Above ConvForward's threshold for sharing one image (1.5 MFLOP) and with more filters than columns: the filter split runs.
        Assert.True(2L * c.F * c.C * 9 * outSize >= 1_500_000 && c.F > outSize, $"{c} would not be split by filters");
        return Paths.All(isa => Run(c, isa, portable: false, workers: 2) && Run(c, isa, portable: false, workers: 3));
    });

    /// <summary>The benchmark's shapes (batch cut to 2 or 3), whose images exceed a strip or a dx block.</summary>
    [Theory]
    [InlineData(3, 1, 28, 28, 30, 5, 1, 0)]
    [InlineData(3, 32, 15, 15, 64, 3, 1, 0)]
    [InlineData(2, 3, 32, 32, 32, 3, 1, 1)]
    [InlineData(2, 64, 56, 56, 64, 3, 1, 0)]
    [InlineData(2, 64, 28, 28, 128, 1, 1, 0)]
    [InlineData(3, 32, 32, 32, 64, 3, 2, 1)]
    [InlineData(1, 32, 15, 15, 64, 3, 1, 0)]
    [InlineData(1, 256, 14, 14, 512, 3, 2, 1)]
    [InlineData(1, 128, 14, 14, 256, 3, 1, 1)]
    public void Benchmark_shapes_match(int n, int c, int h, int w, int f, int k, int s, int p)
    {
        var axisH = new ConvAxis(h, k, s, p, p, 1);
        var axisW = new ConvAxis(w, k, s, p, p, 1);
        var conv = new ConvGemmCase(n, 1, c, f, axisH, axisW, true, 7);
        foreach (var isa in Paths) Run(conv, isa, portable: false, workers: 1);
        Run(conv, GemmInstructionSet.Auto, portable: false, workers: 2);
    }
}
