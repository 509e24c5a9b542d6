using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.Kernels;

/// <summary>
/// A random activation problem: a shape of rank 1..4, an axis in [-rank, rank) for softmax, a magnitude for the data and
/// a parameter (slope or alpha).
/// </summary>
public sealed record ActivationCase(int[] Dims, int Axis, float Scale, float Parameter, int Seed)
{
    /// <summary>
    /// Mostly small shapes (each axis 1..7, so axes of length 1 and odd lengths are common); one case in eight is a tensor
    /// of 32k-200k elements, which takes the kernels' parallel path. Magnitudes 1, 5 (saturating sigmoid and tanh) and
    /// 200 (exp overflows float32 above ~88 unless the maximum is subtracted); parameters include 0, 1 and values above 1.
    /// </summary>
    public static Gen<ActivationCase> Generator { get; } =
        from dims in Gen.Frequency(
            (7, from rank in Gen.Choose(1, 4) from d in Gen.ArrayOf(Gen.Choose(1, 7), rank) select d),
            (1, from n in Gen.Choose(1, 3) from c in Gen.Choose(64, 300) from s in Gen.Choose(170, 300) select new[] { n, c, s }))
        from axis in Gen.Choose(-dims.Length, dims.Length - 1)
        from scale in Gen.Elements(1f, 5f, 200f)
        from parameter in Gen.Elements(0.01f, 0.2f, 0f, 1f, 1.5f, 2f)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new ActivationCase(dims, axis, scale, parameter, seed);

    /// <summary>The elements after the axis (1 when the axis is the last).</summary>
    public int Inner => Dims.Skip(Axis < 0 ? Axis + Dims.Length + 1 : Axis + 1).Aggregate(1, (a, b) => a * b);

    /// <summary>
    /// Uniform data in [-Scale, Scale) with about one element in eight exactly on a kink of the piecewise activations: 0 mostly,
    /// else ±3 (hard sigmoid and hard swish) or 6 (ReLU6).
    /// </summary>
    public Tensor Input()
    {
        var rng = new Random(Seed);
        var data = Uniform(rng, new Shape(Dims).Size, Scale);
        for (int i = 0; i < data.Length; i++) if (rng.Next(8) == 0) data[i] = Kinks[rng.Next(Kinks.Length)];
        return Tensor.FromArray(data, Dims);
    }

    private static readonly float[] Kinks = { 0f, 0f, 0f, 3f, -3f, 6f };

    /// <summary>An upstream gradient of the same shape, uniform in [-1, 1).</summary>
    public Tensor Upstream() => RandomTensor(new Random(Seed + 1), 1f, Dims);

    /// <inheritdoc />
    public override string ToString() => $"ActivationCase([{string.Join(", ", Dims)}], axis {Axis}, scale {Scale}, parameter {Parameter}, seed {Seed})";
}

