using Cnn.Core;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.LibTorch;

/// <summary>FsCheck's view of <see cref="RandomNetworks"/>: a family and a seed, so every counterexample is reproducible.</summary>
public static class BridgeCases
{
    public static Arbitrary<BridgeCase> Cases() =>
        (from family in Gen.Elements(Family.Signal, Family.Image, Family.Volume)
         from seed in Gen.Choose(0, int.MaxValue - 1)
         select RandomNetworks.Make(family, seed)).ToArbitrary();
}

/// <summary>
/// The LibTorch interpreter against the im2col interpreter on random networks mixing every layer kind and combinator:
/// output, loss, every trainable parameter's gradient, the input's gradient and the updated state, in both modes.
/// </summary>
/// <remarks>
/// <para>Tolerances, measured over 1,500 random cases (500 per family) before they were set:</para>
/// <para>Output and loss: <c>|a-b| &lt;= 1e-5 + 5e-4 * max|b|</c>. The worst output was 6.5e-5 of its largest element (a 1-d
/// network with training-mode batch norm); float32 through up to 14 layers, each rounding its sums in another order.</para>
/// <para>State: <c>1e-6 + 1e-5 * max|b|</c>; running statistics are one batch mean or variance blended in, the worst
/// measured 5e-7 relative.</para>
/// <para>Gradients (each parameter's and the input's): <c>||a-b|| &lt;= atol * S * sqrt(n) + rtol * ||b||</c>, S the case's
/// gradient scale (see <see cref="BridgeComparison.Compare"/>). Without a training-mode batch norm, atol 1e-3 (the worst
/// zero-in-exact-arithmetic gradient measured 2.8e-4 S per element) and rtol 2e-3 (worst measured 1.2e-3). With one,
/// whose backward pass <c>(γ/σ)(dy - mean(dy) - x̂ mean(dy x̂))</c> cancels most of what it sums, atol 1e-2 and rtol 2e-2:
/// a bias before it, zero in exact arithmetic, measured 1.1e-3 S of noise (batch 3, where σ of three values can be small
/// and γ/σ large); the worst relative error was 5.1e-3 (2 values per channel, where x̂ is ±1 whatever the input), and
/// 6.8e-3 on ResNet-18 (batch 4, `cnn verify --mode train`), where a float64 LibTorch run shows that both float32 backends
/// are 4e-3 to 7e-3 from the exact gradient: the error is float32's on this problem, not either backend's. A wrong rule
/// (a transposed kernel, a missing term, a mask not applied, a slope off by 1 %) is off by far more: each of those four,
/// planted in the interpreter, failed this property within 40 cases.</para>
/// <para>Past its tolerance, a gradient is judged as <c>cnn run</c> judges one: against LibTorch's float64 gradient, it passes
/// if it is at most <see cref="RoundingFactor"/> times as far from it as LibTorch's float32 gradient. A sum that cancels to
/// nothing (a layer's parameters before a training-mode batch norm that removes their scale and shift) is noise in both
/// float32 backends, larger than any bound relative to the case's gradient scale that still catches wrong rules; against
/// the float64 result the two are judged each by its own rounding. Measured on 600 random cases (200 per family, AMD
/// Zen 3, 2026-12-07, 4,768 gradients): none above 3 % of its float32 tolerance; our distance to the float64 gradient over
/// LibTorch's float32 one had a median of 0.83 and a 90th percentile of 1.98 (higher ratios only where LibTorch's came
/// within 1e-8 of float64 by chance and ours within 2e-7, far inside the tolerance: the rule is only asked past it). The
/// one case seen past its tolerance in CI is <see cref="A_gradient_that_a_batch_norm_cancels_is_judged_against_float64"/>.</para>
/// </remarks>
public sealed class RandomNetworkBridgeProperties
{
    public static readonly Tolerance Output = new(1e-5, 5e-4);
    public static readonly Tolerance State = new(1e-6, 1e-5);
    public static readonly Tolerance Gradient = new(1e-3, 2e-3);
    public static readonly Tolerance TrainingBatchNormGradient = new(1e-2, 2e-2);

    /// <summary>The gradient tolerance for a network in a mode: looser when a batch norm runs in training mode.</summary>
    public static Tolerance GradientFor(Network network, Mode mode) =>
        mode == Mode.Train && network.RootNode.Leaves().Any(l => l.Layer is BatchNorm && !l.Frozen) ? TrainingBatchNormGradient : Gradient;

    [Property(MaxTest = 200, Arbitrary = new[] { typeof(BridgeCases) })]
    public void LibTorch_computes_what_apply_computes(BridgeCase c) => Check(c);

