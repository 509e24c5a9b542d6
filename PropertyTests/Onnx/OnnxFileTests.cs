using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using Cnn.Onnx.Proto;
using DataType = Cnn.Onnx.Proto.TensorProto.Types.DataType;

namespace Cnn.Tests.Onnx;

/// <summary>The file <see cref="OnnxExporter.Export(Network, Parameters, string, OnnxExportOptions?)"/> writes, read back with the generated protobuf parser.</summary>
public sealed class OnnxFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("onnx-export-tests-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static readonly Dictionary<string, string> Metadata = new() { ["dataset"] = "mnist", ["epochs"] = "12" };

    private (Network Net, Parameters Parameters, ModelProto Model, string Path) ExportSimpleConvNet()
    {
        var net = Zoo.SimpleConvNet();
        var parameters = Initializer.Init(net, 3);
        var path = Path.Combine(_folder, "simple.onnx");
        OnnxExporter.Export(net, parameters, path, new OnnxExportOptions { Metadata = Metadata, ModelName = "simple" });
        return (net, parameters, ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)), path);
    }

    [Fact]
    public void Initializers_are_not_graph_inputs_and_are_named_by_path()
    {
        var (_, parameters, model, _) = ExportSimpleConvNet();
        var graph = model.Graph;

        Assert.Equal(new[] { "input" }, graph.Input.Select(i => i.Name));
        Assert.Empty(graph.Input.Select(i => i.Name).Intersect(graph.Initializer.Select(t => t.Name)));
        Assert.Equal(parameters.Paths.OrderBy(p => p, StringComparer.Ordinal), graph.Initializer.Select(t => t.Name).OrderBy(p => p, StringComparer.Ordinal));
        foreach (var t in graph.Initializer)
        {
            var expected = parameters[t.Name];
            Assert.Equal((int)DataType.Float, t.DataType);
            Assert.Equal(expected.Shape.Select(d => (long)d), t.Dims);
            Assert.Equal(expected.ToArray(), System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray());
        }
    }

    [Fact]
    public void Metadata_versions_and_names_are_written()
    {
        var (_, _, model, _) = ExportSimpleConvNet();

        Assert.Equal(Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal), model.MetadataProps.Select(p => KeyValuePair.Create(p.Key, p.Value)));
        Assert.Equal(8, model.IrVersion);
        Assert.Equal(17, Assert.Single(model.OpsetImport, o => o.Domain == "").Version);
        Assert.Equal("Cnn.Dsl", model.ProducerName);
        Assert.False(string.IsNullOrEmpty(model.ProducerVersion));
        Assert.Equal("simple", model.Graph.Name);
        Assert.Equal(new[] { "conv1", "relu1", "pool1", "flatten1", "dense1", "relu2", "dense2" }, model.Graph.Node.Select(n => n.Name));
        Assert.Equal(new[] { "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm" }, model.Graph.Node.Select(n => n.OpType));
    }

    [Fact]
    public void Input_and_output_have_a_symbolic_batch_and_the_inferred_shape()
    {
        var (_, _, model, _) = ExportSimpleConvNet();

        static string Dims(ValueInfoProto v) => string.Join(",", v.Type.TensorType.Shape.Dim.Select(d => d.HasDimParam ? d.DimParam : d.DimValue.ToString()));
        Assert.Equal("batch,1,28,28", Dims(model.Graph.Input[0]));
        Assert.Equal("output", model.Graph.Output.Single().Name);
        Assert.Equal("batch,10", Dims(model.Graph.Output[0]));
        Assert.Equal("batch,30,12,12", Dims(model.Graph.ValueInfo.Single(v => v.Name == "pool1")));
    }

    [Fact]
    public void Attributes_spell_out_the_window_of_each_layer()
    {
        var net = Network.Create(
            new Serial(new Conv2d(2, 3, 2, StrideH: 2, StrideW: 1, PadH: 1, PadW: 0, UseBias: false), new MaxPool2d(3, 2, 1, 2, PadH: 1), new Flatten(), new Dense(4, UseBias: false)),
            new Shape(1, 9, 7));
        var path = Path.Combine(_folder, "windows.onnx");
        OnnxExporter.Export(net, Initializer.Init(net, 1), path);
        var nodes = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph.Node;

        static string Attr(NodeProto n, string name)
        {
            var a = n.Attribute.Single(x => x.Name == name);
            Assert.NotEqual(AttributeProto.Types.AttributeType.Undefined, a.Type);
            return a.Type switch
            {
                AttributeProto.Types.AttributeType.Ints => string.Join(",", a.Ints),
                AttributeProto.Types.AttributeType.Int => a.I.ToString(),
                AttributeProto.Types.AttributeType.Float => a.F.ToString(System.Globalization.CultureInfo.InvariantCulture),
                _ => throw new InvalidOperationException(a.Type.ToString()),
            };
        }

        var conv = nodes[0];
        Assert.Equal(new[] { "input", "conv1/weight" }, conv.Input);
        Assert.Equal("3,2", Attr(conv, "kernel_shape"));
        Assert.Equal("2,1", Attr(conv, "strides"));
        Assert.Equal("1,0,1,0", Attr(conv, "pads")); // [top, left, bottom, right]
        Assert.Equal("1,1", Attr(conv, "dilations"));
        Assert.Equal("1", Attr(conv, "group"));

        var pool = nodes[1];
        Assert.Equal("3,2", Attr(pool, "kernel_shape"));
        Assert.Equal("1,2", Attr(pool, "strides"));
        Assert.Equal("1,0,1,0", Attr(pool, "pads"));
        Assert.Equal("0", Attr(pool, "ceil_mode"));

        Assert.Equal("1", Attr(nodes[2], "axis"));

        var gemm = nodes[3];
        Assert.Equal(new[] { "flatten1", "dense1/weight" }, gemm.Input); // no C without a bias
        Assert.Equal("1", Attr(gemm, "transB"));
        Assert.Equal("1", Attr(gemm, "alpha"));
        Assert.Equal("1", Attr(gemm, "beta"));
    }

    [Fact]
    public void Export_replaces_an_existing_file_and_leaves_no_temporary_file()
    {
        var path = Path.Combine(_folder, "model.onnx");
        File.WriteAllText(path, "old contents");
        var net = Zoo.SimpleConvNet();
        OnnxExporter.Export(net, Initializer.Init(net, 1), path);

        Assert.Equal(new[] { path }, Directory.GetFiles(_folder));
        Assert.NotNull(ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph);
    }

    [Fact]
    public void Failed_export_leaves_the_existing_file_untouched()
    {
        var path = Path.Combine(_folder, "model.onnx");
        File.WriteAllText(path, "old contents");
        var net = Network.Create(new UnexportableLayer(), new Shape(1, 2, 2));

        Assert.ThrowsAny<CnnException>(() => OnnxExporter.Export(net, Parameters.Empty, path));
        Assert.Equal("old contents", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_folder));
    }

    [Fact]
    public void Export_into_a_missing_folder_is_a_clear_error()
    {
        var net = Zoo.SimpleConvNet();
        var path = Path.Combine(_folder, "no-such-folder", "model.onnx");
        var e = Assert.ThrowsAny<CnnException>(() => OnnxExporter.Export(net, Initializer.Init(net, 1), path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Predictor_loads_the_file_and_reads_its_metadata()
    {
        var (net, parameters, _, path) = ExportSimpleConvNet();
        using var predictor = new OnnxPredictor(path, new OnnxPredictorOptions { IntraOpThreads = 1 });

        Assert.Equal("mnist", predictor.Metadata["dataset"]);
        Assert.Equal(new long[] { -1, 1, 28, 28 }, predictor.InputDimensions);
        var x = OnnxTestSupport.RandomBatch(net.InputShape, 2, 9);
        OnnxTestSupport.AssertClose(Apply.Forward(net, parameters, x), predictor.Run(x), "from file");
    }
}
