using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using static Cnn.Tests.Onnx.OnnxTestSupport;

namespace Cnn.Tests.Onnx;

/// <summary>The ONNX Runtime runner: input checks, errors, and concurrent use.</summary>
public sealed class OnnxPredictorTests
{
    private static readonly Network Net = Zoo.SimpleConvNet();
    private static readonly Parameters Params = Initializer.Init(Net, 11);
    private static readonly byte[] Model = OnnxExporter.ToBytes(Net, Params);

    [Theory]
    [InlineData(new[] { 2, 1, 28, 27 })]
    [InlineData(new[] { 2, 3, 28, 28 })]
    [InlineData(new[] { 1, 28, 28 })]
    [InlineData(new[] { 0, 1, 28, 28 })]
    public void Input_of_the_wrong_shape_is_a_shape_error(int[] dims)
    {
        using var predictor = new OnnxPredictor(Model);
        var e = Assert.Throws<ShapeException>(() => predictor.Run(Tensor.Zeros(dims)));
        Assert.Contains("[any, 1, 28, 28]", e.Message);
        Assert.Contains(new Shape(dims).ToString(), e.Message);
    }

    [Fact]
    public void Bytes_that_are_not_a_model_are_a_format_error()
    {
        Assert.Throws<Cnn.Core.FormatException>(() => new OnnxPredictor(new byte[] { 1, 2, 3, 4, 5 }));
    }

    [Fact]
    public void Missing_file_is_reported()
    {
        var e = Assert.ThrowsAny<CnnException>(() => new OnnxPredictor("/no/such/model.onnx"));
        Assert.Contains("/no/such/model.onnx", e.Message);
    }

    [Fact]
    public void Run_after_dispose_throws()
    {
        var predictor = new OnnxPredictor(Model);
        predictor.Dispose();
        Assert.Throws<ObjectDisposedException>(() => predictor.Run(Tensor.Zeros(1, 1, 28, 28)));
    }

    [Fact]
    public void Concurrent_runs_give_the_sequential_results()
    {
        using var predictor = new OnnxPredictor(Model, new OnnxPredictorOptions { IntraOpThreads = 1 });
        var inputs = Enumerable.Range(0, 16).Select(i => RandomBatch(Net.InputShape, 1 + i % 5, 100 + i)).ToArray();
        var sequential = inputs.Select(predictor.Run).ToArray();
        var concurrent = new Tensor[inputs.Length];
        Parallel.For(0, inputs.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => concurrent[i] = predictor.Run(inputs[i]));
        for (int i = 0; i < inputs.Length; i++)
            Assert.Equal(sequential[i].ToArray(), concurrent[i].ToArray());
    }
}
