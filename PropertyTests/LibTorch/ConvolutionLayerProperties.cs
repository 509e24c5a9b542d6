using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Interop.LibTorch;
using Cnn.Onnx;
using Cnn.Tests.Kernels;
using Cnn.Tests.Onnx;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;

namespace Cnn.Tests.LibTorch;

/// <summary>A random convolution layer of any rank, transposed or not, and a per-sample input it fits.</summary>
public sealed record ConvolutionLayerCase(ConvolutionLayer Layer, Shape Input, int Batch, int Seed)
{
    /// <summary>The layer alone as a network.</summary>
    public Network Network => Network.Create(new Serial(Layer), Input);

    /// <summary>
    /// Conv1d/2d/3d or ConvTranspose1d/2d/3d (through <see cref="ConvolutionLayer.From"/>, which builds each record with its
    /// constructor), every option drawn per axis: kernel 1..3, stride 1..3, dilation mostly 1 (2 one time in three), padding 0..2
    /// (where some output meets the input), output padding below the stride; 1..3 groups of 1..2 channels and 1..2 filters; sizes up to 7, 5 and 4 for
    /// rank 1, 2 and 3, from the least that gives a non-empty output.
    /// </summary>
    public static Gen<ConvolutionLayerCase> Generator { get; } =
        from rank in Gen.Choose(1, 3)
        from transposed in Gen.Elements(false, true)
        from axes in Axis(rank, transposed).ArrayOf(rank)
        from groups in Gen.Choose(1, 3)
        from cPerGroup in Gen.Choose(1, 2)
        from fPerGroup in Gen.Choose(1, 2)
        from bias in Gen.Elements(true, false)
        from batch in Gen.Choose(1, 3)
        from seed in Gen.Choose(0, 1_000_000_000)
        let spec = ConvSpec.Of(groups * fPerGroup, axes.Select(a => a.K).ToArray(), axes.Select(a => a.S).ToArray(), axes.Select(a => a.P).ToArray(),
            axes.Select(a => a.D).ToArray(), groups, bias, transposed ? axes.Select(a => a.OP).ToArray() : null)
        select new ConvolutionLayerCase(ConvolutionLayer.From(spec), new Shape(new[] { groups * cPerGroup }.Concat(axes.Select(a => a.Size)).ToArray()), batch, seed);

    private static Gen<(int Size, int K, int S, int P, int OP, int D)> Axis(int rank, bool transposed) =>
        from k in Gen.Choose(1, 3)
        from s in Gen.Choose(1, 3)
        from d in Gen.Frequency((2, Gen.Constant(1)), (1, Gen.Constant(2)))
        from p in Gen.Choose(0, 2)
        from op in Gen.Choose(0, transposed ? s - 1 : 0)
        let reach = d * (k - 1) + 1
        let min = transposed ? 1 + (Math.Max(0, 2 * p - reach + 1 - op) + s - 1) / s : Math.Max(1, reach - 2 * p)
        from size in Gen.Choose(min, Math.Max(min, rank switch { 1 => 7, 2 => 5, _ => 4 }))
        where Reads(transposed, size, k, s, p, op, d)
        select (size, k, s, p, op, d);

    /// <summary>
    /// Whether some output along the axis meets the input: where every window reads only padding (or every output falls in a
    /// dilation gap), all gradients are zero, which a comparison relative to the reference's size cannot scale.
    /// </summary>
    private static bool Reads(bool transposed, int size, int k, int s, int p, int op, int d)
    {
        if (transposed)
        {
            int outSize = (size - 1) * s - 2 * p + d * (k - 1) + 1 + op;
            return Enumerable.Range(0, size).Any(i => Enumerable.Range(0, k).Any(t => i * s + t * d - p is var o && o >= 0 && o < outSize));
        }
        int outputs = (size + 2 * p - d * (k - 1) - 1) / s + 1;
        return Enumerable.Range(0, outputs).Any(o => Enumerable.Range(0, k).Any(t => o * s - p + t * d is var i && i >= 0 && i < size));
    }

    public override string ToString() => $"{Layer} on {Input} x{Batch} (seed {Seed})";
}

