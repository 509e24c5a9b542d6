using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using Cnn.Onnx.Proto;
using Google.Protobuf;
using static Cnn.Tests.Onnx.OnnxTestSupport;
using AttributeType = Cnn.Onnx.Proto.AttributeProto.Types.AttributeType;
using DataType = Cnn.Onnx.Proto.TensorProto.Types.DataType;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Tests.Onnx;

/// <summary>Models made elsewhere, unsupported operations, and hostile files.</summary>
public sealed class OnnxImporterTests
{
    /// <summary>
    /// A model as another tool writes it, built by hand: names that are not paths, nodes out of order, weights listed
    /// among the graph inputs (IR 3 style), a bias as a Constant node, auto_pad, defaults left out, Gemm with transB = 0
    /// and alpha, and a residual sum whose operands come in the other order.
    /// </summary>
    private static ModelProto ForeignModel()
    {
        var rng = new Random(17);
        var g = new GraphProto { Name = "torch_jit" };
        TensorProto Floats(string name, params long[] dims)
        {
            var t = new TensorProto { Name = name, DataType = (int)DataType.Float };
            t.Dims.AddRange(dims);
            long n = dims.Aggregate(1L, (a, b) => a * b);
            for (long i = 0; i < n; i++) t.FloatData.Add((float)(rng.NextDouble() - 0.5));
            return t;
        }
        NodeProto Node(string name, string op, string[] inputs, string output, params AttributeProto[] attributes)
        {
            var n = new NodeProto { Name = name, OpType = op };
            n.Input.AddRange(inputs);
            n.Output.Add(output);
            n.Attribute.AddRange(attributes);
            return n;
        }
        AttributeProto Ints(string name, params long[] v) { var a = new AttributeProto { Name = name, Type = AttributeType.Ints }; a.Ints.AddRange(v); return a; }
        AttributeProto Str(string name, string v) => new() { Name = name, Type = AttributeType.String, S = ByteString.CopyFromUtf8(v) };
        AttributeProto F(string name, float v) => new() { Name = name, Type = AttributeType.Float, F = v };

        var weights = new[] { Floats("stem.weight", 4, 3, 3, 3), Floats("bn.scale", 4), Floats("bn.bias", 4), Floats("bn.mean", 4), Floats("proj.w", 4, 4, 1, 1), Floats("fc.w", 4, 5) };
        var variance = new TensorProto { Name = "bn.var", DataType = (int)DataType.Float };
        variance.Dims.Add(4);
        variance.FloatData.AddRange(new[] { 0.5f, 1f, 1.5f, 2f });
        g.Initializer.AddRange(weights.Append(variance));
        var constant = new NodeProto { Name = "", OpType = "Constant" };
        constant.Output.Add("stem.b");
        constant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeType.Tensor, T = Floats("", 4) });

        var nodes = new List<NodeProto>
        {
            Node("/fc/Gemm", "Gemm", new[] { "flat", "fc.w" }, "logits", F("alpha", 0.5f)),
            Node("/stem/Conv", "Conv", new[] { "data", "stem.weight", "stem.b" }, "c1", Str("auto_pad", "SAME_UPPER")),
            Node("/act", "Relu", new[] { "c1" }, "r1"),
            constant,
            Node("/pool", "MaxPool", new[] { "r1" }, "p1", Ints("kernel_shape", 2, 2), Ints("strides", 2, 2)),
            Node("/bn", "BatchNormalization", new[] { "p1", "bn.scale", "bn.bias", "bn.mean", "bn.var" }, "b1"),
            Node("/proj", "Conv", new[] { "b1", "proj.w" }, "q1", Ints("kernel_shape", 1, 1)),
            Node("/add", "Add", new[] { "b1", "q1" }, "a1"),
            Node("/gap", "GlobalAveragePool", new[] { "a1" }, "g1"),
            Node("/flat", "Flatten", new[] { "g1" }, "flat"),
            Node("/softmax", "Softmax", new[] { "logits" }, "probabilities"),
        };
        g.Node.AddRange(nodes);
        ValueInfoProto Info(string name, params object[] dims)
        {
            var shape = new TensorShapeProto();
            foreach (var d in dims)
                shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float, Shape = shape } } };
        }
        g.Input.Add(Info("stem.weight", 4, 3, 3, 3));
        g.Input.Add(Info("data", "N", 3, 8, 8));
        g.Output.Add(Info("probabilities", "N", 5));
        var model = new ModelProto { IrVersion = 3, ProducerName = "elsewhere", Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "classes", Value = "a,b,c,d,e" });
        return model;
    }

    private static ModelProto Topological(ModelProto model)
    {
        var sorted = model.Clone();
        var order = new[] { 1, 3, 2, 4, 5, 6, 7, 8, 9, 0, 10 };
        sorted.Graph.Node.Clear();
        sorted.Graph.Node.AddRange(order.Select(i => model.Graph.Node[i]));
        return sorted;
    }

    [Fact]
    public void Model_made_elsewhere_imports_and_computes_what_onnx_runtime_computes()
    {
        var model = ForeignModel();
        var imported = OnnxImporter.FromBytes(model.ToByteArray(), "foreign");

        Assert.Equal(new Shape(3, 8, 8), imported.Network.InputShape);
        Assert.Equal(new Shape(5), imported.Network.OutputShape);
        Assert.Equal("a,b,c,d,e", imported.Metadata["classes"]);
        var kinds = imported.Network.Leaves.Select(n => n.Layer.GetType().Name).ToArray();
        Assert.Equal(new[] { "Conv2d", "Relu", "MaxPool2d", "BatchNorm", "Identity", "Conv2d", "GlobalPool", "Flatten", "Dense", "Softmax" }, kinds);
        Assert.Equal(new Conv2d(4, 3, 3, PadH: 1, PadW: 1) { Name = null }, imported.Network.Leaves[0].Layer with { Name = null });
        Assert.Contains(imported.Network.RootNode.Children, c => c.Layer is Residual);

        var x = RandomBatch(new Shape(3, 8, 8), 4, 5);
        using var runtime = new OnnxPredictor(Topological(model).ToByteArray(), new OnnxPredictorOptions { OptimizeGraph = false });
        AssertClose(runtime.Run(x), Apply.Forward(imported.Network, imported.Parameters, x, Mode.Eval, imported.State), "foreign model");
    }

    [Fact]
    public void Unsupported_operation_names_the_operation_and_the_node()
    {
        var model = ForeignModel();
        model.Graph.Node[2].OpType = "Selu";
        var e = Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.FromBytes(model.ToByteArray()));
        Assert.Contains("'Selu'", e.Message);
        Assert.Contains("'/act'", e.Message);
    }

    [Theory]
    [InlineData("asymmetric", "asymmetric padding")]
    [InlineData("even-lrn", "even size 4")]
    [InlineData("unknown-attribute", "attribute 'foo'")]
    [InlineData("constant-first-sub", "constant first operand")]
    [InlineData("second-input", "2 inputs")]
    [InlineData("custom-domain", "domain 'com.example'")]
    public void Unsupported_attributes_and_shapes_are_named(string what, string expected)
    {
        var model = ForeignModel();
        var nodes = model.Graph.Node;
        switch (what)
        {
            case "asymmetric":
                nodes[1].Attribute.Clear();
                nodes[1].Attribute.Add(new AttributeProto { Name = "pads", Type = AttributeType.Ints, Ints = { 0, 0, 2, 2 } });
                break;
            case "even-lrn":
                nodes[2].OpType = "LRN";
                nodes[2].Attribute.Add(new AttributeProto { Name = "size", Type = AttributeType.Int, I = 4 });
                break;
            case "unknown-attribute":
                nodes[2].Attribute.Add(new AttributeProto { Name = "foo", Type = AttributeType.Int, I = 1 });
                break;
            case "constant-first-sub":
                nodes[7].OpType = "Sub";
                nodes[7].Input[0] = "bn.mean";
                nodes[7].Input[1] = "q1";
                break;
            case "second-input":
                nodes[6].Input[1] = "b1";
                break;
            case "custom-domain":
                nodes[2].Domain = "com.example";
                break;
        }
        var e = Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.FromBytes(model.ToByteArray()));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Exported_model_file_imports_with_its_paths_and_metadata()
    {
        var folder = Directory.CreateTempSubdirectory("onnx-import-").FullName;
        try
        {
            var net = Zoo.ResNet18(classes: 10);
            var (p, state) = RandomParametersAndState(net, 2);
            var path = Path.Combine(folder, "r.onnx");
            OnnxExporter.Export(net, p, state, path, new OnnxExportOptions { Metadata = new Dictionary<string, string> { ["normalization"] = "x" } });
            var imported = OnnxImporter.Import(path);
            Assert.Equal(p.Paths, imported.Parameters.Paths);
            Assert.Equal(state.Paths, imported.State.Paths);
            Assert.Equal(ImportRoundTripProperties.Canonical(net), ImportRoundTripProperties.Canonical(imported.Network));
            Assert.Equal("x", imported.Metadata["normalization"]);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Momentum_comes_back_as_written()
    {
        foreach (var m in new[] { 0.1f, 0.01f, 0.05f, 0.3f, 0.001f, 0.9f, 0f, 1f, 0.25f, 0.003f, 0.0001f })
            Assert.Equal(m, OnnxLayerReader.MomentumFromOnnx((float)(1.0 - m)));
    }

    private static byte[] Exported() => OnnxExporter.ToBytes(Zoo.SimpleConvNet(), Initializer.Init(Zoo.SimpleConvNet(), 1));

    private static ModelProto Parsed() => ModelProto.Parser.ParseFrom(Exported());

    [Fact]
    public void Negative_dimensions_are_refused()
    {
        var m = Parsed();
        m.Graph.Initializer[0].Dims[0] = -30;
        var e = Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(m.ToByteArray()));
        Assert.Contains("negative dimension", e.Message);
    }

    [Fact]
    public void Dimensions_that_promise_more_than_the_data_are_refused_before_allocating()
    {
        var m = Parsed();
        var t = m.Graph.Initializer.First(i => i.Name == "dense1/bias");
        t.Dims.Clear();
        t.Dims.AddRange(new long[] { 1L << 20, 1L << 10 });
        var e = Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(m.ToByteArray()));
        Assert.Contains("dense1/bias", e.Message);
        Assert.Contains("400 bytes", e.Message);
        t.Dims.Clear();
        t.Dims.AddRange(new long[] { 1L << 20, 1L << 20 });
        Assert.Contains("more than", Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(m.ToByteArray())).Message);
        t.Dims.Clear();
        t.Dims.AddRange(new long[] { 0, 1L << 40 });
        Assert.Contains("exceeds", Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(m.ToByteArray())).Message);
    }

    [Fact]
    public void External_data_is_refused_with_a_clear_message()
    {
        var m = Parsed();
        var t = m.Graph.Initializer[0];
        t.RawData = ByteString.Empty;
        t.DataLocation = TensorProto.Types.DataLocation.External;
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "../../etc/passwd" });
        var e = Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(m.ToByteArray()));
        Assert.Contains("external file ('../../etc/passwd')", e.Message);
        Assert.Contains("self-contained", e.Message);
    }

    [Fact]
    public void Deeply_nested_messages_stop_at_the_recursion_limit()
    {
        // Graphs inside attributes inside nodes inside graphs, far deeper than any model needs.
        var inner = new GraphProto { Name = "leaf" };
        for (int i = 0; i < 40; i++)
        {
            var node = new NodeProto { Name = $"n{i}", OpType = "If" };
            node.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeType.Graph, G = inner });
            inner = new GraphProto { Name = $"g{i}" };
            inner.Node.Add(node);
        }
        var model = new ModelProto { IrVersion = 8, Graph = inner };
        var e = Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(model.ToByteArray()));
        Assert.Contains("not a valid ONNX protobuf", e.Message);
    }

    [Fact]
    public void Truncated_and_random_bytes_are_format_errors()
    {
        var bytes = Exported();
        Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(bytes[..(bytes.Length / 2)]));
        var noise = new byte[4096];
        new Random(3).NextBytes(noise);
        Assert.ThrowsAny<CnnException>(() => OnnxImporter.FromBytes(noise));
        Assert.Contains("no graph", Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(Array.Empty<byte>())).Message);
    }

    [Fact]
    public void Cycles_and_undefined_values_are_format_errors()
    {
        var m = Parsed();
        m.Graph.Node[0].Input[0] = "relu1";
        Assert.Contains("cycle", Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(m.ToByteArray())).Message);
        var u = Parsed();
        u.Graph.Node[1].Input[0] = "nowhere";
        Assert.Contains("'nowhere'", Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(u.ToByteArray())).Message);
    }

    [Fact]
    public void Symbolic_sample_axes_and_mismatched_declared_outputs_are_refused()
    {
        var m = Parsed();
        m.Graph.Input[0].Type.TensorType.Shape.Dim[2].DimParam = "height";
        Assert.Contains("symbolic", Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.FromBytes(m.ToByteArray())).Message);
        var o = Parsed();
        o.Graph.Output[0].Type.TensorType.Shape.Dim[1].DimValue = 11;
        Assert.Contains("declared", Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(o.ToByteArray())).Message);
    }

    [Fact]
    public void Sample_axes_beyond_32_bits_are_refused_with_their_size_by_the_importer_and_the_predictor()
    {
        var m = Parsed();
        m.Graph.Input[0].Type.TensorType.Shape.Dim[1].DimValue = 1L << 40;
        var imported = Assert.Throws<FormatException>(() => OnnxImporter.FromBytes(m.ToByteArray())).Message;
        Assert.Contains("axis 1 has size 1099511627776", imported);
        Assert.Contains($"from 1 to {int.MaxValue}", imported);
        // ONNX Runtime reads the size as 0; the predictor refuses the model when it opens, rather than asking for
        // "shape [1, 0, ...]" at every call.
        var predicted = Assert.Throws<CnnException>(() => new OnnxPredictor(m.ToByteArray(), new OnnxPredictorOptions { OptimizeGraph = false })).Message;
        Assert.Contains("declares axis 1 with size 0 or above 2147483647", predicted);
    }

    [Fact]
    public void Missing_file_is_reported()
    {
        Assert.Contains("/no/such.onnx", Assert.ThrowsAny<CnnException>(() => OnnxImporter.Import("/no/such.onnx")).Message);
    }
}
