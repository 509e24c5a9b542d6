using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.Kernels;

/// <summary>A padding problem: a batch of planes, the four paddings (each below its axis's size, as reflection needs) and a mode.</summary>
public sealed record PadCase(int[] Dims, int Top, int Bottom, int Left, int Right, PadFill Fill, float Value, int Seed)
{
    public static Gen<PadCase> Generator { get; } =
        from n in Gen.Choose(1, 2)
        from c in Gen.Choose(1, 3)
        from h in Gen.Choose(1, 6)
        from w in Gen.Choose(1, 6)
        from t in Gen.Choose(0, h - 1)
        from b in Gen.Choose(0, h - 1)
        from l in Gen.Choose(0, w - 1)
        from r in Gen.Choose(0, w - 1)
        from fill in Gen.Elements(PadFill.Constant, PadFill.Reflect, PadFill.Edge)
        from value in Gen.Elements(0f, 0.5f, -2f)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new PadCase(new[] { n, c, h, w }, t, b, l, r, fill, fill == PadFill.Constant ? value : 0f, seed);

    public override string ToString() => $"PadCase([{string.Join(", ", Dims)}], top {Top}, bottom {Bottom}, left {Left}, right {Right}, {Fill} {Value}, seed {Seed})";
}

/// <summary>Explicit padding against LibTorch's <c>pad</c> (constant, reflect, replicate) and its autograd.</summary>
public sealed class Pad2dProperties
{
    private static readonly Arbitrary<PadCase> Cases = PadCase.Generator.ToArbitrary();

    [Fact]
    public void Generator_covers_the_hard_cases()
    {
        var cases = PadCase.Generator.Sample(1000, 50);
        Assert.Contains(cases, c => c.Fill == PadFill.Reflect && c.Top == c.Dims[2] - 1 && c.Top > 0);
        Assert.Contains(cases, c => c.Fill == PadFill.Edge && c.Left > 1);
        Assert.Contains(cases, c => c.Fill == PadFill.Constant && c.Value != 0f && c.Right > 0);
        Assert.Contains(cases, c => c.Top != c.Bottom && c.Left != c.Right);
    }

    /// <summary>
    /// A gather: bitwise equal. The pullback adds up to three gradients into an input element copied to the border (reflect
    /// and edge); the sums' order may differ: |a-b| &lt;= 1e-6 * max|b|.
    /// </summary>
    [CnnProperty]
    public Property Pad_and_its_pullback_match_torch() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var x = RandomTensor(rng, 1f, c.Dims);
        var tx = T(x, requiresGrad: true);
        var mode = c.Fill switch { PadFill.Reflect => PaddingModes.Reflect, PadFill.Edge => PaddingModes.Replicate, _ => PaddingModes.Constant };
        var ty = pad(tx, new long[] { c.Left, c.Right, c.Top, c.Bottom }, mode, c.Value);
        var y = Pad2dKernel.Forward(x, c.Top, c.Bottom, c.Left, c.Right, c.Fill, c.Value);
        Exact(y, ty, "pad");
        var dy = RandomTensor(rng, 1f, y.Shape.ToArray());
        ty.backward(new[] { T(dy) });
        Close(Pad2dKernel.Backward(dy, x.Shape, c.Top, c.Bottom, c.Left, c.Right, c.Fill), Grad(tx), 0, 1e-6, "pad dx");
    }));
}