    /// <summary>
    /// A case the property drew in a CI run (2026-12-07): a 1-filter 1x1 stride-2 shortcut convolution before a
    /// training-mode batch norm over 24 values, whose weight and bias gradients are zero in exact arithmetic (the batch
    /// norm removes the convolution's scale and shift). Both backends' are rounding noise: 143.5 % of the float32 tolerance
    /// on an Intel Xeon, 212 % on an AMD Zen 3; ours is 2.4e-4 from LibTorch's float64 gradient, LibTorch's float32 4.9e-4.
    /// </summary>
    [Fact]
    public void A_gradient_that_a_batch_norm_cancels_is_judged_against_float64() => Check(RandomNetworks.Make(Family.Image, 490620329));

    private static void Check(BridgeCase c)
    {
        var ours = Loss.Gradient(c.Network, c.Parameters, c.X, c.Labels, c.Loss, c.Mode, c.State, c.Seed);
        var theirs = TorchNetwork.Gradient(c.Network, c.Parameters, c.X, c.Labels, c.Loss, c.Mode, c.State, c.Seed);
        var rows = BridgeComparison.Compare(ours, theirs, Output, GradientFor(c.Network, c.Mode), State).ToList();

        // The no-gradient entry point runs the same rules outside autograd.
        var forward = TorchNetwork.Forward(c.Network, c.Parameters, c.X, c.Mode, c.State, c.Seed);
        rows.Add(new Comparison("Forward output", BridgeComparison.ElementUse(forward, ours.Output, Output)));

        var failed = rows.Where(r => !r.Passed).ToList();
        if (failed.Count > 0 && failed.All(r => r.What.Contains("gradient")))
            failed = AgainstFloat64(c, ours, theirs, failed);
        Assert.True(failed.Count == 0, $"{string.Join("; ", failed)}{Environment.NewLine}{c}");
        // Frozen parameters get no gradient on either side; trainable ones all do.
        var trainable = c.Network.RootNode.Leaves().Where(l => !l.Frozen).SelectMany(l => l.ParameterSpecs()).Select(s => s.Path).Order(StringComparer.Ordinal);
        Assert.Equal(trainable, theirs.Gradients.Paths);
    }

    /// <summary>
    /// Past its tolerance, a gradient still passes if it is no further from LibTorch's float64 gradient than this many times
    /// LibTorch's float32 one: <c>cnn run</c>'s rule, for sums that cancel (see the remarks).
    /// </summary>
    public const int RoundingFactor = 4;

    /// <summary>The gradients past their tolerance judged against LibTorch's float64 gradient: those still failing.</summary>
    private static List<Comparison> AgainstFloat64(BridgeCase c, GradientResult ours, GradientResult theirs, List<Comparison> failed)
    {
        var exact = TorchNetwork.GradientInFloat64(c.Network, c.Parameters, c.X, c.Labels, c.Loss, c.Mode, c.State, c.Seed);
        return failed.Select(r =>
        {
            var (a, b, e) = r.What == "input gradient"
                ? (ours.InputGradient, theirs.InputGradient, exact.InputGradient)
                : (ours.Gradients[r.What["gradient ".Length..]], theirs.Gradients[r.What["gradient ".Length..]], exact.Gradients[r.What["gradient ".Length..]]);
            return new Comparison($"{r.What} against LibTorch's float64 gradient (it used {r.Used:P1} of its float32 tolerance)",
                Distance(a, e) / (RoundingFactor * Distance(b, e)));
        }).Where(r => !r.Passed).ToList();
    }

