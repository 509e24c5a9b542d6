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

/// <summary>Activations (ReLU and its pullback, softmax) against TorchSharp.</summary>
public sealed class ActivationsProperties
{
    /// <summary>Any rank 1..4, each axis 1..7.</summary>
    private static readonly Arbitrary<(int[] Dims, int Seed)> AnyShape =
        (from rank in Gen.Choose(1, 4)
         from dims in Gen.ArrayOf(Gen.Choose(1, 7), rank)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (dims, seed)).ToArbitrary();

    /// <summary>Logits [N, K] with N 1..9, K 1..70, and magnitudes up to 1, 20 or 200 (exp overflows float32 above ~88).</summary>
    private static readonly Arbitrary<(int N, int K, float Scale, int Seed)> Logits =
        (from n in Gen.Choose(1, 9)
         from k in Gen.Choose(1, 70)
         from scale in Gen.Elements(1f, 20f, 200f)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (n, k, scale, seed)).ToArbitrary();

    /// <summary>About one element in five exactly 0 (the kink), the rest uniform in [-1, 1).</summary>
    private static Tensor WithZeros(int[] dims, Random rng)
    {
        var data = Uniform(rng, new Shape(dims).Size);
        for (int i = 0; i < data.Length; i++) if (rng.Next(5) == 0) data[i] = 0f;
        return Tensor.FromArray(data, dims);
    }

    /// <summary>max(x, 0) is exact: bitwise equal to torch's relu.</summary>
    [Property(MaxTest = 100)]
    public Property Relu_matches_torch_relu() => Prop.ForAll(AnyShape, s => Scoped(() =>
    {
        var x = WithZeros(s.Dims, new Random(s.Seed));
        Exact(Activations.Relu(x), relu(T(x)), "relu");
    }));

    /// <summary>The pullback only selects (dy where x &gt; 0, else 0, also at x = 0 as PyTorch): bitwise equal to autograd.</summary>
    [Property(MaxTest = 100)]
    public Property ReluBackward_matches_torch_autograd() => Prop.ForAll(AnyShape, s => Scoped(() =>
    {
        var rng = new Random(s.Seed);
        var x = WithZeros(s.Dims, rng);
        var dy = RandomTensor(rng, 1f, s.Dims);
        var tx = T(x, requiresGrad: true);
        relu(tx).backward(new[] { T(dy) });
        Exact(Activations.ReluBackward(x, dy), Grad(tx), "relu dx");
    }));

    /// <summary>
    /// Probabilities in [0, 1] from one exp per element and one sum of at most 70 terms:
    /// |a-b| &lt;= 1e-6 + 1e-5 max|b|. Large logits check that the maximum is subtracted first (no overflow to NaN).
    /// </summary>
    [Property(MaxTest = 100)]
    public Property Softmax_matches_torch_softmax() => Prop.ForAll(Logits, s => Scoped(() =>
    {
        var z = RandomTensor(new Random(s.Seed), s.Scale, s.N, s.K);
        Close(Activations.Softmax(z), softmax(T(z), 1), 1e-6, 1e-5, "softmax");
    }));
}
