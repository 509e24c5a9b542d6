using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Tests.LibTorch;
using Cnn.Tests.Onnx;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Dsl;

/// <summary>
/// Auxiliary heads (<see cref="AuxiliaryHead"/>) on the im2col side: the identity in inference, the weighted total in
/// training, the pullback of each head into the trunk, shape errors, JSON, resume, summary and the zoo's networks with heads.
/// The LibTorch comparison of the total loss and its gradients is <see cref="AuxiliaryHeadBridgeTests"/>.
/// </summary>
public sealed class AuxiliaryHeadTests
{
    private static readonly Shape Small = new(3, 16, 16);

    /// <summary>inception-mini-aux and inception-mini on the same trunk parameters (the heads' parameters are extra).</summary>
    private static (Network Headed, Network Plain, Parameters P) Pair(int seed)
    {
        var headed = Zoo.InceptionMiniAux(Small);
        var plain = Zoo.InceptionMini(Small);
        var p = Initializer.Init(headed, seed);
        return (headed, plain, p);
    }

    private static Parameters Trunk(Network plain, Parameters p) => Parameters.Of(p.Entries.Where(kv => plain.RootNode.Leaves()
        .SelectMany(l => l.ParameterSpecs()).Any(s => s.Path == kv.Key)));

    [Fact]
    public void Inference_is_the_network_without_its_heads()
    {
        var (headed, plain, p) = Pair(1);
        var x = OnnxTestSupport.RandomBatch(Small, 3, 2);
        var expected = Apply.Forward(plain, Trunk(plain, p), x);
        Assert.True(expected.Span.SequenceEqual(Apply.Forward(headed, p, x).Span));
        Assert.True(expected.Span.SequenceEqual(InferenceModel.Compile(headed, p, null).Predict(x).Span));
        var eval = Apply.WithPullback(headed, p, x, Mode.Eval);
        Assert.Empty(eval.Heads);
        var data = new LabeledData(x, new[] { 1, 7, 3 }, 10);
        Assert.Equal(Trainer.Evaluate(plain, Trunk(plain, p), data), Trainer.Evaluate(headed, p, data));
    }

    [Fact]
    public void The_training_loss_is_the_main_loss_plus_each_heads_weighted_loss()
    {
        var (headed, _, p) = Pair(3);
        var x = OnnxTestSupport.RandomBatch(Small, 4, 4);
        int[] labels = { 2, 9, 0, 5 };
        var pass = Apply.WithPullback(headed, p, x, Mode.Train, seed: 11);
        Assert.Equal(new[] { "aux1", "aux2" }, pass.Heads.Select(h => h.Path));
        Assert.All(pass.Heads, h => Assert.Equal(new Shape(4, 10), h.Output.Shape));
        float expected = Losses.SoftmaxCrossEntropy(pass.Output, labels).Value;
        foreach (var h in pass.Heads) expected += 0.3f * Losses.SoftmaxCrossEntropy(h.Output, labels).Value;
        var total = TotalLoss.Of(pass, LossFunction.SoftmaxCrossEntropy, labels);
        Assert.Equal(expected, total.Value);
        Assert.True(total.Value > total.Main.Value + 0.1f, $"total {total.Value}, main {total.Main.Value}");
        var g = Loss.Gradient(headed, p, x, labels, LossFunction.SoftmaxCrossEntropy, Mode.Train, seed: 11);
        Assert.Equal(expected, g.Loss);
        var step = Trainer.Step(headed, p, Parameters.Empty, new Sgd(0.1f), new Sgd(0.1f).Init(p), x, labels, seed: 11);
        Assert.Equal(expected, step.Loss);
        // Every head's parameters train.
        Assert.All(headed.Heads.SelectMany(h => h.Children[0].Leaves()).SelectMany(l => l.ParameterSpecs()),
            s => Assert.False(step.Parameters[s.Path].Span.SequenceEqual(p[s.Path].Span), s.Path));
    }

    [Fact]
    public void A_heads_gradient_enters_the_trunk_where_it_taps_it()
    {
        var (headed, plain, p) = Pair(5);
        var x = OnnxTestSupport.RandomBatch(Small, 3, 6);
        int[] labels = { 4, 4, 1 };
        var mute = Network.Create(Reweighted(headed.Root, 0f), Small);
        var alone = Loss.Gradient(plain, Trunk(plain, p), x, labels, LossFunction.SoftmaxCrossEntropy, seed: 2);
        var silent = Loss.Gradient(mute, p, x, labels, LossFunction.SoftmaxCrossEntropy, seed: 2);
        var heard = Loss.Gradient(headed, p, x, labels, LossFunction.SoftmaxCrossEntropy, seed: 2);
        // Weight 0: the trunk's gradients are those of the network without heads, to the bit; the heads' are zero.
        foreach (var path in alone.Gradients.Paths)
            Assert.True(alone.Gradients[path].Span.SequenceEqual(silent.Gradients[path].Span), path);
        Assert.All(silent.Gradients.Paths.Where(q => q.StartsWith("aux", StringComparison.Ordinal)), q => Assert.All(silent.Gradients[q].ToArray(), v => Assert.Equal(0f, v)));
        // Weight 0.3: the stem (tapped by both heads) and the inception module (tapped by aux2) learn from them; the
        // classifier after the last tap does not.
        Assert.False(alone.Gradients["stem/conv1/weight"].Span.SequenceEqual(heard.Gradients["stem/conv1/weight"].Span));
        Assert.False(alone.Gradients["inception/branch1x1/conv1/weight"].Span.SequenceEqual(heard.Gradients["inception/branch1x1/conv1/weight"].Span));
        Assert.True(alone.Gradients["dense1/weight"].Span.SequenceEqual(heard.Gradients["dense1/weight"].Span));
        Assert.False(alone.InputGradient.Span.SequenceEqual(heard.InputGradient.Span));
    }

