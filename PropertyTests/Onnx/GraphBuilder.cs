using Cnn.Onnx.Proto;
using AttributeType = Cnn.Onnx.Proto.AttributeProto.Types.AttributeType;
using DataType = Cnn.Onnx.Proto.TensorProto.Types.DataType;

namespace Cnn.Tests.Onnx;

/// <summary>Builds small ONNX graphs by hand, as other exporters write them, for import tests.</summary>
internal sealed class GraphBuilder(int seed, long opset)
{
    private readonly Random _rng = new(seed);
    private readonly GraphProto _graph = new() { Name = "hand-made" };

    /// <summary>A float initializer of random values in [low, high).</summary>
    public string Floats(string name, long[] dims, float low = -0.5f, float high = 0.5f)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Float };
        t.Dims.AddRange(dims);
        long n = dims.Aggregate(1L, (a, b) => a * b);
        for (long i = 0; i < n; i++) t.FloatData.Add(low + (float)_rng.NextDouble() * (high - low));
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>An int64 initializer.</summary>
    public string Ints(string name, params long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>An int64 scalar initializer (torch's Gather index).</summary>
    public string Scalar(string name, long value)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Int64 };
        t.Int64Data.Add(value);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds a node whose one output is named <paramref name="output"/>.</summary>
    public string Node(string op, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var n = new NodeProto { Name = "/" + output, OpType = op };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        n.Attribute.AddRange(attributes);
        _graph.Node.Add(n);
        return output;
    }

    public static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeType.Int, I = v };

    public static AttributeProto IntList(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }

    /// <summary>The model with float input <paramref name="input"/> of shape [N, ...] and output <paramref name="output"/>.</summary>
    public ModelProto Model(string input, long[] perSample, string output)
    {
        var g = _graph.Clone();
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        foreach (var d in perSample) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        g.Input.Add(new ValueInfoProto { Name = input, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float, Shape = shape } } });
        g.Output.Add(new ValueInfoProto { Name = output, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float } } });
        var model = new ModelProto { IrVersion = 8, ProducerName = "hand", Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return model;
    }
}
