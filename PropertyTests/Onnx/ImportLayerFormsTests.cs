using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using Cnn.Onnx.Proto;
using Google.Protobuf;
using static Cnn.Tests.Onnx.GraphBuilder;
using static Cnn.Tests.Onnx.OnnxTestSupport;

namespace Cnn.Tests.Onnx;

/// <summary>
/// Operations that are a layer only in some forms, on hand-made graphs checked against ONNX Runtime: pooling whose padding
/// no pooling layer has (read as an explicit pad, then the pooling), Squeeze and Unsqueeze (a reshape of the sample), Clip
/// with one bound or none, and the identity Transpose; the forms no layer expresses are refused with their reason.
/// </summary>
public sealed class ImportLayerFormsTests
{
    private static ImportedModel ImportAndCompare(ModelProto model, Shape perSample, int batch, int seed)
    {
        var imported = OnnxImporter.FromModel(model, "hand-made");
        var x = RandomBatch(perSample, batch, seed);
        using var runtime = new OnnxPredictor(model.ToByteArray(), new OnnxPredictorOptions { OptimizeGraph = false });
        AssertClose(runtime.Run(x), Apply.Forward(imported.Network, imported.Parameters, x, Mode.Eval, imported.State), Describe(imported.Network));
        return imported;
    }

    /// <summary>
    /// Random 2-d poolings with asymmetric, SAME and large padding (each side below the window, so that every maximum sees a
    /// value): a maximum, read as a pad then the pooling, or an average that counts the padding or leaves it out, read as one
    /// AvgPool2d with ONNX's padding. Each computes what ONNX Runtime computes, and exporting the imported network and
    /// importing it again gives the same layers.
    /// </summary>
    [Fact]
    public void Pooling_with_padding_PyTorch_lacks_is_a_pad_then_the_pooling_or_an_average_with_the_padding()
    {
        var rng = new Random(16);
        int split = 0, uneven = 0;
        for (int trial = 0; trial < 60; trial++)
        {
            bool max = rng.Next(2) == 0, countPad = rng.Next(2) == 0;
            long kh = rng.Next(1, 5), kw = rng.Next(1, 5), sh = rng.Next(1, 4), sw = rng.Next(1, 4);
            long h = kh + rng.Next(0, 6), w = kw + rng.Next(0, 6);
            string autoPad = new[] { "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER" }[rng.Next(4)];
            // ONNX Runtime computes SAME padding without clamping it at zero, so its strides stay within the window.
            if (autoPad != "NOTSET") (sh, sw) = (Math.Min(sh, kh), Math.Min(sw, kw));
            var attributes = new List<AttributeProto> { IntList("kernel_shape", kh, kw), IntList("strides", sh, sw) };
            if (autoPad == "NOTSET") attributes.Add(IntList("pads", rng.Next((int)kh), rng.Next((int)kw), rng.Next((int)kh), rng.Next((int)kw)));
            else attributes.Add(new AttributeProto { Name = "auto_pad", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(autoPad) });
            if (!max) attributes.Add(Int("count_include_pad", countPad ? 1 : 0));
            var b = new GraphBuilder(trial, 13);
            b.Node(max ? "MaxPool" : "AveragePool", new[] { "x" }, "y", attributes.ToArray());
            var model = b.Model("x", new[] { 2L, h, w }, "y");
            var imported = ImportAndCompare(model, new Shape(2, (int)h, (int)w), 3, trial);
            if (imported.Network.Leaves.Any(l => l.Layer is Pad2d)) split++;
            if (imported.Network.Leaves.Any(l => l.Layer is AvgPool2d { SymmetricPadding: false })) uneven++;

            var again = OnnxImporter.FromBytes(OnnxExporter.ToBytes(imported.Network, imported.Parameters, imported.State));
            Assert.True(ImportRoundTripProperties.Canonical(imported.Network).Equals(ImportRoundTripProperties.Canonical(again.Network)),
                $"the tree changed in export and import: {Describe(imported.Network)} became {Describe(again.Network)}");
        }
        // The generator must reach the forms this test is about, not only paddings a pooling layer has.
        Assert.True(split >= 10, $"only {split} of 60 poolings needed an explicit pad");
        Assert.True(uneven >= 10, $"only {uneven} of 60 poolings were an average with ONNX's padding");
    }

