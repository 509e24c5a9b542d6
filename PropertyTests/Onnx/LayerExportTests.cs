using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using static Cnn.Tests.Onnx.OnnxTestSupport;

namespace Cnn.Tests.Onnx;

/// <summary>Every layer kind and combinator, exported and run in ONNX Runtime, gives what the native interpreter gives.</summary>
public sealed class LayerExportTests
{
    /// <summary>One small network per layer kind or combinator (several where attributes change the export).</summary>
    public static readonly IReadOnlyDictionary<string, Func<Network>> Cases = new Dictionary<string, Func<Network>>
    {
        ["conv2d-dilated-grouped"] = () => Network.Create(new Serial(new Conv2d(6, 3, 2, 2, 1, 1, 2, DilationH: 2, DilationW: 1, Groups: 2)), new Shape(4, 9, 8)),
        ["conv1d"] = () => Network.Create(new Serial(new Conv1d(4, 3, Stride: 2, Pad: 1, Dilation: 2, Groups: 2)), new Shape(2, 11)),
        ["conv3d"] = () => Network.Create(new Serial(new Conv3d(3, 3, Stride: 2, Pad: 1, UseBias: false)), new Shape(2, 5, 6, 4)),
        ["conv-transpose-output-padding"] = () => Network.Create(new Serial(new ConvTranspose2d(3, 3, Stride: 2, Pad: 1, OutputPad: 1)), new Shape(2, 4, 5)),
        ["conv-transpose-no-bias"] = () => Network.Create(new Serial(new ConvTranspose2d(2, 4, Stride: 1, Pad: 0, UseBias: false)), new Shape(3, 1, 1)),
        ["maxpool-ceil"] = () => Network.Create(new Serial(new MaxPool2d(3, 2, 2, 2, 1, 1, CeilMode: true)), new Shape(2, 8, 7)),
        ["avgpool-ceil-count-pad"] = () => Network.Create(new Serial(new AvgPool2d(3, 3, 2, 2, 1, 1, CeilMode: true, CountIncludePad: true)), new Shape(2, 8, 7)),
        ["avgpool-exclude-pad"] = () => Network.Create(new Serial(new AvgPool2d(3, 2, 2, 1, 1, 1, CeilMode: false, CountIncludePad: false)), new Shape(2, 6, 5)),
        ["pool1d"] = () => Network.Create(new Serial(new PoolNd(PoolOp.Max, 3, 2, 1), new PoolNd(PoolOp.Average, 2, 1, 1, CountIncludePad: false)), new Shape(3, 10)),
        ["pool3d"] = () => Network.Create(new Serial(new PoolNd(PoolOp.Average, 2, 2, 1), new PoolNd(PoolOp.Max, 2, 1)), new Shape(2, 5, 4, 6)),
        ["global-pools"] = () => Network.Create(new FanOut(Join.Concat, new GlobalPool(PoolOp.Average), new GlobalPool(PoolOp.Max)), new Shape(3, 4, 5)),
        ["channel-max-pool"] = () => Network.Create(new Serial(new ChannelMaxPool(3, 2)), new Shape(7, 3, 4)),
        ["channel-max-pool-1d"] = () => Network.Create(new Serial(new ChannelMaxPool(2, 2)), new Shape(6, 5)),
        ["channel-avg-pool"] = () => Network.Create(new Serial(new ChannelAvgPool(3, 2)), new Shape(7, 3, 4)),
        ["channel-avg-pool-overlap-1d"] = () => Network.Create(new Serial(new ChannelAvgPool(3, 1)), new Shape(6, 5)),
        ["channel-avg-pool-3d"] = () => Network.Create(new Serial(new ChannelAvgPool(2, 3)), new Shape(8, 2, 3, 2)),
        ["activations"] = () => Network.Create(new Serial(new LeakyRelu(0.2f), new Elu(0.7f), new Sigmoid(), new Tanh(), new Relu()), new Shape(2, 3, 4)),
        ["softmax-axes"] = () => Network.Create(new Serial(new Softmax(1), new LogSoftmax(-1), new Softmax(2)), new Shape(3, 4, 5)),
        ["lrn"] = () => Network.Create(new Serial(Lrn.FromPaper(5, 1e-2f, 0.75f, 2f), new Lrn(3, 0.3f, 0.6f, 1.5f)), new Shape(7, 3, 3)),
        ["lrn-signal"] = () => Network.Create(new Serial(new Lrn(3, 0.5f, 0.75f, 1f)), new Shape(5, 7)),
        ["lrn-volume"] = () => Network.Create(new Serial(new Lrn(5, 0.5f, 0.75f, 1f)), new Shape(6, 2, 3, 2)),
        ["batchnorm-2d"] = () => Network.Create(new Serial(new Conv2d(3, 3, 3), new BatchNorm(Epsilon: 1e-3f)), new Shape(2, 6, 6)),
        ["batchnorm-1d"] = () => Network.Create(new Serial(new Flatten(), new Dense(5), new BatchNorm(Momentum: 0.01f)), new Shape(2, 3, 3)),
        ["dropout-identity-flatten-reshape"] = () => Network.Create(
            new Serial(new Dropout(0.3f), new Identity(), new Reshape(3, 20), new Flatten(), new Reshape(6, 2, 5), new Dropout()), new Shape(3, 4, 5)),
        ["dense"] = () => Network.Create(new Serial(new Flatten(), new Dense(7), new Dense(3, UseBias: false)), new Shape(2, 3, 2)),
        ["fanout-sum-concat"] = () => Network.Create(new Serial(
            FanOut.Sum(new Conv2d(3, 3, 3, PadH: 1, PadW: 1), new Identity(), new Serial(new Relu(), new Dropout())),
            FanOut.Concat(new Conv2d(2, 1, 1), new Serial(new MaxPool2d(3, 3, 1, 1, 1, 1), new Conv2d(4, 1, 1)).Named("pool"), new Relu())), new Shape(3, 5, 5)),
        ["single-branch-fanout"] = () => Network.Create(new Serial(FanOut.Sum(new Relu()), FanOut.Concat(new Tanh())), new Shape(2, 3)),
        ["residual"] = () => Network.Create(new Serial(
            new Residual(new Serial(new Conv2d(3, 3, 3, PadH: 1, PadW: 1), new BatchNorm(), new Relu())),
            new Residual(new Conv2d(4, 3, 3, 2, 2, 1, 1), new Serial(new Conv2d(4, 1, 1, 2, 2, UseBias: false), new BatchNorm())),
            new Residual(new Dropout(), new Identity())), new Shape(3, 6, 6)),
        ["freeze"] = () => Network.Create(new Serial(new Freeze(new Serial(new Conv2d(2, 3, 3), new BatchNorm())), new Freeze(new Relu().Named("act"))), new Shape(1, 5, 5)),
        ["dropout-only"] = () => Network.Create(new Serial(new Dropout(0.2f)), new Shape(3, 2)),
        ["nested-named"] = () => Network.Create(new Serial(
            new Serial(new Conv2d(2, 3, 3).Named("c"), new Serial(new Relu()).Named("inner")).Named("outer"), new Flatten(), new Dense(3).Named("head")).Named("net"), new Shape(1, 5, 5)),
    };

