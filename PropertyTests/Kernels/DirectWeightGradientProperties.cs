using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The direct weight and input gradients. dx (<see cref="DirectInputGradient"/>) against im2col, the GEMM and the fold, bit for
/// bit. dW (<see cref="DirectWeightGradient"/>) against dW summed in float64 from its definition: within
/// float32 rounding of the sum of the terms' magnitudes, NaN and infinities where the definition has them (a non-finite
/// pixel that only the padded lanes past a row's end would read must not leak in), and the same bits whether a batch goes
/// through the fused path or image by image (the worker count picks between them). Every drawn case is one the kernel
/// covers, so each runs it. With the kernel off, <see cref="ConvGemmProperties"/> checks the GEMM path's dW. Each case
/// runs the kernels on 16-lane or, drawn at random, on 8-lane vectors (<see cref="KernelWidth.ForceVector256"/>; AVX2 machines
/// have only the latter).
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class DirectWeightGradientProperties
{
    public sealed record Case(int N, int C, int F, ConvAxis H, ConvAxis W, int NonFinite, int Seed, bool Vector256)
    {
        public ConvGeometry Geometry => ConvGeometry.Create(new[] { H.K, W.K }, new[] { 1, 1 }, new[] { H.PadBegin, W.PadBegin },
            new[] { H.PadEnd, W.PadEnd }, new[] { H.D, W.D });

        internal ConvColumns Columns => new(N, C, 1, new WindowPlan(new[] { H.Size, W.Size }, Geometry, "test"));

        /// <summary>The direct kernels' vector width in this case: 8 if asked, else the CPU's (16 with AVX-512, 8 with AVX2).</summary>
        public int Lanes => Math.Min(Vector256 ? 8 : 16, DirectConv.Lanes(Gemm.Resolve(GemmInstructionSet.Auto)));

        public bool Covered => DirectWeightGradient.Covers(Columns, F, Lanes);

        /// <summary><paramref name="run"/> with the direct kernels on this case's vector width.</summary>
        public T OnWidth<T>(Func<T> run)
        {
            bool saved = KernelWidth.ForceVector256;
            KernelWidth.ForceVector256 = Vector256;
            try { return run(); }
            finally { KernelWidth.ForceVector256 = saved; }
        }

        public override string ToString() =>
            $"Case {{ N = {N}, C = {C}, F = {F}, H = {H}, W = {W}, NonFinite = {NonFinite}, Seed = {Seed}, Lanes = {Lanes} }}";
    }

    /// <summary>An axis with <paramref name="outs"/> outputs: kernel 1-5, dilation 1 or 2, padding 0-2 at each end.</summary>
    private static Gen<ConvAxis> Axis(Gen<int> outs) =>
        from k in Gen.Choose(1, 5)
        from d in Gen.Frequency((4, Gen.Constant(1)), (1, Gen.Constant(2)))
        from begin in Gen.Choose(0, 2)
        from end in Gen.Choose(0, 2)
        from o in outs
        let size = o - 1 + (k - 1) * d + 1 - begin - end
        where size >= 1 && size + begin + end >= (k - 1) * d + 1
        select new ConvAxis(size, k, 1, begin, end, d);

    /// <summary>
    /// Rows of 8-80 outputs (whole vectors and ragged last ones; <paramref name="widths"/> when given), 1-6 output rows (1:
    /// a 1-d window).
    /// </summary>
    private static Gen<Case> Cases(Gen<int> batch, Gen<int>? widths = null) =>
        (from h in Gen.Frequency((1, Axis(Gen.Constant(1))), (4, Axis(Gen.Choose(2, 6))))
         from w in Axis(widths ?? Gen.Choose(8, 80))
         from c in Gen.Frequency((3, Gen.Choose(1, 8)), (1, Gen.Choose(9, 35)))
         from f in Gen.Frequency((3, Gen.Choose(1, 9)), (1, Gen.Choose(10, 40)))
         from n in batch
         from nonFinite in Gen.Frequency((5, Gen.Constant(0)), (1, Gen.Choose(1, 3)))
         from seed in Gen.Choose(0, 1_000_000_000)
         from narrow in Gen.Elements(false, true)
         select new Case(n, c, f, h, w, nonFinite, seed, narrow)).Where(c => c.Covered);

    /// <summary>Random operands with exact zeros; <see cref="Case.NonFinite"/> pixels set to NaN or an infinity.</summary>
    private static (Tensor X, Tensor W, Tensor Dy) Operands(Case c)
    {
        var rng = new Random(c.Seed);
        float[] Values(int count) => Enumerable.Range(0, count).Select(_ => rng.Next(7) == 0 ? 0f : (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = Values(c.N * c.C * c.H.Size * c.W.Size);
        for (int i = 0; i < c.NonFinite; i++)
            x[rng.Next(x.Length)] = rng.Next(3) switch { 0 => float.NaN, 1 => float.PositiveInfinity, _ => float.NegativeInfinity };
        return (Tensor.FromArray(x, c.N, c.C, c.H.Size, c.W.Size), Tensor.FromArray(Values(c.F * c.C * c.H.K * c.W.K), c.F, c.C, c.H.K, c.W.K),
            Tensor.FromArray(Values(c.N * c.F * c.H.Out * c.W.Out), c.N, c.F, c.H.Out, c.W.Out));
    }

    /// <summary>dW from its definition in float64, and each element's sum of the terms' magnitudes.</summary>
    private static (double[] Dw, double[] Magnitude) Reference(Case c, Tensor x, Tensor dy)
    {
        int kh = c.H.K, kw = c.W.K, oh = c.H.Out, ow = c.W.Out, rows = c.C * kh * kw;
        var dw = new double[c.F * rows];
        var magnitude = new double[c.F * rows];
        var xs = x.Span;
        var dys = dy.Span;
        for (int f = 0; f < c.F; f++)
            for (int r = 0; r < rows; r++)
            {
                int ch = r / (kh * kw), ty = r / kw % kh, tx = r % kw;
                double sum = 0, abs = 0;
                for (int n = 0; n < c.N; n++)
                    for (int y = 0; y < oh; y++)
                    {
                        int iy = y + ty * c.H.D - c.H.PadBegin;
                        if (iy < 0 || iy >= c.H.Size) continue;
                        for (int z = 0; z < ow; z++)
                        {
                            int ix = z + tx * c.W.D - c.W.PadBegin;
                            if (ix < 0 || ix >= c.W.Size) continue;
                            double term = (double)dys[((n * c.F + f) * oh + y) * ow + z] * xs[((n * c.C + ch) * c.H.Size + iy) * c.W.Size + ix];
                            sum += term;
                            abs += Math.Abs(term);
                        }
                    }
                dw[f * rows + r] = sum;
                magnitude[f * rows + r] = abs;
            }
        return (dw, magnitude);
    }

    private static float[] WeightGradient(Case c, Tensor x, Tensor w, Tensor dy, int workers) =>
        c.OnWidth(() => WorkerCountCollection.With(workers, () => ConvKernel.ParameterGradients(x, w, false, dy, c.Geometry).Weight.ToArray()));

    [Property(MaxTest = 60)]
    public Property Equals_the_definition_within_float32_rounding() => Prop.ForAll(Cases(Gen.Choose(1, 3)).ToArbitrary(), c =>
    {
        var (x, w, dy) = Operands(c);
        var (expected, magnitude) = Reference(c, x, dy);
        var actual = WeightGradient(c, x, w, dy, 1);
        // A lane's chain has one product per output vector (N x output rows x vectors per row), then four additions (three
        // on 8 lanes) sum the lanes and one adds the sum to dW: the float32 bound of such a sum is (chain + 6) units of
        // rounding times the terms' magnitudes. A missed or doubled term misses by orders of magnitude more.
        int chain = c.N * c.H.Out * ((c.W.Out + c.Lanes - 1) / c.Lanes);
        double bound = (chain + 6) * Math.Pow(2, -24);
        for (int i = 0; i < expected.Length; i++)
        {
            bool ok = double.IsNaN(expected[i]) ? float.IsNaN(actual[i])
                : double.IsInfinity(expected[i]) ? actual[i] == (float)expected[i]
                : Math.Abs(actual[i] - expected[i]) <= bound * magnitude[i];
            if (!ok) throw new Xunit.Sdk.XunitException($"{c}: dW element {i} is {actual[i]:R}, its definition {expected[i]:R} (terms' magnitude {magnitude[i]:R}).");
        }
        return true;
    });

    [Property(MaxTest = 30)]
    public Property Has_the_same_bits_on_the_fused_and_the_per_image_paths() => Prop.ForAll(Cases(Gen.Constant(1)).ToArbitrary(), c =>
    {
        // One image and two workers: the per-image path (the batch is smaller than the workers); one worker: the fused path.
        var (x, w, dy) = Operands(c);
        var fused = WeightGradient(c, x, w, dy, 1);
        var perImage = WeightGradient(c, x, w, dy, 2);
        var withDx = c.OnWidth(() => WorkerCountCollection.With(1, () => ConvKernel.Backward(x, w, false, dy, c.Geometry).Weight.ToArray()));
        for (int i = 0; i < fused.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(fused[i]) != BitConverter.SingleToInt32Bits(perImage[i]) && !(float.IsNaN(fused[i]) && float.IsNaN(perImage[i])))
                throw new Xunit.Sdk.XunitException($"{c}: dW element {i} is {fused[i]:R} fused, {perImage[i]:R} image by image.");
            if (BitConverter.SingleToInt32Bits(fused[i]) != BitConverter.SingleToInt32Bits(withDx[i]) && !(float.IsNaN(fused[i]) && float.IsNaN(withDx[i])))
                throw new Xunit.Sdk.XunitException($"{c}: dW element {i} is {fused[i]:R} alone, {withDx[i]:R} with dx.");
        }
        return true;
    });

    /// <summary>
    /// Images smaller than a band go several to a band: the same bits as a call per image with the lane sums carried from
    /// call to call (<c>begin</c> on the first, <c>end</c> on the last), which runs one image a band as the kernel did before.
    /// </summary>
    [Property(MaxTest = 40)]
    public Property Several_images_to_a_band_give_the_bits_of_one_image_a_band() => Prop.ForAll(
        // Mostly rows of whole vectors, which the kernel groups (rows with a partial last vector run one image a band).
        Cases(Gen.Choose(2, 7), Gen.Frequency((3, Gen.Elements(8, 16, 32, 48)), (1, Gen.Choose(17, 80)))).ToArbitrary(), c =>
    {
        var (x, _, dy) = Operands(c);
        var l = c.Columns;
        int lanes = c.Lanes;
        int rows = c.C * c.H.K * c.W.K;
        var together = new float[c.F * rows];
        var apart = new float[c.F * rows];
        unsafe
        {
            fixed (float* px = x.Span, pdy = dy.Span, pt = together, pa = apart)
            {
                DirectWeightGradient.Accumulate(l, px, pdy, c.F, pt, 0, c.N, lanes);
                for (int i = 0; i < c.N; i++) DirectWeightGradient.Accumulate(l, px, pdy, c.F, pa, i, i + 1, lanes, begin: i == 0, end: i == c.N - 1);
            }
        }
        for (int i = 0; i < together.Length; i++)
            if (BitConverter.SingleToInt32Bits(together[i]) != BitConverter.SingleToInt32Bits(apart[i]) && !(float.IsNaN(together[i]) && float.IsNaN(apart[i])))
                throw new Xunit.Sdk.XunitException($"{c}: dW element {i} is {together[i]:R} over the batch, {apart[i]:R} image by image.");
        return true;
    });

    /// <summary>
    /// dx by im2col's definition on the GEMM: dcols = W^T x dY_i (the packed GEMM, one chain per element over the filters),
    /// folded into dx_i whole (ImToCol.FoldAdd, tap after tap): the order <see cref="DirectInputGradient"/> keeps.
    /// </summary>
    private static float[] InputGradientByFold(Case c, Tensor w, Tensor dy)
    {
        int outSize = c.H.Out * c.W.Out, rows = c.C * c.H.K * c.W.K, inSize = c.C * c.H.Size * c.W.Size;
        var options = new GemmOptions { Threads = 1, InstructionSet = GemmInstructionSet.Auto };
        var dcols = new float[rows * outSize];
        var dx = new float[c.N * inSize];
        for (int i = 0; i < c.N; i++)
        {
            Gemm.Multiply(true, false, rows, outSize, c.F, w.Span, dy.Span.Slice(i * c.F * outSize, c.F * outSize), dcols, false, options);
            ImToCol.FoldAdd(dcols, c.C, new[] { c.H.Size, c.W.Size }, c.Geometry, dx.AsSpan(i * inSize, inSize));
        }
        return dx;
    }

    /// <summary>Bit for bit the fold's dx, NaN where it has NaN; one and two workers (the fused and per-image paths).</summary>
    [Property(MaxTest = 60)]
    public Property Input_gradient_has_the_folds_bits() => Prop.ForAll(Cases(Gen.Choose(1, 3)).Where(c =>
        DirectInputGradient.Covers(c.Columns, c.F, c.Lanes)).ToArbitrary(), c =>
    {
        var (x, w, dy) = Operands(c);
        var wv = w.ToArray();
        var rng = new Random(c.Seed);
        // A non-finite weight must reach exactly the elements whose taps use it.
        if (c.NonFinite > 0) wv[rng.Next(wv.Length)] = float.NaN;
        w = Tensor.FromArray(wv, c.F, c.C, c.H.K, c.W.K);
        var expected = InputGradientByFold(c, w, dy);
        foreach (int workers in new[] { 1, 2 })
        {
            var actual = c.OnWidth(() => WorkerCountCollection.With(workers, () => ConvKernel.Backward(x, w, false, dy, c.Geometry).Input.ToArray()));
            for (int i = 0; i < expected.Length; i++)
                if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]) && !(float.IsNaN(actual[i]) && float.IsNaN(expected[i])))
                    throw new Xunit.Sdk.XunitException($"{c}, {workers} workers: dx element {i} is {actual[i]:R}, the fold gives {expected[i]:R}.");
        }
        return true;
    });

    [Fact]
    public void Covers_shallow_stride_1_layers_whose_lane_sums_fit_l2()
    {
        static bool Covers(int c, int hw, int f, int stride, int lanes = 16)
        {
            var g = ConvGeometry.Create(new[] { 3, 3 }, new[] { stride, stride }, new[] { 1, 1 }, new[] { 1, 1 }, new[] { 1, 1 });
            return DirectWeightGradient.Covers(new ConvColumns(2, c, 1, new WindowPlan(new[] { hw, hw }, g, "test")), f, lanes);
        }
        Assert.True(Covers(16, 128, 16, 1));   // the benchmark's image-size rows
        Assert.True(Covers(32, 32, 64, 1));    // 288 rows x 64 filters: 1.2 MB of lane sums
        Assert.False(Covers(32, 32, 128, 1));  // 288 x 128: the lane sums would leave L2
        Assert.False(Covers(16, 32, 16, 2));   // stride 2
        Assert.False(Covers(64, 56, 64, 1));   // 576 rows: the direct forward kernel's bound
        Assert.True(Covers(16, 128, 16, 1, lanes: 8));
        Assert.True(Covers(16, 15, 32, 1, lanes: 8));   // 15-wide rows: two vectors of 8, 15 of 16 lanes used
        // 288 rows x 64 filters: 590 KB of 8-lane sums, taken where they fit three quarters of L2 (not Zen 3's 512 KB).
        Assert.Equal(CpuCaches.L2 == 0 || 64 * 288 * 8 * sizeof(float) <= CpuCaches.L2 * 3 / 4, Covers(32, 15, 64, 1, lanes: 8));
        Assert.False(Covers(32, 15, 64, 1));            // shorter than a vector of 16
        Assert.False(Covers(32, 32, 128, 1, lanes: 8)); // 288 x 128: as many lane sums, half as long, still past the bound
        Assert.False(Covers(16, 32, 16, 1, lanes: 0));  // beside the scalar micro-kernel
        // 1x1: the GEMM reads the image as its own column matrix and writes dx itself; neither direct kernel is faster.
        var pointwise = new ConvColumns(2, 64, 1, new WindowPlan(new[] { 28, 28 }, ConvGeometry.Create(new[] { 1, 1 }, new[] { 1, 1 },
            new[] { 0, 0 }, new[] { 0, 0 }, new[] { 1, 1 }), "test"));
        Assert.False(DirectWeightGradient.Covers(pointwise, 128, 16));
        Assert.False(DirectInputGradient.Covers(pointwise, 128, 16));
        Assert.False(DirectWeightGradient.Covers(pointwise, 128, 8));
        Assert.False(DirectInputGradient.Covers(pointwise, 128, 8));
    }
}
