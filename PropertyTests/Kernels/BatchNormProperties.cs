using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// One random batch-normalisation problem: input <c>[N, C, spatial...]</c> with 0..3 spatial axes, data offset by
/// <paramref name="Offset"/> (a large mean relative to the spread tests the statistics' accuracy), epsilon and momentum.
/// </summary>
public sealed record BatchNormCase(int[] Dims, float Offset, float Spread, float Epsilon, float Momentum, int Seed)
{
    /// <summary>
    /// Rank 2 ([N, C], BatchNorm1d), 3, 4 (BatchNorm2d) and 5 (BatchNorm3d); batch 1..5 (batch 1 needs a spatial
    /// size above 1), channels 1..6, spatial axes 1..6; offset 0 or 10 with spread 1 or 0.05.
    /// </summary>
    public static Gen<BatchNormCase> Generator { get; } =
        from rank in Gen.Choose(2, 5)
        from n in Gen.Choose(1, 5)
        from c in Gen.Choose(1, 6)
        from spatial in Gen.ArrayOf(Gen.Choose(1, 6), rank - 2)
        let dims = new[] { n, c }.Concat(spatial).ToArray()
        where n * spatial.Aggregate(1, (a, b) => a * b) >= 2
        from offset in Gen.Elements(0f, 10f)
        from spread in Gen.Elements(1f, 0.05f)
        from eps in Gen.Elements(1e-5f, 1e-3f)
        from momentum in Gen.Elements(0.1f, 0.01f, 0.5f, 1f)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new BatchNormCase(dims, offset, spread, eps, momentum, seed);

    /// <summary>Channels.</summary>
    public int C => Dims[1];

    /// <summary>Values per channel: N times the spatial size.</summary>
    public int Count => new Shape(Dims).Size / C;

    /// <summary>Input, gamma in [0.5, 1.5), beta in [-1, 1), running mean in [-1, 1), running variance in [0.5, 2), upstream gradient.</summary>
    public (Tensor X, Tensor Gamma, Tensor Beta, Tensor RunningMean, Tensor RunningVar, Tensor Dy) Data()
    {
        var rng = new Random(Seed);
        var x = Uniform(rng, new Shape(Dims).Size, Spread);
        for (int i = 0; i < x.Length; i++) x[i] += Offset;
        Tensor Around(float centre, float half) => Tensor.FromArray(Uniform(rng, C, half).Select(v => v + centre).ToArray(), C);
        return (Tensor.FromArray(x, Dims), Around(1f, 0.5f), Around(0f, 1f), Around(0f, 1f), Around(1.25f, 0.75f), RandomTensor(rng, 1f, Dims));
    }

    /// <inheritdoc />
    public override string ToString() => $"BatchNormCase([{string.Join(", ", Dims)}], offset {Offset}, spread {Spread}, eps {Epsilon}, momentum {Momentum}, seed {Seed})";
}

