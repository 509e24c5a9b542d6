using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.Kernels;

/// <summary>One random local-response-normalisation problem.</summary>
public sealed record LrnCase(int[] Dims, int Size, float Alpha, float Beta, float K, float Scale, int Seed)
{
    /// <summary>
    /// Rank 2..5, batch 1..4, channels 1..9, spatial axes 1..5; window sizes 1..7, odd and even, often wider than the
    /// channels; alpha up to 1 and data up to 3 so the neighbours' squares change the result (at AlexNet's alpha 1e-4
    /// a wrong window would hardly show); beta 0.75 (AlexNet), 0.5 and 2; k 1 and 2.
    /// </summary>
    public static Gen<LrnCase> Generator { get; } =
        from rank in Gen.Choose(2, 5)
        from n in Gen.Choose(1, 4)
        from c in Gen.Choose(1, 9)
        from spatial in Gen.ArrayOf(Gen.Choose(1, 5), rank - 2)
        from size in Gen.Choose(1, 7)
        from alpha in Gen.Elements(1e-4f, 0.1f, 1f)
        from beta in Gen.Elements(0.75f, 0.5f, 2f)
        from k in Gen.Elements(1f, 2f)
        from scale in Gen.Elements(1f, 3f)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new LrnCase(new[] { n, c }.Concat(spatial).ToArray(), size, alpha, beta, k, scale, seed);

    /// <summary>The input, uniform in [-Scale, Scale).</summary>
    public Tensor Input() => RandomTensor(new Random(Seed), Scale, Dims);

    /// <summary>An upstream gradient, uniform in [-1, 1).</summary>
    public Tensor Upstream() => RandomTensor(new Random(Seed + 1), 1f, Dims);

    /// <summary>LibTorch's local_response_norm needs rank >= 3: a rank-2 case is given to it as [N, C, 1].</summary>
    public int[] TorchDims => Dims.Length == 2 ? new[] { Dims[0], Dims[1], 1 } : Dims;

    /// <inheritdoc />
    public override string ToString() => $"LrnCase([{string.Join(", ", Dims)}], size {Size}, alpha {Alpha}, beta {Beta}, k {K}, scale {Scale}, seed {Seed})";
}

/// <summary>LrnKernel against TorchSharp's local_response_norm and its autograd.</summary>
public sealed class LrnProperties
{
    private static readonly Arbitrary<LrnCase> Cases = LrnCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = LrnCase.Generator.Sample(2000, 50);
        Assert.Contains(cases, c => c.Size % 2 == 0 && c.Size < c.Dims[1]);
        Assert.Contains(cases, c => c.Size > c.Dims[1]);
        Assert.Contains(cases, c => c.Dims[0] == 1);
        foreach (var rank in new[] { 2, 3, 4, 5 }) Assert.Contains(cases, c => c.Dims.Length == rank);
    }

    /// <summary>
    /// A sum of at most 7 squares, a power and a product per element; LibTorch averages then scales, we scale by alpha/size:
    /// |a-b| &lt;= 1e-6 + 1e-5 max|b|.
    /// </summary>
    [CnnProperty]
    public Property Forward_matches_torch_local_response_norm() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var expected = local_response_norm(T(x.Reshape(c.TorchDims)), c.Size, c.Alpha, c.Beta, c.K).reshape(x.Shape.Select(d => (long)d).ToArray());
        Close(LrnKernel.Forward(x, c.Size, c.Alpha, c.Beta, c.K), expected, 1e-6, 1e-5, "local_response_norm");
    }));

    /// <summary>
    /// The direct term minus up to 7 cross terms, each a product of four factors and a power, which cancel partly; with
    /// beta 2 and alpha 1 the powers span several orders of magnitude: |a-b| &lt;= 1e-6 + 1e-4 max|b|.
    /// </summary>
    [CnnProperty]
    public Property Backward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x.Reshape(c.TorchDims), requiresGrad: true);
        local_response_norm(tx, c.Size, c.Alpha, c.Beta, c.K).backward(new[] { T(dy.Reshape(c.TorchDims)) });
        Close(LrnKernel.Backward(x, dy, c.Size, c.Alpha, c.Beta, c.K), Grad(tx).Reshape(x.Shape), 1e-6, 1e-4, "local_response_norm dx");
    }));

    /// <summary>
    /// A hand-computed case for the even-size window: size 2 puts channel c-1 and c in c's window (PyTorch pads size/2 = 1
    /// channel before and 0 after). With k = 0, alpha = size, beta = 1: b_c = a_c / (a_{c-1}^2 + a_c^2).
    /// </summary>
    [Fact]
    public void Even_window_reaches_back_one_channel()
    {
        var x = Tensor.FromArray(new[] { 1f, 2f, 3f }, 1, 3, 1);
        var y = LrnKernel.Forward(x, 2, 2f, 1f, 0f);
        Close(y, Tensor.FromArray(new[] { 1f / 1f, 2f / 5f, 3f / 13f }, 1, 3, 1), 0, 1e-6, "size-2 window");
    }

    [Fact]
    public void Rejects_a_window_below_one_channel() =>
        Assert.Throws<CnnException>(() => LrnKernel.Forward(Tensor.Zeros(1, 3, 2, 2), 0, 1e-4f, 0.75f, 2f));
}