    [Theory]
    [InlineData("AveragePool", "pads reach the window", "larger than half the window")]
    [InlineData("AveragePool", "ceil_mode", "whose windows no layer reproduces")]
    public void Pooling_padding_that_no_layer_serves_is_refused_with_its_reason(string op, string variant, string reason)
    {
        var b = new GraphBuilder(3, 13);
        // An average that leaves the padding out of its divisor: zeros padded before it would be counted, and AvgPool2d's own
        // padding must be below the window (so that every window holds an input element) and in floor mode.
        var attributes = variant == "ceil_mode"
            ? new List<AttributeProto> { IntList("kernel_shape", 2, 2), IntList("pads", 0, 0, 1, 1), IntList("strides", 2, 2), Int("ceil_mode", 1) }
            : new List<AttributeProto> { IntList("kernel_shape", 2, 2), IntList("pads", 2, 2, 2, 2) };
        b.Node(op, new[] { "x" }, "y", attributes.ToArray());
        var model = b.Model("x", new long[] { 2, 8, 8 }, "y");
        var e = Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.FromModel(model, "pool"));
        Assert.Contains($"({op})", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [InlineData(11)]
    [InlineData(13)]
    public void Squeeze_and_unsqueeze_of_sample_axes_are_reshapes(long opset)
    {
        // Axes are an attribute before opset 13 and an input from it on; negative axes count from the end.
        var b = new GraphBuilder(4, opset);
        AttributeProto[] Axes(string name, params long[] axes) => opset < 13 ? new[] { IntList("axes", axes) } : Array.Empty<AttributeProto>();
        string[] Inputs(string x, string name, params long[] axes) => opset < 13 ? new[] { x } : new[] { x, b.Ints(name, axes) };
        b.Node("Unsqueeze", Inputs("x", "u_axes", -1, 2), "u", Axes("u_axes", -1, 2));
        b.Node("Relu", new[] { "u" }, "r");
        b.Node("Squeeze", Inputs("r", "s_axes", 2), "y", Axes("s_axes", 2));
        var model = b.Model("x", new long[] { 3, 4 }, "y");

        var imported = ImportAndCompare(model, new Shape(3, 4), 2, 1);

        Assert.Equal(new Shape(3, 4, 1), imported.Network.OutputShape);
        Assert.Equal(new Shape(3, 1, 4, 1), ((Reshape)imported.Network.Leaves.First().Layer).Target);
    }

    [Theory]
    [InlineData("Squeeze", 0, "batch axis 0")]
    [InlineData("Unsqueeze", -4, "batch axis 0")]
    public void Squeeze_and_unsqueeze_of_the_batch_axis_are_refused(string op, long axis, string reason)
    {
        var b = new GraphBuilder(5, 13);
        b.Node(op, new[] { "x", b.Ints("axes", axis) }, "y");
        var model = b.Model("x", new long[] { 3, 4 }, "y");
        var e = Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.FromModel(model, "axes"));
        Assert.Contains($"({op})", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [InlineData(null, null, typeof(Identity))]
    [InlineData(0f, null, typeof(Relu))]
    [InlineData(-0.5f, 0.25f, typeof(HardTanh))]
    [InlineData(null, 0f, typeof(HardTanh))]
    [InlineData(-0.25f, null, typeof(HardTanh))]
    public void Clip_with_one_bound_or_none_is_a_layer_where_one_computes_it(float? min, float? max, Type kind)
    {
        var b = new GraphBuilder(6, 13);
        var inputs = new[] { "x", min is float lo ? Scalar(b, "min", lo) : "", max is float hi ? Scalar(b, "max", hi) : "" };
        b.Node("Clip", inputs, "y");
        var model = b.Model("x", new long[] { 2, 5 }, "y");
        var imported = ImportAndCompare(model, new Shape(2, 5), 3, 2);
        Assert.IsType(kind, imported.Network.Leaves.Single().Layer);
        if (imported.Network.Leaves.Single().Layer is HardTanh h)
            Assert.Equal((min ?? float.NegativeInfinity, max ?? float.PositiveInfinity), (h.Min, h.Max));
    }

    /// <summary>
    /// Add, Sub, Mul and Div by a constant that broadcasts over each sample (of the sample's rank or less, or with a batch axis of 1),
    /// with no layer before them to take it: a constant operand of the sample's rank, computing what ONNX Runtime computes, and the
    /// same tree after export and import. The divisor is kept away from 0.
    /// </summary>
    [Theory]
    [InlineData("Add", new long[] { 5 }, new[] { 1, 1, 5 })]
    [InlineData("Sub", new long[] { 1, 3, 1, 5 }, new[] { 3, 1, 5 })]
    [InlineData("Mul", new long[] { 3, 4, 1 }, new[] { 3, 4, 1 })]
    [InlineData("Div", new long[] { }, new[] { 1, 1, 1 })]
    public void A_constant_operand_no_layer_takes_is_a_layer_of_its_own(string op, long[] dims, int[] expected)
    {
        var b = new GraphBuilder(8, 13);
        b.Node(op, new[] { "x", b.Floats("c", dims, 0.5f, 1.5f) }, "y");
        var model = b.Model("x", new long[] { 3, 4, 5 }, "y");
        var imported = ImportAndCompare(model, new Shape(3, 4, 5), 2, 3);
        var layer = Assert.IsType<ConstantOperand>(imported.Network.Leaves.Single().Layer);
        Assert.Equal(new Shape(expected), layer.Shape);
        var again = OnnxImporter.FromBytes(OnnxExporter.ToBytes(imported.Network, imported.Parameters, imported.State));
        Assert.Equal(ImportRoundTripProperties.Canonical(imported.Network), ImportRoundTripProperties.Canonical(again.Network));
    }

    [Theory]
    [InlineData("Add", new long[] { 2, 3, 4, 5 }, "first axis is the batch axis")]
    [InlineData("Sub", new long[] { 2, 4, 5 }, "does not broadcast")]
    public void A_constant_operand_that_varies_along_the_batch_or_does_not_broadcast_is_refused(string op, long[] dims, string reason)
    {
        var b = new GraphBuilder(9, 13);
        b.Node(op, new[] { "x", b.Floats("c", dims) }, "y");
        var e = Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.FromModel(b.Model("x", new long[] { 3, 4, 5 }, "y"), "constant"));
        Assert.Contains($"({op})", e.Message);
        Assert.Contains(reason, e.Message);
    }

    /// <summary>ONNX's default hard sigmoid (Keras's alpha 0.2, beta 0.5) and another: the layer with that slope and offset.</summary>
    [Theory]
    [InlineData(0.2f, 0.5f)]
    [InlineData(-0.7f, 0.3f)]
    public void HardSigmoid_with_any_alpha_and_beta_is_the_layer_with_them(float alpha, float beta)
    {
        var b = new GraphBuilder(10, 13);
        b.Node("HardSigmoid", new[] { "x" }, "y", new AttributeProto { Name = "alpha", Type = AttributeProto.Types.AttributeType.Float, F = alpha },
            new AttributeProto { Name = "beta", Type = AttributeProto.Types.AttributeType.Float, F = beta });
        var imported = ImportAndCompare(b.Model("x", new long[] { 2, 7 }, "y"), new Shape(2, 7), 3, 4);
        Assert.Equal(new HardSigmoid(alpha, beta), imported.Network.Leaves.Single().Layer with { Name = null });
    }

    [Fact]
    public void Clip_with_a_minimum_above_its_maximum_is_refused_with_its_reason()
    {
        var b = new GraphBuilder(7, 13);
        b.Node("Clip", new[] { "x", Scalar(b, "min", 1f), Scalar(b, "max", 0.5f) }, "y");
        var e = Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.FromModel(b.Model("x", new long[] { 4 }, "y"), "clip"));
        Assert.Contains("min 1 and max 0.5", e.Message);
    }

    [Theory]
    [InlineData(new long[] { 0, 1, 2, 3 }, null)]
    [InlineData(new long[] { 0, 2, 3, 1 }, null)]
    [InlineData(new long[] { 1, 0, 2, 3 }, "moves the batch axis 0")]
    public void Transpose_alone_is_identity_or_permute_unless_it_moves_the_batch(long[] perm, string? reason)
    {
        var b = new GraphBuilder(8, 13);
        b.Node("Transpose", new[] { "x" }, "y", IntList("perm", perm));
        var model = b.Model("x", new long[] { 3, 4, 5 }, "y");
        if (reason is not null)
        {
            Assert.Contains(reason, Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.FromModel(model, "transpose")).Message);
            return;
        }
        var layer = ImportAndCompare(model, new Shape(3, 4, 5), 2, 3).Network.Leaves.Single().Layer;
        if (perm[1] == 1) Assert.IsType<Identity>(layer);
        else Assert.Equal(new Permute(1, 2, 0), layer);
    }

    private static string Scalar(GraphBuilder b, string name, float value) => b.Floats(name, Array.Empty<long>(), value, value);
}