    private static Layer Reweighted(Layer root, float weight) =>
        new Serial(((Serial)root).Layers.Select(l => l is AuxiliaryHead a ? a with { Weight = weight } : l));

    [Fact]
    public void Pullback_checks_the_head_gradients_it_is_given()
    {
        var (headed, _, p) = Pair(7);
        var x = OnnxTestSupport.RandomBatch(Small, 2, 8);
        var pass = Apply.WithPullback(headed, p, x, Mode.Train);
        var dy = Tensor.Zeros(2, 10);
        var e = Assert.Throws<ShapeException>(() => pass.Pullback(dy, new[] { dy }));
        Assert.Contains("each of the 2 auxiliary heads", e.Message);
        e = Assert.Throws<ShapeException>(() => pass.Pullback(dy, new[] { dy, Tensor.Zeros(2, 9) }));
        Assert.Contains("head 'aux2'", e.Message);
        Assert.Contains("[2, 9]", e.Message);
    }

    [Fact]
    public void Heads_that_do_not_fit_are_shape_errors_naming_the_layer()
    {
        var trunk = new Layer[] { new Conv2d(4, 3, 3).Named("conv"), new Flatten(), new Dense(5) };
        Layer Net(Layer aux) => new Serial(trunk[0], aux, trunk[1], trunk[2]);
        var wrong = Assert.Throws<ShapeException>(() => Network.Create(Net(new AuxiliaryHead(new Serial(new Flatten(), new Dense(6)), 0.3f).Named("side")), new Shape(1, 6, 6)));
        Assert.Contains("'side'", wrong.Message);
        Assert.Contains("[5]", wrong.Message);
        Assert.Contains("[6]", wrong.Message);
        var nested = new AuxiliaryHead(new Serial(new AuxiliaryHead(new Serial(new Flatten(), new Dense(5)), 0.1f), new Flatten(), new Dense(5)), 0.3f);
        Assert.Contains("inside the auxiliary head", Assert.Throws<ShapeException>(() => Network.Create(Net(nested), new Shape(1, 6, 6))).Message);
        foreach (var weight in new[] { -0.5f, float.NaN, float.PositiveInfinity })
        {
            var e = Assert.Throws<ShapeException>(() => Network.Create(Net(new AuxiliaryHead(new Serial(new Flatten(), new Dense(5)), weight)), new Shape(1, 6, 6)));
            Assert.Contains("aux1", e.Message);
            Assert.Contains("finite and not negative", e.Message);
        }
    }

    public static Arbitrary<(int Seed, int Heads, float Weight)> HeadCases() =>
        (from seed in Gen.Choose(0, int.MaxValue - 1)
         from heads in Gen.Choose(1, 2)
         from weight in Gen.Elements(0f, 1e-7f, 0.3f, 0.1f + 0.2f, 1f / 3, 7.25e3f, float.Epsilon)
         select (seed, heads, weight)).ToArbitrary();

    /// <summary>JSON round trip of random trunks with one or two heads, the weights to the bit.</summary>
    [Property(MaxTest = 60, Arbitrary = new[] { typeof(AuxiliaryHeadTests) })]
    public void Networks_with_heads_read_back_from_json_as_they_were((int Seed, int Heads, float Weight) c)
    {
        var bridge = RandomNetworks.WithHeads(RandomNetworks.Make((Family)(1 + c.Seed % 3), c.Seed), c.Heads, c.Seed);
        var net = Network.Create(Reweighted(bridge.Network.Root, c.Weight), bridge.Network.InputShape);
        var back = NetworkJson.Deserialize(NetworkJson.Serialize(net), "test");
        Assert.Equal(net, back);
        Assert.True(back.Heads.Count >= c.Heads);
        Assert.All(back.Heads, h => Assert.Equal(BitConverter.SingleToInt32Bits(c.Weight), BitConverter.SingleToInt32Bits(((AuxiliaryHead)h.Layer).Weight)));
    }

