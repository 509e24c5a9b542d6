using Xunit;
using Cnn.Dsl;
using Cnn.Onnx;
using static Cnn.Tests.Onnx.OnnxTestSupport;

namespace Cnn.Tests.Onnx;

/// <summary>The textbook SimpleConvNet, exported and run in ONNX Runtime, gives what the native interpreter gives.</summary>
public sealed class SimpleConvNetExportTests
{
    [Theory]
    [InlineData(1, false)]
    [InlineData(1, true)]
    [InlineData(7, false)]
    [InlineData(7, true)]
    public void Onnx_runtime_output_matches_native_forward(int batch, bool optimize)
    {
        var net = Zoo.SimpleConvNet();
        var parameters = Initializer.Init(net, seed: 42);
        var x = RandomBatch(net.InputShape, batch, seed: 1000 + batch);

        var expected = Apply.Forward(net, parameters, x);
        var actual = RunExported(net, parameters, x, optimize);

        Assert.Equal(new Cnn.Core.Shape(batch, 10), actual.Shape);
        AssertClose(expected, actual, $"SimpleConvNet, batch {batch}, graph optimisation {(optimize ? "on" : "off")}");
    }

    [Fact]
    public void Predicted_classes_are_the_native_argmax()
    {
        var net = Zoo.SimpleConvNet();
        var parameters = Initializer.Init(net, seed: 7);
        var x = RandomBatch(net.InputShape, 16, seed: 8);
        var expected = Apply.Forward(net, parameters, x);

        using var predictor = new OnnxPredictor(OnnxExporter.ToBytes(net, parameters));
        var classes = predictor.PredictClasses(x);

        Assert.Equal(16, classes.Count);
        for (int r = 0; r < 16; r++)
        {
            var row = expected.Span.Slice(r * 10, 10).ToArray();
            var sorted = row.OrderDescending().ToArray();
            // Where the top two scores are within tolerance, either index is a correct answer.
            if (sorted[0] - sorted[1] > 1e-3f) Assert.Equal(Array.IndexOf(row, sorted[0]), classes[r]);
        }
    }
}