/// <summary>
/// BatchNormKernel against TorchSharp's batch_norm in training and evaluation mode, its running-statistic update and
/// autograd. The reference runs in float64: LibTorch's float32 path for <c>[N, C]</c> input (which it treats as channels
/// last) sums the batch statistics in float32, so at offset 10 its own mean is off by about 1e-6 and the gradients
/// inherit that; against float64 the tolerances measure our error only.
/// </summary>
public sealed class BatchNormProperties
{
    private static readonly Arbitrary<BatchNormCase> Cases = BatchNormCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = BatchNormCase.Generator.Sample(2000, 50);
        foreach (var rank in new[] { 2, 3, 4, 5 }) Assert.Contains(cases, c => c.Dims.Length == rank);
        Assert.Contains(cases, c => c.Dims[0] == 1);
        Assert.Contains(cases, c => c.Dims.Length == 2 && c.Dims[0] == 2);
        Assert.Contains(cases, c => c.C == 1);
        Assert.Contains(cases, c => c.Offset == 10f && c.Spread == 0.05f);
    }

    /// <summary>A float64 TorchSharp copy, optionally an autograd leaf.</summary>
    private static TorchTensor D(Tensor t, bool requiresGrad = false)
    {
        var d = T(t).to_type(torch.ScalarType.Float64);
        return requiresGrad ? d.requires_grad_(true) : d;
    }

    /// <summary>
    /// Training mode: output, and the running statistics LibTorch updated in place against UpdateRunning with the batch
    /// mean and the unbiased variance. The statistics are accumulated in double and rounded once: 1e-6 + 1e-6 max|b|. The
    /// output is O(1) and computed as (x - mean) * a + b per channel, where x - mean is exact in float32 for x near the
    /// mean (so offset 10 with spread 0.05 costs nothing): |a-b| &lt;= 1e-5 + 1e-5 max|b|.
    /// </summary>
    [CnnProperty]
    public Property Train_matches_torch_batch_norm_and_its_running_update() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var (x, gamma, beta, rm, rv, _) = c.Data();
        var r = BatchNormKernel.Train(x, gamma, beta, c.Epsilon);
        var trm = D(rm);
        var trv = D(rv);
        var expected = batch_norm(D(x), trm, trv, D(gamma), D(beta), training: true, momentum: c.Momentum, eps: c.Epsilon);
        Close(r.Output, expected, 1e-5, 1e-5, "batch_norm train output");
        Close(BatchNormKernel.UpdateRunning(rm, r.Mean, c.Momentum), trm, 1e-6, 1e-6, "running mean");
        Close(BatchNormKernel.UpdateRunning(rv, BatchNormKernel.UnbiasedVariance(r, c.Count), c.Momentum), trv, 1e-6, 1e-6, "running variance");
        Close(r.InvStd, (D(r.Variance) + c.Epsilon).rsqrt(), 0, 1e-6, "invStd");
    }));

    /// <summary>
    /// The pullback through the batch statistics. dx = gamma*invStd*(dy - mean(dy) - xhat*mean(dy*xhat)) cancels, and
    /// uses the float32 mean (off by up to ulp(10)/2, amplified by invStd up to 35 at spread 0.05):
    /// |a-b| &lt;= 1e-5 + 1e-4 max|b|. dgamma and dbeta are sums of up to 1080 terms taken in double, and dgamma is
    /// corrected for the mean's rounding: 1e-5 + 1e-5 max|b|.
    /// </summary>
    [CnnProperty]
    public Property TrainBackward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var (x, gamma, beta, rm, rv, dy) = c.Data();
        var r = BatchNormKernel.Train(x, gamma, beta, c.Epsilon);
        var g = BatchNormKernel.TrainBackward(x, gamma, r, dy);
        var (tx, tg, tb) = (D(x, true), D(gamma, true), D(beta, true));
        batch_norm(tx, D(rm), D(rv), tg, tb, training: true, momentum: c.Momentum, eps: c.Epsilon).backward(new[] { D(dy) });
        Close(g.Input, Grad(tx), 1e-5, 1e-4, "batch_norm train dx");
        Close(g.Gamma, Grad(tg), 1e-5, 1e-5, "batch_norm train dgamma");
        Close(g.Beta, Grad(tb), 1e-5, 1e-5, "batch_norm train dbeta");
    }));

    /// <summary>
    /// Evaluation mode is an affine map per channel with the running statistics, folded in double and applied in float32:
    /// two roundings of values up to ~20 at offset 10: |a-b| &lt;= 1e-5 + 1e-5 max|b|.
    /// </summary>
    /// <summary>
    /// Batch norm with its ReLU fused (the apply interpreter's rule for a training-mode batch norm before a ReLU): the output,
    /// the statistics and every gradient are bit for bit (sign of zero included) those of the kernel followed by
    /// <see cref="Activations.Relu"/>, and of <see cref="Activations.ReluBackward"/> followed by the kernel's pullback.
    /// About half the normalised values are negative, so the mask zeroes half of every plane's gradient.
    /// </summary>
    [CnnProperty]
    public Property Fused_relu_gives_the_bits_of_batch_norm_then_relu() => Prop.ForAll(Cases, c =>
    {
        var (x, gamma, beta, _, _, dy) = c.Data();
        var plain = BatchNormKernel.Train(x, gamma, beta, c.Epsilon);
        var fused = BatchNormKernel.Train(x, gamma, beta, c.Epsilon, relu: true);
        var expected = BatchNormKernel.TrainBackward(x, gamma, plain, Activations.ReluBackward(plain.Output, dy));
        var actual = BatchNormKernel.TrainBackward(x, gamma, fused, dy, fused.Output);
        Assert.Equal(Bits(Activations.Relu(plain.Output)), Bits(fused.Output));
        Assert.Equal(Bits(plain.Mean), Bits(fused.Mean));
        Assert.Equal(Bits(plain.Variance), Bits(fused.Variance));
        Assert.Equal(Bits(plain.InvStd), Bits(fused.InvStd));
        Assert.Equal(Bits(expected.Input), Bits(actual.Input));
        Assert.Equal(Bits(expected.Gamma), Bits(actual.Gamma));
        Assert.Equal(Bits(expected.Beta), Bits(actual.Beta));
    });

    private static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    /// <summary>
    /// The sums' eight double lanes in a fixed order: the AVX-512 path, the AVX one (a CPU without AVX-512) and the scalar one
    /// give the same bits for the statistics, the output and every gradient, whatever the plane length's remainder mod 8.
    /// </summary>
    [CnnProperty]
    public Property Vector_and_scalar_sums_give_the_same_bits() => Prop.ForAll(Cases, c =>
    {
        var (x, gamma, beta, rm, rv, dy) = c.Data();
        (float[] Y, float[] Mean, float[] Var, float[] Dx, float[] Dg, float[] Db, float[] EDx, float[] EDg) Run(bool scalar, bool vector256 = false)
        {
            BatchNormSums.ForceScalar = scalar;
            BatchNormSums.ForceVector256 = vector256;
            try
            {
                var f = BatchNormKernel.Train(x, gamma, beta, c.Epsilon);
                var g = BatchNormKernel.TrainBackward(x, gamma, f, dy);
                var e = BatchNormKernel.EvalBackward(x, gamma, rm, rv, c.Epsilon, dy);
                return (f.Output.ToArray(), f.Mean.ToArray(), f.Variance.ToArray(), g.Input.ToArray(), g.Gamma.ToArray(), g.Beta.ToArray(),
                    e.Input.ToArray(), e.Gamma.ToArray());
            }
            finally
            {
                BatchNormSums.ForceScalar = false;
                BatchNormSums.ForceVector256 = false;
            }
        }
        var s = Run(true);
        foreach (var v in new[] { Run(false), Run(false, vector256: true) })
        {
            Assert.Equal(v.Y, s.Y);
            Assert.Equal(v.Mean, s.Mean);
            Assert.Equal(v.Var, s.Var);
            Assert.Equal(v.Dx, s.Dx);
            Assert.Equal(v.Dg, s.Dg);
            Assert.Equal(v.Db, s.Db);
            Assert.Equal(v.EDx, s.EDx);
            Assert.Equal(v.EDg, s.EDg);
        }
    });

    [CnnProperty]
    public Property Eval_matches_torch_batch_norm() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var (x, gamma, beta, rm, rv, _) = c.Data();
        var trm = D(rm);
        var expected = batch_norm(D(x), trm, D(rv), D(gamma), D(beta), training: false, momentum: c.Momentum, eps: c.Epsilon);
        Close(BatchNormKernel.Eval(x, gamma, beta, rm, rv, c.Epsilon), expected, 1e-5, 1e-5, "batch_norm eval output");
        Exact(rm, trm, "eval leaves the running mean alone");
    }));

    /// <summary>
    /// dx = dy*gamma*invStd, one rounded product: 1e-6 + 1e-6 max|b|; dgamma and dbeta are sums of up to 1080 terms
    /// taken in double: 1e-6 + 1e-6 max|b|.
    /// </summary>
    [CnnProperty]
    public Property EvalBackward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var (x, gamma, beta, rm, rv, dy) = c.Data();
        var g = BatchNormKernel.EvalBackward(x, gamma, rm, rv, c.Epsilon, dy);
        var (tx, tg, tb) = (D(x, true), D(gamma, true), D(beta, true));
        batch_norm(tx, D(rm), D(rv), tg, tb, training: false, momentum: c.Momentum, eps: c.Epsilon).backward(new[] { D(dy) });
        Close(g.Input, Grad(tx), 1e-6, 1e-6, "batch_norm eval dx");
        Close(g.Gamma, Grad(tg), 1e-6, 1e-6, "batch_norm eval dgamma");
        Close(g.Beta, Grad(tb), 1e-6, 1e-6, "batch_norm eval dbeta");
    }));

    [Fact]
    public void Train_rejects_one_value_per_channel()
    {
        var e = Assert.Throws<CnnException>(() => BatchNormKernel.Train(Tensor.Zeros(1, 3), Tensor.Zeros(3), Tensor.Zeros(3), 1e-5f));
        Assert.Contains("more than one value per channel", e.Message);
    }

    [Fact]
    public void Rejects_parameters_of_the_wrong_length()
    {
        var e = Assert.Throws<ShapeException>(() => BatchNormKernel.Train(Tensor.Zeros(2, 3, 4, 4), Tensor.Zeros(4), Tensor.Zeros(3), 1e-5f));
        Assert.Contains("gamma", e.Message);
        Assert.Contains("[2, 3, 4, 4]", e.Message);
    }
}
