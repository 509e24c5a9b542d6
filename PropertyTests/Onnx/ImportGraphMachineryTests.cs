using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using Cnn.Onnx.Proto;
using Google.Protobuf;
using FormatException = Cnn.Core.FormatException;
using static Cnn.Tests.Onnx.GraphBuilder;
using static Cnn.Tests.Onnx.OnnxTestSupport;

namespace Cnn.Tests.Onnx;

/// <summary>
/// What real exporters write around the layers, on hand-made graphs checked against ONNX Runtime: aliases of one
/// initializer, shape subgraphs with a dynamic batch, constant scales and shifts, reductions and growing concatenations,
/// in the operator sets where their inputs moved from attributes to tensors.
/// </summary>
public sealed class ImportGraphMachineryTests
{
    private static void AssertComputesAsOnnxRuntime(ModelProto model, ImportedModel imported, Shape perSample, int batch)
    {
        var x = RandomBatch(perSample, batch, 5);
        using var runtime = new OnnxPredictor(model.ToByteArray(), new OnnxPredictorOptions { OptimizeGraph = false });
        AssertClose(runtime.Run(x), Apply.Forward(imported.Network, imported.Parameters, x, Mode.Eval, imported.State), Describe(imported.Network));
    }

    [Fact]
    public void Identity_aliases_of_one_initializer_are_reported_and_each_layer_gets_a_copy()
    {
        var b = new GraphBuilder(1, 13);
        b.Floats("w1", new long[] { 4, 3, 1, 1 });
        b.Floats("w2", new long[] { 4, 4, 1, 1 });
        b.Floats("bias", new long[] { 4 });
        b.Node("Identity", new[] { "bias" }, "bias_alias");
        b.Node("Identity", new[] { "bias_alias" }, "bias_alias2");
        b.Node("Conv", new[] { "x", "w1", "bias" }, "c1");
        b.Node("Relu", new[] { "c1" }, "r1");
        b.Node("Conv", new[] { "r1", "w2", "bias_alias2" }, "c2");
        var model = b.Model("x", new long[] { 3, 5, 5 }, "c2");

        var imported = OnnxImporter.FromModel(model, "aliases");

        Assert.Equal("bias", imported.Report.Aliases["bias_alias"]);
        Assert.Equal("bias", imported.Report.Aliases["bias_alias2"]);
        var users = imported.Report.SharedWeights["bias"];
        Assert.Equal(2, users.Count);
        Assert.All(users, u => Assert.True(imported.Parameters.Contains(u), $"'{u}' is not a parameter path"));
        Assert.Equal(imported.Parameters[users[0]].Span.ToArray(), imported.Parameters[users[1]].Span.ToArray());
        AssertComputesAsOnnxRuntime(model, imported, new Shape(3, 5, 5), 2);
    }

    [Theory]
    [InlineData(11)]
    [InlineData(13)]
    [InlineData(17)]
    public void A_view_through_a_shape_subgraph_keeps_the_dynamic_batch(long opset)
    {
        // torch's x.view(x.size(0), -1): Shape, Gather, Unsqueeze (axes an attribute before opset 13, an input after), Concat, Reshape.
        var b = new GraphBuilder(2, opset);
        b.Floats("fc", new long[] { 5, 18 });
        b.Scalar("zero", 0);
        b.Ints("minus1", -1);
        b.Node("Relu", new[] { "x" }, "r");
        b.Node("Shape", new[] { "r" }, "shape");
        b.Node("Gather", new[] { "shape", "zero" }, "n", Int("axis", 0));
        var unsqueezed = opset < 13 ? b.Node("Unsqueeze", new[] { "n" }, "n1", IntList("axes", 0)) : b.Node("Unsqueeze", new[] { "n", b.Ints("axes", 0) }, "n1");
        b.Node("Concat", new[] { unsqueezed, "minus1" }, "target", Int("axis", 0));
        b.Node("Reshape", new[] { "r", "target" }, "flat");
        b.Node("Gemm", new[] { "flat", "fc" }, "y", Int("transB", 1));
        var model = b.Model("x", new long[] { 2, 3, 3 }, "y");

        var imported = OnnxImporter.FromModel(model, "view");

        Assert.Contains(imported.Network.Leaves, l => l.Layer is Reshape { Target: var t } && t == new Shape(18));
        Assert.Equal(4, imported.Report.FoldedNodes.Count);
        foreach (int batch in new[] { 1, 3 }) AssertComputesAsOnnxRuntime(model, imported, new Shape(2, 3, 3), batch);
    }