/// <summary>Leaky ReLU, ELU, sigmoid, tanh, softmax and log-softmax along any axis, against TorchSharp and its autograd.</summary>
public sealed class ActivationsMoreProperties
{
    private static readonly Arbitrary<ActivationCase> Cases = ActivationCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = ActivationCase.Generator.Sample(2000, 50);
        Assert.Contains(cases, c => c.Axis == -1);
        Assert.Contains(cases, c => c.Axis == 1);
        Assert.Contains(cases, c => c.Inner > 1);
        Assert.Contains(cases, c => c.Dims.Length == 1);
        Assert.Contains(cases, c => c.Dims[0] == 1);
        Assert.Contains(cases, c => new Shape(c.Dims).Size >= 1 << 15);
    }

    /// <summary>One multiplication and a select per element, as PyTorch does it: bitwise equal.</summary>
    [CnnProperty]
    public Property LeakyRelu_matches_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        Exact(Activations.LeakyRelu(x, c.Parameter), leaky_relu(T(x), c.Parameter), "leaky_relu");
    }));

    /// <summary>The pullback selects dy or slope*dy (slope also at 0, as PyTorch): bitwise equal to autograd.</summary>
    [CnnProperty]
    public Property LeakyReluBackward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x, requiresGrad: true);
        leaky_relu(tx, c.Parameter).backward(new[] { T(dy) });
        Exact(Activations.LeakyReluBackward(x, dy, c.Parameter), Grad(tx), "leaky_relu dx");
    }));

    /// <summary>
    /// One exp per negative element, from two libraries' exp approximations (a few ulps each):
    /// |a-b| &lt;= 1e-6 + 1e-6 max|b|.
    /// </summary>
    [CnnProperty]
    public Property Elu_matches_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        Close(Activations.Elu(x, c.Parameter), elu(T(x), c.Parameter), 1e-6, 1e-6, "elu");
    }));

    /// <summary>dy * alpha * exp(x) on the negative side (alpha at 0, as PyTorch): |a-b| &lt;= 1e-6 + 1e-6 max|b|, as the forward.</summary>
    [CnnProperty]
    public Property EluBackward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x, requiresGrad: true);
        elu(tx, c.Parameter).backward(new[] { T(dy) });
        Close(Activations.EluBackward(x, dy, c.Parameter), Grad(tx), 1e-6, 1e-6, "elu dx");
    }));

    /// <summary>One exp and one division per element, outputs in [0, 1]: |a-b| &lt;= 1e-6 absolute.</summary>
    [CnnProperty]
    public Property Sigmoid_matches_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        Close(Activations.Sigmoid(x), torch.sigmoid(T(x)), 1e-6, 0, "sigmoid");
    }));

    /// <summary>
    /// dy*y*(1-y) from our forward output, against autograd from LibTorch's: two products of values within 1e-6, and
    /// |dy| &lt; 1: |a-b| &lt;= 1e-6 absolute.
    /// </summary>
    [CnnProperty]
    public Property SigmoidBackward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x, requiresGrad: true);
        torch.sigmoid(tx).backward(new[] { T(dy) });
        Close(Activations.SigmoidBackward(Activations.Sigmoid(x), dy), Grad(tx), 1e-6, 0, "sigmoid dx");
    }));

    /// <summary>Outputs in [-1, 1] from vectorised tanh approximations: |a-b| &lt;= 1e-6 absolute.</summary>
    [CnnProperty]
    public Property Tanh_matches_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        Close(Activations.Tanh(x), torch.tanh(T(x)), 1e-6, 0, "tanh");
    }));

    /// <summary>dy*(1-y^2) from our forward output: |a-b| &lt;= 2e-6 absolute (y^2 doubles the forward's error).</summary>
    [CnnProperty]
    public Property TanhBackward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x, requiresGrad: true);
        torch.tanh(tx).backward(new[] { T(dy) });
        Close(Activations.TanhBackward(Activations.Tanh(x), dy), Grad(tx), 2e-6, 0, "tanh dx");
    }));

    /// <summary>
    /// Probabilities from one exp per element and a sum of at most 300 terms along the axis:
    /// |a-b| &lt;= 1e-6 + 1e-5 max|b|. Magnitude 200 checks that the maximum is subtracted first.
    /// </summary>
    [CnnProperty]
    public Property Softmax_matches_torch_along_any_axis() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        Close(Activations.Softmax(x, c.Axis), softmax(T(x), c.Axis), 1e-6, 1e-5, "softmax");
    }));

    /// <summary>y*(dy - sum(dy*y)) from our forward output; y in [0, 1] and |dy| &lt; 1: |a-b| &lt;= 1e-6 + 1e-5 max|b|.</summary>
    [CnnProperty]
    public Property SoftmaxBackward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x, requiresGrad: true);
        softmax(tx, c.Axis).backward(new[] { T(dy) });
        Close(Activations.SoftmaxBackward(Activations.Softmax(x, c.Axis), dy, c.Axis), Grad(tx), 1e-6, 1e-5, "softmax dx");
    }));

    /// <summary>
    /// x - max - log(sum(exp(x - max))): the subtraction is exact, the log of the sum is within a few ulps of the sum;
    /// values reach -400 at magnitude 200: |a-b| &lt;= 1e-5 + 1e-6 max|b|.
    /// </summary>
    [CnnProperty]
    public Property LogSoftmax_matches_torch_along_any_axis() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        Close(Activations.LogSoftmax(x, c.Axis), log_softmax(T(x), c.Axis), 1e-5, 1e-6, "log_softmax");
    }));

    /// <summary>
    /// dy - exp(y)*sum(dy) from our forward output; the sum has at most 300 terms of magnitude &lt; 1:
    /// |a-b| &lt;= 1e-5 + 1e-5 max|b|.
    /// </summary>
    [CnnProperty]
    public Property LogSoftmaxBackward_matches_torch_autograd() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var x = c.Input();
        var dy = c.Upstream();
        var tx = T(x, requiresGrad: true);
        log_softmax(tx, c.Axis).backward(new[] { T(dy) });
        Close(Activations.LogSoftmaxBackward(Activations.LogSoftmax(x, c.Axis), dy, c.Axis), Grad(tx), 1e-5, 1e-5, "log_softmax dx");
    }));

    [Fact]
    public void Softmax_rejects_an_axis_outside_the_rank()
    {
        var x = Tensor.Zeros(2, 3);
        var e = Assert.Throws<ShapeException>(() => Activations.Softmax(x, 2));
        Assert.Contains("[-2, 1]", e.Message);
        Assert.Throws<ShapeException>(() => Activations.LogSoftmax(x, -3));
    }
}
