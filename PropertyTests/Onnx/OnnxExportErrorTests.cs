using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using Cnn.Onnx.Proto;
using Google.Protobuf;
using static Cnn.Tests.Onnx.OnnxTestSupport;

namespace Cnn.Tests.Onnx;

/// <summary>A layer kind the exporter has no rule for.</summary>
public sealed record UnexportableLayer : LeafLayer
{
    public override string Kind => "odd";

    public override Shape OutputShape(Shape input, string path, bool strict) => input;
}

/// <summary>Mistakes and malformed models are reported as <see cref="CnnException"/> that say what is wrong.</summary>
public sealed class OnnxExportErrorTests
{
    private static Network SmallNet() => Network.Create(
        new Serial(new Conv2d(2, 3, 2, PadH: 1), new Relu(), new MaxPool2d(2, 2, 2, 2), new Flatten(), new Dense(3)),
        new Shape(1, 6, 5));

    private static ModelProto Model(Network net, Parameters parameters, OnnxExportOptions? options = null) =>
        OnnxExporter.BuildModel(net, parameters, options ?? new OnnxExportOptions());

    [Fact]
    public void The_sound_model_passes_validation()
    {
        var net = SmallNet();
        var model = Model(net, Initializer.Init(net, 1));
        OnnxValidator.Validate(model, model.ToByteArray());
    }

    [Fact]
    public void Unsupported_layer_names_its_path_and_type()
    {
        var net = Network.Create(new Serial(new Relu(), new Serial(new UnexportableLayer()).Named("block")), new Shape(2, 3, 3));
        var e = Assert.Throws<CnnException>(() => OnnxExporter.ToBytes(net, Initializer.Init(net, 1)));
        Assert.Contains("'block/odd1'", e.Message);
        Assert.Contains(nameof(UnexportableLayer), e.Message);
    }

    [Fact]
    public void Missing_parameter_is_reported()
    {
        var net = SmallNet();
        var all = Initializer.Init(net, 1);
        var withoutBias = Parameters.Of(all.Entries.Where(kv => kv.Key != "dense1/bias"));
        var e = Assert.ThrowsAny<CnnException>(() => OnnxExporter.ToBytes(net, withoutBias));
        Assert.Contains("dense1/bias", e.Message);
    }

    [Fact]
    public void Parameter_of_the_wrong_shape_is_reported()
    {
        var net = SmallNet();
        var wrong = Initializer.Init(net, 1).With("conv1/weight", Tensor.Zeros(2, 1, 2, 3));
        var e = Assert.ThrowsAny<CnnException>(() => OnnxExporter.ToBytes(net, wrong));
        Assert.Contains("conv1/weight", e.Message);
        Assert.Contains("[2, 1, 3, 2]", e.Message);
        Assert.Contains("[2, 1, 2, 3]", e.Message);
    }