    [Fact]
    public void Arithmetic_on_a_dynamic_batch_size_is_refused_with_the_node()
    {
        var b = new GraphBuilder(3, 13);
        b.Scalar("zero", 0);
        b.Ints("two", 2);
        b.Ints("minus1", -1);
        b.Node("Shape", new[] { "x" }, "shape");
        b.Node("Gather", new[] { "shape", "zero" }, "n", Int("axis", 0));
        b.Node("Unsqueeze", new[] { "n", b.Ints("axes", 0) }, "n1");
        b.Node("Mul", new[] { "n1", "two" }, "n2");
        b.Node("Concat", new[] { "n2", "minus1" }, "target", Int("axis", 0));
        b.Node("Reshape", new[] { "x", "target" }, "y");
        var model = b.Model("x", new long[] { 2, 4 }, "y");

        var e = Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.FromModel(model, "batch arithmetic"));
        Assert.Contains("'/n2' (Mul)", e.Message);
        Assert.Contains("batch size", e.Message);
    }

    [Theory]
    [InlineData(13)]
    [InlineData(18)]
    public void Mean_and_maximum_over_the_spatial_axes_are_global_pooling(long opset)
    {
        // Opset 18 moved the axes of ReduceMean and ReduceMax from an attribute to an input.
        var b = new GraphBuilder(4, opset);
        var axes = opset < 18 ? Array.Empty<string>() : new[] { b.Ints("axes", 2, -1) };
        var attributes = opset < 18 ? new[] { IntList("axes", 2, -1) } : Array.Empty<AttributeProto>();
        b.Node("ReduceMean", axes.Prepend("x").ToArray(), "m", attributes);
        b.Node("ReduceMax", axes.Prepend("m").ToArray(), "y", attributes);
        var model = b.Model("x", new long[] { 3, 4, 5 }, "y");

        var imported = OnnxImporter.FromModel(model, "reduce");

        Assert.Equal(new[] { PoolOp.Average, PoolOp.Max }, imported.Network.Leaves.Select(l => ((GlobalPool)l.Layer).Op));
        AssertComputesAsOnnxRuntime(model, imported, new Shape(3, 4, 5), 2);
    }

    [Theory]
    [InlineData("ReduceMean", 13)]
    [InlineData("ReduceMax", 18)]
    public void A_spatial_reduction_that_keeps_no_axes_is_global_pooling_then_flatten(string op, long opset)
    {
        // ShuffleNet v2's x.mean([2, 3]) before its classifier.
        var b = new GraphBuilder(6, opset);
        var axes = opset < 18 ? Array.Empty<string>() : new[] { b.Ints("axes", -1, 2) };
        var attributes = (opset < 18 ? new[] { IntList("axes", -1, 2) } : Array.Empty<AttributeProto>()).Append(Int("keepdims", 0)).ToArray();
        b.Node(op, axes.Prepend("x").ToArray(), "m", attributes);
        b.Floats("w", new long[] { 5, 3 });
        b.Node("Gemm", new[] { "m", "w" }, "y", Int("transB", 1));
        var model = b.Model("x", new long[] { 3, 4, 6 }, "y");

        var imported = OnnxImporter.FromModel(model, "reduce without keepdims");

        Assert.Equal(new[] { "GlobalPool", "Flatten", "Dense" }, imported.Network.Leaves.Select(l => l.Layer.GetType().Name));
        Assert.Equal(new Shape(5), imported.Network.OutputShape);
        AssertComputesAsOnnxRuntime(model, imported, new Shape(3, 4, 6), 3);
    }

    [Theory]
    [InlineData("ReduceMean", 13, 1, 0)]
    [InlineData("ReduceMax", 13, -3, 0)]
    [InlineData("ReduceMean", 18, -3, 1)]
    [InlineData("ReduceMax", 18, 1, 1)]
    public void A_reduction_over_the_channels_is_channel_pooling_with_one_window(string op, long opset, long axis, long keepdims)
    {
        // On [N, C, H, W] keepdims 0 leaves [N, H, W], which a Flatten from axis 1 (the rewrite of a spatial reduction) would merge into [N, H * W].
        var b = new GraphBuilder(8, opset);
        var axes = opset < 18 ? Array.Empty<string>() : new[] { b.Ints("axes", axis) };
        var attributes = (opset < 18 ? new[] { IntList("axes", axis) } : Array.Empty<AttributeProto>()).Append(Int("keepdims", keepdims)).ToArray();
        b.Node(op, axes.Prepend("x").ToArray(), "y", attributes);
        var model = b.Model("x", new long[] { 5, 3, 4 }, "y");

        var imported = OnnxImporter.FromModel(model, "channel reduction");

        var pool = imported.Network.Leaves.First().Layer with { Name = null };
        Assert.Equal(op == "ReduceMean" ? new ChannelAvgPool(5, 5) : new ChannelMaxPool(5, 5), pool);
        Assert.Equal(keepdims == 1 ? new Shape(1, 3, 4) : new Shape(3, 4), imported.Network.OutputShape);
        AssertComputesAsOnnxRuntime(model, imported, new Shape(5, 3, 4), 3);
    }

    [Fact]
    public void A_reduction_that_includes_the_batch_axis_is_refused_with_its_reason()
    {
        var b = new GraphBuilder(8, 13);
        b.Node("ReduceMean", new[] { "x" }, "y", IntList("axes", 0, 1));
        var model = b.Model("x", new long[] { 5, 3 }, "y");

        var e = Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.FromModel(model, "batch reduction"));

        Assert.Contains("batch axis 0", e.Message);
    }

    [Theory]
    [InlineData("Mul", "Add")]
    [InlineData("Div", "Sub")]
    public void Constant_scales_and_shifts_per_channel_fold_into_the_layer_before(string scale, string shift)
    {
        var b = new GraphBuilder(5, 13);
        b.Floats("w", new long[] { 3, 2, 3, 3 });
        b.Floats("s", new long[] { 1, 3, 1, 1 }, 0.5f, 1.5f);
        b.Floats("t", new long[] { 3, 1, 1 });
        b.Floats("u", new long[] { 1 }, 0.5f, 1.5f);
        foreach (var name in new[] { "g", "beta", "mean" }) b.Floats(name, new long[] { 3 });
        b.Floats("var", new long[] { 3 }, 0.5f, 1.5f);
        b.Node("Conv", new[] { "x", "w" }, "c", IntList("pads", 1, 1, 1, 1));
        b.Node(scale, new[] { "c", "s" }, "cs");
        b.Node(shift, new[] { "cs", "t" }, "ct");
        b.Node("BatchNormalization", new[] { "ct", "g", "beta", "mean", "var" }, "bn");
        b.Node("Mul", new[] { "u", "bn" }, "y");
        var model = b.Model("x", new long[] { 2, 6, 6 }, "y");

        var imported = OnnxImporter.FromModel(model, "affine");

        Assert.Collection(imported.Network.Leaves, l => Assert.True(l.Layer is Conv2d { UseBias: true }), l => Assert.IsType<BatchNorm>(l.Layer));
        Assert.Equal(3, imported.Report.Rewrites.Count);
        AssertComputesAsOnnxRuntime(model, imported, new Shape(2, 6, 6), 2);
    }

    /// <summary>
    /// A per-channel constant after a layer that has no bias to take it, and a constant that is not per channel after a
    /// convolution: each a constant operand of its own after the layer, computing what ONNX Runtime computes.
    /// </summary>
    [Theory]
    [InlineData("Relu")]
    [InlineData("Conv")]
    public void A_constant_operand_the_layer_before_cannot_take_is_a_layer_of_its_own(string before)
    {
        var b = new GraphBuilder(6, 13);
        b.Floats("w", new long[] { 3, 3, 1, 1 });
        b.Floats("c", before == "Relu" ? new long[] { 3, 1, 1 } : new long[] { 3, 4, 4 });
        b.Node(before, before == "Relu" ? new[] { "x" } : new[] { "x", "w" }, "h");
        b.Node("Add", new[] { "h", "c" }, "y");
        var model = b.Model("x", new long[] { 3, 4, 4 }, "y");

        var imported = OnnxImporter.FromModel(model, "constant add");

        Assert.Collection(imported.Network.Leaves, l => Assert.IsType(before == "Relu" ? typeof(Relu) : typeof(Conv2d), l.Layer),
            l => Assert.Equal(new ConstantOperand(Cnn.Core.Kernels.BinaryOp.Add, before == "Relu" ? new Shape(3, 1, 1) : new Shape(3, 4, 4)), l.Layer with { Name = null }));
        Assert.Empty(imported.Report.Rewrites);
        AssertComputesAsOnnxRuntime(model, imported, new Shape(3, 4, 4), 2);
    }

    [Fact]
    public void Growing_concatenations_become_a_chain_of_fan_outs()
    {
        // DenseNet: every layer reads torch.cat of all earlier features, starting with a Concat of one operand; a Pad of zeros on the way.
        var b = new GraphBuilder(7, 13);
        b.Floats("w1", new long[] { 2, 2, 1, 1 });
        b.Floats("w2", new long[] { 2, 4, 3, 3 });
        b.Ints("nopad", 0, 0, 0, 0, 0, 0, 0, 0);
        b.Node("Concat", new[] { "x" }, "c1", Int("axis", 1));
        b.Node("Conv", new[] { "c1", "w1" }, "f1");
        b.Node("Concat", new[] { "x", "f1" }, "c2", Int("axis", 1));
        b.Node("Conv", new[] { "c2", "w2" }, "f2", IntList("pads", 1, 1, 1, 1));
        b.Node("Concat", new[] { "x", "f1", "f2" }, "c3", Int("axis", 1));
        b.Node("Pad", new[] { "c3", "nopad" }, "y");
        var model = b.Model("x", new long[] { 2, 4, 4 }, "y");

        var imported = OnnxImporter.FromModel(model, "dense");

        Assert.Equal(2, All(imported.Network.RootNode).Count(n => n.Layer is FanOut { Join: Join.Concat }));
        Assert.Equal(new Shape(6, 4, 4), imported.Network.OutputShape);
        Assert.Equal(3, imported.Report.Rewrites.Count);
        AssertComputesAsOnnxRuntime(model, imported, new Shape(2, 4, 4), 2);
    }

    [Fact]
    public void Folding_that_would_make_a_huge_constant_is_refused()
    {
        // Two small initializers that broadcast to 2^26 elements: a hostile file must not make the importer allocate them.
        var b = new GraphBuilder(8, 13);
        b.Floats("column", new long[] { 8192, 1 });
        b.Floats("row", new long[] { 1, 8192 });
        b.Node("Add", new[] { "column", "row" }, "big");
        b.Node("Relu", new[] { "x" }, "y");
        var model = b.Model("x", new long[] { 4 }, "y");

        var e = Assert.Throws<FormatException>(() => OnnxImporter.FromModel(model, "hostile"));
        Assert.Contains("'/big' (Add)", e.Message);
        Assert.Contains("67108864 elements", e.Message);
    }

    private static IEnumerable<Node> All(Node node) => node.Children.SelectMany(All).Prepend(node);
}