/// <summary>
/// Every convolution kind through the interpreters that compute with it: apply forward and pullback against the LibTorch
/// functional bridge and against TorchModule's translation; ONNX export against ONNX Runtime and import back to the same
/// layer; JSON round trip.
/// </summary>
public sealed class ConvolutionLayerProperties
{
    private static readonly Arbitrary<ConvolutionLayerCase> Cases = ConvolutionLayerCase.Generator.ToArbitrary();

    /// <summary>Outputs element-wise, gradients in norm (BridgeComparison): float32 sums of at most 2*27 products per output, in another order.</summary>
    private static readonly Tolerance Output = new(1e-5, 1e-4), Gradient = new(1e-5, 1e-4);

    [Fact]
    public void Generator_covers_every_kind_and_option()
    {
        var cases = ConvolutionLayerCase.Generator.Sample(2000, 50).ToList();
        foreach (var t in new[] { typeof(Conv1d), typeof(Conv2d), typeof(Conv3d), typeof(ConvTranspose1d), typeof(ConvTranspose2d), typeof(ConvTranspose3d) })
            Assert.Contains(cases, c => c.Layer.GetType() == t);
        Assert.Contains(cases, c => c.Layer is Conv3d { Kernel: var k } && k.D != k.H && k.H != k.W && k.D != k.W);
        Assert.Contains(cases, c => c.Layer is ConvTranspose2d { Stride: var s, OutputPad: var q, Dilation.W: 2 } && s.H != s.W && q.H > 0);
        Assert.Contains(cases, c => c.Layer is ConvTranspose3d { Groups: > 1, Dilation: var d } && d.D != d.W);
        Assert.Contains(cases, c => c.Layer is ConvTranspose1d { OutputPad: > 0, Dilation: 2, Groups: 3 });
        Assert.Contains(cases, c => c.Layer is Conv1d { Dilation: 2, Groups: > 1, Stride: 3 });
        Assert.Contains(cases, c => c.Layer is Conv2d { KernelH: 1, KernelW: 3, PadH: 2 });
    }

    [Property(MaxTest = 120)]
    public Property Apply_matches_the_LibTorch_bridge_forward_and_backward() => Prop.ForAll(Cases, c => TorchReference.Scoped(() =>
    {
        var net = c.Network;
        var p = Initializer.Init(net, c.Seed);
        var x = OnnxTestSupport.RandomBatch(c.Input, c.Batch, c.Seed);
        var dy = OnnxTestSupport.RandomBatch(net.OutputShape, c.Batch, c.Seed + 1);
        var ours = BridgeComparison.ApplyPullback(net, p, x, dy, Mode.Train, Parameters.Empty, 0);
        var theirs = TorchNetwork.Pullback(net, p, x, dy, Mode.Train);
        var rows = BridgeComparison.Compare(ours, theirs, Output, Gradient, Output);
        Assert.True(rows.All(r => r.Passed), $"{c}: " + string.Join("; ", rows.Where(r => !r.Passed)));
        Assert.Contains(rows, r => r.What.EndsWith("/weight", StringComparison.Ordinal));

        using var module = TorchModule.Build(net, p);
        using var tx = TorchTensors.ToTorch(x);
        using var ty = module.forward(tx);
        Assert.True(BridgeComparison.ElementUse(TorchTensors.FromTorch(ty), ours.Output, Output) <= 1, $"{c}: TorchModule's output differs");
    }));

    [Property(MaxTest = 60)]
    public Property Onnx_export_matches_onnx_runtime_and_imports_back() => Prop.ForAll(Cases, c =>
    {
        var net = c.Network;
        var p = Initializer.Init(net, c.Seed);
        var x = OnnxTestSupport.RandomBatch(c.Input, c.Batch, c.Seed);
        var expected = Apply.Forward(net, p, x, Mode.Eval);
        OnnxTestSupport.AssertClose(expected, OnnxTestSupport.RunExported(net, p, x, optimize: false), $"{c}: ONNX Runtime");
        var imported = OnnxImporter.FromBytes(OnnxExporter.ToBytes(net, p));
        Assert.Equal(c.Layer, Assert.Single(imported.Network.Leaves).Layer with { Name = null });
        Assert.Equal(c.Layer, NetworkJson.DeserializeLayer(NetworkJson.SerializeLayer(c.Layer), "round trip"));
    });
}