    [Theory]
    [InlineData(3L, 17L, "", "IR version")]
    [InlineData(8L, 10L, "", "opset")]
    [InlineData(8L, 17L, "input", "distinct")]
    [InlineData(8L, 17L, "conv1/weight", "collides")]
    public void Invalid_options_are_reported(long ir, long opset, string outputName, string expected)
    {
        var net = SmallNet();
        var options = new OnnxExportOptions { IrVersion = ir, Opset = opset };
        if (outputName.Length > 0) options = options with { OutputName = outputName };
        var e = Assert.ThrowsAny<CnnException>(() => OnnxExporter.ToBytes(net, Initializer.Init(net, 1), options));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Layer_named_like_the_graph_input_gets_a_unique_value_name()
    {
        var net = Network.Create(new Serial(new Relu().Named("input"), new Relu().Named("output"), new Flatten()), new Shape(2, 2, 3));
        var parameters = Initializer.Init(net, 1);
        var x = RandomBatch(net.InputShape, 3, 5);
        AssertClose(Apply.Forward(net, parameters, x), RunExported(net, parameters, x, optimize: false), "layers named input and output");
    }

    public static TheoryData<string, string> StructuralDefects() => new()
    {
        { "undefined-input", "reads 'nowhere'" },
        { "used-before-defined", "is not a graph input, an initializer or the output of an earlier node" },
        { "duplicate-node-name", "node name 'conv1' is used twice" },
        { "duplicate-value", "is defined twice" },
        { "untyped-attribute", "attribute 'kernel_shape' has no type" },
        { "short-initializer", "hold 6 elements but the data has 5" },
        { "negative-dim", "negative dimension" },
        { "initializer-as-input", "initializer 'conv1/weight' is also listed as a graph input" },
        { "output-not-produced", "graph output 'output' is never produced" },
    };

    [Theory]
    [MemberData(nameof(StructuralDefects))]
    public void Structural_defects_are_named(string defect, string expected)
    {
        var net = SmallNet();
        var model = Model(net, Initializer.Init(net, 1));
        var g = model.Graph;
        switch (defect)
        {
            case "undefined-input": g.Node[1].Input[0] = "nowhere"; break;
            case "used-before-defined": (g.Node[0], g.Node[1]) = (g.Node[1], g.Node[0]); break;
            case "duplicate-node-name": g.Node[1].Name = "conv1"; break;
            case "duplicate-value": g.Node[1].Output[0] = "conv1"; break;
            case "untyped-attribute": g.Node[0].Attribute.First(a => a.Name == "kernel_shape").Type = AttributeProto.Types.AttributeType.Undefined; break;
            case "short-initializer":
                var bias = g.Initializer.First(t => t.Name == "conv1/bias");
                bias.Dims[0] = 6;
                bias.RawData = ByteString.CopyFrom(new byte[20]);
                break;
            case "negative-dim": g.Initializer.First(t => t.Name == "conv1/bias").Dims[0] = -2; break;
            case "initializer-as-input": g.Input.Add(g.Input[0].Clone().Also(v => v.Name = "conv1/weight")); break;
            case "output-not-produced": g.Node[^1].Output[0] = "elsewhere"; break;
            default: throw new ArgumentException(defect);
        }
        var e = Assert.ThrowsAny<CnnException>(() => OnnxValidator.CheckStructure(model));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Declared_output_shape_that_disagrees_with_inference_is_rejected_by_the_runtime()
    {
        var net = SmallNet();
        var model = Model(net, Initializer.Init(net, 1));
        model.Graph.Output[0].Type.TensorType.Shape.Dim[1].DimValue = 4; // Dense(3) gives 3
        OnnxValidator.CheckStructure(model);
        var e = Assert.ThrowsAny<CnnException>(() => OnnxValidator.LoadInRuntime(model.ToByteArray()));
        Assert.Contains("ONNX Runtime rejected it", e.Message);
    }

    [Fact]
    public void Intermediate_shape_that_disagrees_with_inference_is_rejected_by_the_runtime()
    {
        var net = SmallNet();
        var model = Model(net, Initializer.Init(net, 1));
        var pool = model.Graph.ValueInfo.First(v => v.Name == "pool1");
        pool.Type.TensorType.Shape.Dim[3].DimValue += 1;
        var e = Assert.ThrowsAny<CnnException>(() => OnnxValidator.LoadInRuntime(model.ToByteArray()));
        Assert.Contains("ONNX Runtime rejected it", e.Message);
    }

    [Fact]
    public void Malformed_attribute_is_rejected_by_the_runtime()
    {
        var net = SmallNet();
        var model = Model(net, Initializer.Init(net, 1));
        model.Graph.Node[0].Attribute.First(a => a.Name == "pads").Ints.RemoveAt(3);
        var e = Assert.ThrowsAny<CnnException>(() => OnnxValidator.Validate(model, model.ToByteArray()));
        Assert.Contains("ONNX Runtime rejected it", e.Message);
    }
}

internal static class ProtoExtensions
{
    public static T Also<T>(this T value, Action<T> change)
    {
        change(value);
        return value;
    }
}