    public static TheoryData<string, int, bool> All()
    {
        var data = new TheoryData<string, int, bool>();
        foreach (var name in Cases.Keys)
            foreach (int batch in new[] { 1, 7 })
                foreach (bool optimize in new[] { false, true })
                    data.Add(name, batch, optimize);
        return data;
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Exported_layer_matches_native(string name, int batch, bool optimize)
    {
        var net = Cases[name]();
        var (p, state) = RandomParametersAndState(net, seed: name.Length);
        var x = RandomBatch(net.InputShape, batch, seed: 31 * batch);
        var expected = Apply.Forward(net, p, x, Mode.Eval, state);
        var actual = RunExported(net, p, x, optimize, state);
        AssertClose(expected, actual, $"{name}, batch {batch}, optimise {optimize}");
    }

    [Fact]
    public void Every_case_imports_back_with_its_tree_paths_and_tensors()
    {
        foreach (var (name, make) in Cases)
        {
            var net = make();
            var (p, state) = RandomParametersAndState(net, seed: 9);
            var imported = OnnxImporter.FromBytes(OnnxExporter.ToBytes(net, p, state));
            Assert.True(ImportRoundTripProperties.Canonical(net).Equals(ImportRoundTripProperties.Canonical(imported.Network)), $"{name}: {Describe(imported.Network)}");
            Assert.Equal(p.Paths, imported.Parameters.Paths);
            Assert.Equal(state.Paths, imported.State.Paths);
            foreach (var (path, t) in p.Entries.Concat(state.Entries))
                Assert.True(t.Span.SequenceEqual((imported.Parameters.Contains(path) ? imported.Parameters : imported.State)[path].Span), $"{name}: {path}");
        }
    }

    [Theory]
    [InlineData(13L, 7L)]
    [InlineData(14L, 8L)]
    [InlineData(19L, 9L)]
    [InlineData(21L, 10L)]
    [InlineData(26L, 13L)]
    public void Every_layer_exports_at_each_opset_the_user_may_choose(long opset, long ir)
    {
        var options = new OnnxExportOptions { Opset = opset, IrVersion = ir };
        foreach (var (name, make) in Cases)
        {
            var net = make();
            var (p, state) = RandomParametersAndState(net, seed: 5);
            var x = RandomBatch(net.InputShape, 2, seed: 6);
            using var predictor = new OnnxPredictor(OnnxExporter.ToBytes(net, p, state, options), new OnnxPredictorOptions { OptimizeGraph = false });
            AssertClose(Apply.Forward(net, p, x, Mode.Eval, state), predictor.Run(x), $"{name} at opset {opset}, IR {ir}");
        }
    }

    /// <summary>
    /// A zero padding before a pooling, in ONNX Runtime with its graph optimizer on: the optimizer fuses a Pad by +0 into the
    /// pooling's own pads, which a max pool fills with -inf (so all-negative windows at the border gave their maximum instead
    /// of 0), and which it refuses to load when the pads reach the window ("Pad should be smaller than kernel").
    /// </summary>
    [Fact]
    public void Zero_padding_before_pooling_survives_onnx_runtimes_optimizer()
    {
        var nets = new[]
        {
            Network.Create(new Serial(new Pad2d(1, 1, 1, 1), new MaxPool2d(2, 2, 2, 2)), new Shape(2, 4, 6)),
            Network.Create(new Serial(new Pad2d(1, 0, 0, 0), new MaxPool2d(1, 1, 2, 2)), new Shape(3, 4, 4)),
            Network.Create(new Serial(new Pad2d(2, 1, 0, 2), new AvgPool2d(2, 2, 2, 2, CountIncludePad: false)), new Shape(2, 5, 5)),
        };
        foreach (var net in nets)
        {
            var x = RandomBatch(net.InputShape, 2, seed: 7);
            var negative = Tensor.FromArray(x.Span.ToArray().Select(v => -1f - Math.Abs(v)).ToArray(), x.Shape);
            using var predictor = new OnnxPredictor(OnnxExporter.ToBytes(net, Parameters.Empty), new OnnxPredictorOptions { OptimizeGraph = true });
            AssertClose(Apply.Forward(net, Parameters.Empty, negative, Mode.Eval), predictor.Run(negative), Describe(net));
        }
    }

    [Fact]
    public void Even_lrn_size_is_refused_with_the_reason()
    {
        var net = Network.Create(new Serial(new Lrn(4)), new Shape(6, 2, 2));
        var e = Assert.Throws<CnnException>(() => OnnxExporter.ToBytes(net, Parameters.Empty));
        Assert.Contains("lrn1", e.Message);
        Assert.Contains("even size 4", e.Message);
        Assert.Contains("odd", e.Message);
    }

    [Fact]
    public void Network_with_state_needs_the_state()
    {
        var net = Network.Create(new Serial(new Conv2d(2, 3, 3), new BatchNorm()), new Shape(1, 5, 5));
        var p = Initializer.Init(net, 1);
        var e = Assert.Throws<CnnException>(() => OnnxExporter.ToBytes(net, p));
        Assert.Contains("bn1/running_mean", e.Message);
        Assert.Contains("state", e.Message);
        var partial = Parameters.Of(Initializer.InitState(net).Entries.Where(kv => !kv.Key.EndsWith("var", StringComparison.Ordinal)));
        var e2 = Assert.Throws<CnnException>(() => OnnxExporter.ToBytes(net, p, partial));
        Assert.Contains("bn1/running_var", e2.Message);
    }

    [Fact]
    public void Batchnorm_writes_running_statistics_epsilon_and_inference_mode()
    {
        var net = Network.Create(new Serial(new BatchNorm(Momentum: 0.2f, Epsilon: 1e-3f)), new Shape(3, 2, 2));
        var (p, state) = RandomParametersAndState(net, 3);
        var model = Cnn.Onnx.Proto.ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(net, p, state));
        var bn = Assert.Single(model.Graph.Node);
        Assert.Equal("BatchNormalization", bn.OpType);
        Assert.Equal(new[] { "input", "bn1/weight", "bn1/bias", "bn1/running_mean", "bn1/running_var" }, bn.Input);
        Assert.Equal(1e-3f, bn.Attribute.Single(a => a.Name == "epsilon").F);
        Assert.Equal(0.8f, bn.Attribute.Single(a => a.Name == "momentum").F, 1e-6f);
        Assert.Equal(0, bn.Attribute.Single(a => a.Name == "training_mode").I);
        Assert.Equal(state["bn1/running_var"].ToArray(),
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(model.Graph.Initializer.Single(t => t.Name == "bn1/running_var").RawData.Span).ToArray());
    }

    [Fact]
    public void Joins_are_sum_add_and_concat_on_channels_and_dropout_leaves_no_node()
    {
        var net = LayerExportTests.Cases["fanout-sum-concat"]();
        var model = Cnn.Onnx.Proto.ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(net, Initializer.Init(net, 1)));
        var ops = model.Graph.Node.Select(n => n.OpType).ToArray();
        Assert.DoesNotContain("Dropout", ops);
        Assert.Equal(3, model.Graph.Node.Single(n => n.OpType == "Sum").Input.Count);
        Assert.Equal(1, model.Graph.Node.Single(n => n.OpType == "Concat").Attribute.Single(a => a.Name == "axis").I);
        var residual = Cnn.Onnx.Proto.ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(LayerExportTests.Cases["residual"](),
            RandomParametersAndState(LayerExportTests.Cases["residual"](), 1).Parameters, RandomParametersAndState(LayerExportTests.Cases["residual"](), 1).State));
        Assert.Equal(3, residual.Graph.Node.Count(n => n.OpType == "Add"));
        Assert.Contains(residual.Graph.Node, n => n.OpType == "Add" && n.Input.SequenceEqual(new[] { "res2/block", "res2/shortcut/bn1" }));
    }
}