    [Fact]
    public void Json_rejects_a_bad_weight_with_its_place()
    {
        var original = NetworkJson.Serialize(Zoo.InceptionMiniAux());
        var json = System.Text.RegularExpressions.Regex.Replace(original, "\"weight\":\\s*0\\.3\\b", "\"weight\": -1");
        Assert.NotEqual(original, json);
        var e = Assert.Throws<Cnn.Core.FormatException>(() => NetworkJson.Deserialize(json, "net.json"));
        Assert.Contains("weight", e.Message);
        Assert.Contains("net.json", e.Message);
    }

    [Fact]
    public void Resume_with_heads_is_bitwise_the_uninterrupted_run_and_checkpoints_hold_the_heads()
    {
        var net = Zoo.InceptionMiniAux(Small);
        var x = OnnxTestSupport.RandomBatch(Small, 24, 9);
        var data = new LabeledData(x, Enumerable.Range(0, 24).Select(i => i * 7 % 10).ToArray(), 10);
        var p = Initializer.Init(net, 9);
        var options = new TrainOptions(2, 8, new Sgd(0.05f, 0.9f), Seed: 4);
        var whole = Trainer.Fit(net, p, data, options);
        var first = Trainer.Fit(net, p, data, options with { Epochs = 1 });
        var file = Path.Combine(Path.GetTempPath(), $"aux-resume-{Guid.NewGuid():N}.safetensors");
        try
        {
            Checkpoint.Save(file, first.Checkpoint, net);
            var loaded = Checkpoint.Load(file);
            Assert.Equal(net, Checkpoint.LoadNetwork(loaded));
            var resumed = Trainer.Fit(net, p, data, options, resume: loaded);
            Assert.Equal(whole.Parameters.Paths, resumed.Parameters.Paths);
            Assert.Contains("aux2/head/fc2/weight", resumed.Parameters.Paths);
            foreach (var path in whole.Parameters.Paths)
                Assert.True(whole.Parameters[path].Span.SequenceEqual(resumed.Parameters[path].Span), path);
            Assert.Equal(whole.History[^1].TrainLoss, resumed.History[^1].TrainLoss);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Summary_lists_the_heads_parameters()
    {
        var net = Zoo.InceptionMiniAux();
        var rows = Summary.Rows(net);
        Assert.Contains(rows, r => r.Path == "aux1/head/fc1" && r.Parameters == 256 * 32 + 32);
        Assert.Contains(rows, r => r.Path == "aux2/head/conv" && r.Parameters == 80 * 16 + 16);
        Assert.Contains("aux2/head/fc2", Summary.Format(net));
    }

    /// <summary>
    /// The heads' sizes by hand: aux1 taps 512 channels at 14x14 (pool to 4x4, 1x1 conv 512*128+128, fc1 2048*1024+1024,
    /// fc2 1024*1000+1000), aux2 528; inception-mini-aux's taps 32 and 80 channels at 16x16 (pool to 4x4, conv 16, fc1 256*32+32, fc2 330).
    /// </summary>
    [Fact]
    public void The_zoos_networks_with_heads_are_their_namesakes_plus_the_heads()
    {
        long head = 2_098_176 + 1_025_000;
        Assert.Equal(Summary.Totals(Zoo.GoogLeNet()).Trainable + 65_664 + head + 67_712 + head, Summary.Totals(Zoo.ByName("googlenet-aux")).Trainable);
        Assert.Equal(Summary.Totals(Zoo.InceptionMini()).Trainable + 528 + 8_224 + 330 + 1_296 + 8_224 + 330, Summary.Totals(Zoo.ByName("inception-mini-aux")).Trainable);
        var aux = Zoo.GoogLeNetAux();
        Assert.Equal(new[] { "aux1", "aux2" }, aux.Heads.Select(h => h.Path));
        Assert.Equal(new[] { "inception4a", "inception4d" },
            aux.Heads.Select(h => aux.RootNode.Children[aux.RootNode.Children.ToList().IndexOf(h) - 1].Path));
        var trunkPaths = aux.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()).Select(s => s.Path).Where(q => !q.StartsWith("aux", StringComparison.Ordinal));
        Assert.Equal(Zoo.GoogLeNet().RootNode.Leaves().SelectMany(l => l.ParameterSpecs()).Select(s => s.Path), trunkPaths);
        // The heads' 5x5 pooling needs 5x5 at inception 4a, which 79x79 images give and 78x78 do not.
        Assert.Equal(new Shape(10), Zoo.GoogLeNetAux(10, new Shape(3, 79, 79)).OutputShape);
        var small = Assert.Throws<ShapeException>(() => Zoo.GoogLeNetAux(10, new Shape(3, 78, 78)));
        Assert.Contains("aux1/head/pool", small.Message);
        Assert.Equal(new Shape(1, 28, 28), Zoo.ForInput("inception-mini-aux", new Shape(1, 28, 28)).InputShape);
    }
}
