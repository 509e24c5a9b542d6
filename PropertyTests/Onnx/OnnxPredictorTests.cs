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

    [Fact]
    public void Stopping_the_spin_between_runs_changes_no_output()
    {
        using var spinning = new OnnxPredictor(Model, new OnnxPredictorOptions { IntraOpThreads = 2 });
        using var stopping = new OnnxPredictor(Model, new OnnxPredictorOptions { IntraOpThreads = 2, StopSpinningBetweenRuns = true });
        for (int i = 0; i < 4; i++)
        {
            var x = RandomBatch(Net.InputShape, 1 + 7 * i, 200 + i);
            Assert.Equal(spinning.Run(x).ToArray(), stopping.Run(x).ToArray());
        }
    }
}

/// <summary>Classes with probabilities, whatever the model's last layer.</summary>
public sealed class OnnxPredictionTests
{
    private static Tensor Softmax(ReadOnlySpan<float> row)
    {
        var p = new float[row.Length];
        System.Numerics.Tensors.TensorPrimitives.SoftMax(row, p);
        return Tensor.FromArray(p, row.Length);
    }

    [Theory]
    [InlineData("logits")]
    [InlineData("softmax")]
    [InlineData("log-softmax")]
    public void Probabilities_are_the_softmax_of_the_logits_whatever_the_last_layer(string head)
    {
        var layers = new List<Layer> { new Conv2d(4, 3, 3), new Relu(), new Flatten(), new Dense(6) };
        if (head == "softmax") layers.Add(new Softmax());
        if (head == "log-softmax") layers.Add(new LogSoftmax());
        var net = Network.Create(new Serial(layers), new Shape(2, 5, 5));
        var logitsNet = Network.Create(new Serial(layers.Take(4)), new Shape(2, 5, 5));
        var p = Initializer.Init(net, 4);
        var x = RandomBatch(net.InputShape, 9, 5);
        var logits = Apply.Forward(logitsNet, p, x);

        using var predictor = new OnnxPredictor(OnnxExporter.ToBytes(net, p));
        var predictions = predictor.Predict(x);

        Assert.Equal(9, predictions.Count);
        for (int r = 0; r < 9; r++)
        {
            var expected = Softmax(logits.Span.Slice(r * 6, 6));
            AssertClose(expected, Tensor.FromArray(predictions[r].Probabilities.ToArray(), 6), $"{head}, row {r}");
            Assert.Equal(System.Numerics.Tensors.TensorPrimitives.IndexOfMax(expected.Span), predictions[r].Class);
            Assert.Equal(predictions[r].Probabilities[predictions[r].Class], predictions[r].Probability);
            Assert.Equal(1f, predictions[r].Probabilities.Sum(), 1e-5f);
        }
    }

    [Fact]
    public void Declared_output_kind_is_used_as_given()
    {
        var net = Network.Create(new Serial(new Flatten(), new Dense(3), new Softmax()), new Shape(4));
        var p = Initializer.Init(net, 1);
        var x = RandomBatch(net.InputShape, 2, 2);
        using var asLogits = new OnnxPredictor(OnnxExporter.ToBytes(net, p), new OnnxPredictorOptions { Output = OutputKind.Logits });
        var probabilities = Apply.Forward(net, p, x);
        // Told the probabilities are logits, the predictor applies softmax again: the rows flatten towards uniform.
        AssertClose(Softmax(probabilities.Span[..3]), Tensor.FromArray(asLogits.Predict(x)[0].Probabilities.ToArray(), 3), "softmax applied twice");
    }

    [Fact]
    public void Predict_needs_a_classifier_output()
    {
        var net = Network.Create(new Serial(new Conv2d(2, 1, 1)), new Shape(1, 3, 3));
        using var predictor = new OnnxPredictor(OnnxExporter.ToBytes(net, Initializer.Init(net, 1)));
        var e = Assert.ThrowsAny<CnnException>(() => predictor.Predict(RandomBatch(net.InputShape, 1, 1)));
        Assert.Contains("[batch, classes]", e.Message);
    }

    [Fact]
    public void Concurrent_predictions_give_the_sequential_results()
    {
        var net = Zoo.LeNet5();
        using var predictor = new OnnxPredictor(OnnxExporter.ToBytes(net, Initializer.Init(net, 3)), new OnnxPredictorOptions { IntraOpThreads = 1 });
        var inputs = Enumerable.Range(0, 12).Select(i => RandomBatch(net.InputShape, 1 + i % 4, 200 + i)).ToArray();
        var sequential = inputs.Select(predictor.Predict).ToArray();
        var concurrent = new IReadOnlyList<Cnn.Onnx.Prediction>[inputs.Length];
        Parallel.For(0, inputs.Length, new ParallelOptions { MaxDegreeOfParallelism = 6 }, i => concurrent[i] = predictor.Predict(inputs[i]));
        for (int i = 0; i < inputs.Length; i++)
            Assert.Equal(sequential[i].Select(s => (s.Class, s.Probability)), concurrent[i].Select(s => (s.Class, s.Probability)));
    }
}
