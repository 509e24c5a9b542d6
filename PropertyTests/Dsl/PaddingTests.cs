using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;
using Padding = Cnn.Dsl.Padding;

namespace Cnn.Tests.Dsl;

/// <summary><see cref="Padding"/> and the named constructors: the same records as the positional ones, and 'same' as LibTorch's.</summary>
public class PaddingTests
{
    [Fact]
    public void NamedConstructorsBuildTheSameRecordsAsThePositionalOnes()
    {
        Assert.Equal(new Conv2d(6, 5, 5, PadH: 2, PadW: 2), new Conv2d(6, kernel: 5, padding: Padding.Same));
        Assert.Equal(new Conv2d(16, 5, 5), new Conv2d(16, kernel: 5));
        Assert.Equal(new Conv2d(8, 3, 3, 2, 2, 1, 1), new Conv2d(8, kernel: 3, stride: 2, padding: Padding.Of(1)));
        Assert.Equal(new Conv2d(8, 3, 3, PadH: 2, PadW: 2, DilationH: 2, DilationW: 2), new Conv2d(8, kernel: 3, dilation: 2, padding: Padding.Same));
        Assert.Equal(new Conv2d(8, 3, 3, PadH: 1, PadW: 0), new Conv2d(8, kernel: 3, padding: Padding.Of(1, 0)));
        Assert.Equal(new AvgPool2d(2, 2, 2, 2), AvgPool2d.Square(2));
        Assert.Equal(new MaxPool2d(2, 2, 2, 2), MaxPool2d.Square(2));
        Assert.Equal(new MaxPool2d(3, 3, 1, 1, 1, 1), MaxPool2d.Square(3, stride: 1, padding: Padding.Same));
        Assert.Equal(new AvgPool2d(3, 3, 2, 2, 1, 1, CountIncludePad: false), AvgPool2d.Square(3, stride: 2, padding: Padding.Of(1), countIncludePad: false));
    }

    [Fact]
    public void SameWithAnEvenKernelIsRefusedWhenTheLayerIsMade()
    {
        var e = Assert.Throws<ArgumentException>(() => new Conv2d(4, kernel: 4, padding: Padding.Same));
        Assert.Contains("odd kernel", e.Message);
        Assert.Throws<ArgumentException>(() => MaxPool2d.Square(2, stride: 1, padding: Padding.Same));
        Assert.Throws<ArgumentOutOfRangeException>(() => Padding.Of(-1));
        // An even kernel with an even dilation has an odd extent: allowed.
        Assert.Equal(2, new Conv2d(4, kernel: 2, dilation: 4, padding: Padding.Same).PadH);
    }

    [CnnProperty]
    public Property SameKeepsTheSizeAtStrideOneAndGivesCeilOfSizeOverStrideOtherwise() =>
        Prop.ForAll((from k in Gen.Elements(1, 3, 5, 7) from d in Gen.Choose(1, 3) from s in Gen.Choose(1, 3)
                     from h in Gen.Choose(1, 12) from w in Gen.Choose(1, 12) select (k, d, s, h, w)).ToArbitrary(), t =>
        {
            var span = t.d * (t.k - 1) + 1;
            if (span > t.h + span - 1) return true.ToProperty();
            var net = Network.Create(new Conv2d(2, kernel: t.k, stride: t.s, dilation: t.d, padding: Padding.Same), new Shape(1, t.h, t.w));
            int Ceil(int n) => (n + t.s - 1) / t.s;
            return (net.OutputShape == new Shape(2, Ceil(t.h), Ceil(t.w))).Label($"{t}: {net.OutputShape}");
        });

    /// <summary>Stride 1 (where LibTorch accepts padding='same'): the outputs agree to float32 summation rounding.</summary>
    [CnnProperty]
    public Property SameAtStrideOneMatchesLibTorchPaddingSame() =>
        Prop.ForAll((from k in Gen.Elements(1, 3, 5) from d in Gen.Choose(1, 2) from c in Gen.Choose(1, 3) from f in Gen.Choose(1, 4)
                     from h in Gen.Choose(1, 9) from w in Gen.Choose(1, 9) from seed in Gen.Choose(0, 9999) select (k, d, c, f, h, w, seed)).ToArbitrary(), t =>
        {
            Scoped(() =>
            {
                var net = Network.Create(new Conv2d(t.f, kernel: t.k, dilation: t.d, padding: Padding.Same), new Shape(t.c, t.h, t.w));
                var p = Initializer.Init(net, t.seed);
                var x = RandomTensor(new Random(t.seed), 1f, 2, t.c, t.h, t.w);
                var ours = Apply.Forward(net, p, x);
                using var conv = torch.nn.Conv2d(t.c, t.f, t.k, TorchSharp.Padding.Same, dilation: t.d);
                using (torch.no_grad())
                {
                    conv.weight!.copy_(T(p["conv1/weight"]));
                    conv.bias!.copy_(T(p["conv1/bias"]));
                }
                Close(ours, conv.forward(T(x)), 1e-5, 1e-4, $"conv2d same {t}");
            });
            return true.ToProperty();
        });
}