    private static double Distance(Tensor a, Tensor b)
    {
        double sum = 0;
        for (int i = 0; i < a.Size; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        return double.IsNaN(sum) ? double.PositiveInfinity : Math.Sqrt(sum);
    }

    /// <summary>A property that generates only trivial networks is a defect: check that the generator reaches every kind and case.</summary>
    [Fact]
    public void Generator_covers_every_layer_kind_combinator_and_mode()
    {
        var cases = Enumerable.Range(0, 300).SelectMany(s => new[] { Family.Signal, Family.Image, Family.Volume }.Select(f => RandomNetworks.Make(f, s))).ToArray();
        var nodes = cases.SelectMany(c => All(c.Network.RootNode).Select(n => (Case: c, Node: n))).ToArray();
        var kinds = nodes.Select(n => n.Node.Layer.GetType()).ToHashSet();
        // Every kind the coverage registry lists: a new layer kind fails here until the generator draws it.
        foreach (var kind in Cnn.Tests.Coverage.LayerKinds.Types)
            Assert.Contains(kind, kinds);

        Assert.Contains(nodes, n => n.Node.Layer is Conv2d { Groups: > 1 });
        Assert.Contains(nodes, n => n.Node.Layer is Conv1d { Groups: > 1 });
        Assert.Contains(nodes, n => n.Node.Layer is Conv2d c && (c.DilationH > 1 || c.DilationW > 1));
        Assert.Contains(nodes, n => n.Node.Layer is Conv1d { Dilation: > 1 });
        // Ceil mode that matters: a partial window at the end that floor mode would drop.
        Assert.Contains(nodes, n => n.Node.Layer is MaxPool2d { CeilMode: true } m && CeilMatters(n.Node, m.KernelH, m.KernelW, m.StrideH, m.StrideW, m.PadH, m.PadW));
        Assert.Contains(nodes, n => n.Node.Layer is AvgPool2d { CeilMode: true } a && CeilMatters(n.Node, a.KernelH, a.KernelW, a.StrideH, a.StrideW, a.PadH, a.PadW));
        Assert.Contains(nodes, n => n.Node.Layer is AvgPool2d { CeilMode: true, CountIncludePad: false, PadH: > 0 });
        Assert.Contains(nodes, n => n.Node.Layer is PoolNd { Op: PoolOp.Average, CountIncludePad: false, Pad: > 0 });
        Assert.Contains(nodes, n => n.Node.Layer is MaxPool2d { DilationW: > 1 });
        // A transposed convolution's own end padding (ONNX's SAME_UPPER).
        Assert.Contains(nodes, n => n.Node.Layer is ConvTranspose1d { PadEnd: not null });
        Assert.Contains(nodes, n => n.Node.Layer is ConvTranspose2d { PadEnd: not null, Stride.H: > 1 });
        // ONNX's padding: ends that differ, and padding beyond half the window.
        Assert.Contains(nodes, n => n.Node.Layer is AvgPool2d { CountIncludePad: false } a && a.PadEndH != a.PadH && a.PadEndW != a.PadW);
        Assert.Contains(nodes, n => n.Node.Layer is AvgPool2d a && 2 * Math.Max(a.PadH, a.PadEndH) > a.KernelH);
        Assert.Contains(nodes, n => n.Node.Layer is ConvTranspose2d { Stride.H: > 1, OutputPad.H: > 0 });
        Assert.Contains(nodes, n => n.Node.Layer is FanOut { Join: Join.Sum });
        Assert.Contains(nodes, n => n.Node.Layer is FanOut { Join: Join.Concat });
        Assert.Contains(nodes, n => n.Node.Layer is Residual { Shortcut: null });
        Assert.Contains(nodes, n => n.Node.Layer is Residual { Shortcut: not null });
        Assert.Contains(nodes, n => n.Node.Layer is Softmax { Axis: > 0 });
        Assert.Contains(nodes, n => n.Node.Layer is BatchNorm && n.Node.Frozen && n.Case.Mode == Mode.Train);
        Assert.Contains(nodes, n => n.Node.Layer is BatchNorm && !n.Node.Frozen && n.Case.Mode == Mode.Train && n.Node.Input.Rank == 1);
        Assert.Contains(nodes, n => n.Node.Layer is BatchNorm && !n.Node.Frozen && n.Case.Mode == Mode.Train && n.Node.Input.Rank == 4);
        Assert.Contains(nodes, n => n.Node.Layer is BatchNorm && n.Case.Mode == Mode.Eval);
        Assert.Contains(nodes, n => n.Node.Layer is Dropout { P: > 0 } && !n.Node.Frozen && n.Case.Mode == Mode.Train);
        // LibTorch's avg_pool3d rejects an input smaller than the window: the bridge pads explicitly there.
        Assert.Contains(nodes, n => n.Node.Layer is PoolNd { Op: PoolOp.Average } p && n.Node.Input.Rank == 4 && n.Node.Input.Skip(1).Min() < p.Kernel);
        Assert.Contains(cases, c => c.Loss.Equals(LossFunction.NegativeLogLikelihood));
        Assert.Contains(cases, c => c.Loss.Equals(LossFunction.MeanSquaredError));
        Assert.Contains(cases, c => c.Loss.LabelSmoothing > 0);
        Assert.Contains(cases, c => c.Network.Leaves.Count >= 12);
        Assert.Contains(nodes, n => n.Node.Path.Count(ch => ch == '/') >= 3);
        Assert.Contains(cases, c => c.Network.Heads.Count == 2 && c.Mode == Mode.Train);
        Assert.Contains(nodes, n => n.Node.Layer is AuxiliaryHead && n.Case.Mode == Mode.Train && n.Node.Input.Rank == 4);
    }

    private static bool CeilMatters(Node n, int kh, int kw, int sh, int sw, int ph, int pw) =>
        n.Output[1] > (n.Input[1] + 2 * ph - kh) / sh + 1 || n.Output[2] > (n.Input[2] + 2 * pw - kw) / sw + 1;

    private static IEnumerable<Node> All(Node node) => new[] { node }.Concat(node.Children.SelectMany(All));
}
