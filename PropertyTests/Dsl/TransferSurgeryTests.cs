using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Cnn.Tests.Dsl;

/// <summary>
/// <see cref="Transfer"/>: freezing by path, finding and replacing the classifier head, unfreezing. The property builds
/// random trees (nested serials, residuals, sums and concatenations, batch norm) with a Dense head, freezes a random node
/// and replaces the head, and checks what surgery promises: paths and kept tensors unchanged (the same tensors), the
/// trainable set, the eval output of a frozen network unchanged, the new head drawn by the initialiser, and unfreezing
/// giving back the network.
/// </summary>
public class TransferSurgeryTests
{
    private static readonly Shape Input = new(2, 3, 3);

    /// <summary>A body that keeps <c>[2, 3, 3]</c>: leaves with and without parameters, nested to <paramref name="depth"/>.</summary>
    private static Gen<Layer> Body(int depth)
    {
        var leaf = Gen.OneOf(
            Gen.Choose(0, 1).Select(k => (Layer)new Conv2d(2, 2 * k + 1, 2 * k + 1, PadH: k, PadW: k)),
            Gen.Constant((Layer)new BatchNorm()),
            Gen.Constant((Layer)new Relu()),
            Gen.Constant((Layer)new Serial(new Conv2d(1, 1, 1), new Conv2d(2, 1, 1))));
        if (depth == 0) return leaf;
        var inner = Body(depth - 1);
        return Gen.OneOf(
            leaf,
            Gen.Choose(1, 3).SelectMany(n => Gen.ArrayOf(inner, n)).Select(l => (Layer)new Serial(l)),
            inner.Select(b => (Layer)new Residual(b)),
            from a in inner from b in inner select (Layer)FanOut.Sum(a, b),
            from a in inner from b in inner select (Layer)new Serial(FanOut.Concat(a, b), new Conv2d(2, 1, 1)));
    }

    private static Network WithHead(Layer body) =>
        Network.Create(new Serial(body.Named("body"), new Flatten(), new Dense(4).Named("fc")), Input);

    private static IEnumerable<Node> All(Node n) => n.Children.SelectMany(All).Prepend(n);

    private static Tensor Random(Shape shape, int seed)
    {
        var rng = new Random(seed);
        return Tensor.FromArray(Enumerable.Range(0, shape.Size).Select(_ => rng.NextSingle() * 2 - 1).ToArray(), shape);
    }

    [CnnProperty]
    public Property Freezing_a_node_and_replacing_the_head_keep_every_other_tensor_and_train_what_they_should() =>
        Prop.ForAll((from body in Body(3) from pick in Gen.Choose(0, 1000) from classes in Gen.Choose(1, 7) from seed in Gen.Choose(0, 9999)
                     select (body, pick, classes, seed)).ToArbitrary(), t =>
        {
            var net = WithHead(t.body);
            var parameters = Initializer.Init(net, t.seed);
            var state = Initializer.InitState(net).Map((_, s) => Random(s.Shape, t.seed + 1));
            var paths = All(net.RootNode).Select(n => n.Path).Where(p => p.StartsWith("body", StringComparison.Ordinal)).Distinct().ToList();
            var path = paths[t.pick % paths.Count];

            var frozen = Transfer.Freeze(net, [path + "/"]);
            bool Under(string p) => p.StartsWith(path + "/", StringComparison.Ordinal);
            var samePaths = Initializer.Init(frozen, 0).Paths.SequenceEqual(parameters.Paths) && Initializer.InitState(frozen).Paths.SequenceEqual(state.Paths);
            var trainable = Trainer.TrainablePaths(frozen).SetEquals(parameters.Paths.Where(p => !Under(p)));
            var x = Random(Input.PrependBatch(2), t.seed + 2);
            var sameEval = Apply.Forward(net, parameters, x, Mode.Eval, state).Span.SequenceEqual(Apply.Forward(frozen, parameters, x, Mode.Eval, state).Span);
            var unfrozen = Transfer.Unfreeze(frozen) == net;
            var again = Transfer.Freeze(frozen, [path]) == frozen;

            var tuned = Transfer.Prepare(net, parameters, state, new TransferOptions([Transfer.AllButHead], t.classes, Seed: t.seed));
            var fresh = Initializer.Init(tuned.Network, t.seed);
            var kept = tuned.Parameters.Paths.SequenceEqual(parameters.Paths)
                && parameters.Paths.Where(p => !p.StartsWith("fc/", StringComparison.Ordinal)).All(p => ReferenceEquals(tuned.Parameters[p], parameters[p]))
                && state.Paths.All(p => ReferenceEquals(tuned.State[p], state[p]));
            var head = tuned.HeadPath == "fc" && tuned.Network.OutputShape == new Shape(t.classes)
                && new[] { "fc/weight", "fc/bias" }.All(p => tuned.Parameters[p].Span.SequenceEqual(fresh[p].Span));
            var onlyHead = Trainer.TrainablePaths(tuned.Network).SetEquals(["fc/weight", "fc/bias"]);
            return samePaths.Label("paths unchanged by freezing").And(trainable.Label($"trainable = all but '{path}/...'"))
                .And(sameEval.Label("eval output unchanged by freezing")).And(unfrozen.Label("unfreeze gives the network back"))
                .And(again.Label("freezing twice is freezing once")).And(kept.Label("kept tensors are the given ones"))
                .And(head.Label("new head of the classes, from the initialiser")).And(onlyHead.Label("all-but-head trains only the head"));
        });

    [Fact]
    public void A_1x1_convolution_classifier_is_found_and_replaced_by_one_of_n_filters()
    {
        // squeezenet's end: a 1x1 convolution, ReLU, a global average pool and a flatten.
        var net = Network.Create(new Serial(new Conv2d(8, 3, 3).Named("features"), new Conv2d(1000, 1, 1), new Relu(), new GlobalPool(), new Flatten()), new Shape(3, 8, 8));
        Assert.Equal("conv2", Transfer.FindHead(net));
        var tuned = Transfer.ReplaceHead(net, Initializer.Init(net, 1), Parameters.Empty, 10, seed: 2);
        Assert.Equal(new Shape(10), tuned.Network.OutputShape);
        Assert.Equal(new Shape(10, 8, 1, 1), tuned.Parameters["conv2/weight"].Shape);
        Assert.Equal(Initializer.Init(tuned.Network, 2)["conv2/weight"].ToArray(), tuned.Parameters["conv2/weight"].ToArray());
    }

    [Fact]
    public void A_network_of_one_layer_keeps_its_parameter_paths_when_frozen()
    {
        var net = Network.Create(new Dense(3), new Shape(4));
        var frozen = Transfer.Freeze(net, ["dense1"]);
        Assert.Equal(Initializer.Init(net, 1).Paths, Initializer.Init(frozen, 1).Paths);
        Assert.Empty(Trainer.TrainablePaths(frozen));
        Assert.Equal(Initializer.Init(net, 1).Paths, Initializer.Init(Transfer.Unfreeze(frozen), 1).Paths);
    }

    [Fact]
    public void Errors_name_the_path_and_say_what_was_expected()
    {
        var net = Network.Create(new Serial(new Serial(new Conv2d(4, 3, 3), new Relu()).Named("features"), new Flatten(), new Dense(8), new Relu(), new Dense(3)), new Shape(1, 6, 6));
        var p = Initializer.Init(net, 1);
        Assert.Equal("dense2", Transfer.FindHead(net));

        var missing = Assert.Throws<ShapeException>(() => Transfer.Freeze(net, ["features/conv9"]));
        Assert.Contains("No layer at path 'features/conv9'; the layers under 'features' are features/conv1, features/relu1", missing.Message);
        Assert.Contains("must name a layer", Assert.Throws<ShapeException>(() => Transfer.Freeze(net, ["/"])).Message);
        var holdsHead = Assert.Throws<ShapeException>(() => Transfer.Prepare(net, p, Parameters.Empty, new TransferOptions(["dense2"], 5)));
        Assert.Contains("Freezing 'dense2' would freeze the head 'dense2', which then could not train", holdsHead.Message);
        var notLast = Assert.Throws<ShapeException>(() => Transfer.ReplaceHead(net, p, Parameters.Empty, 5, 1, "dense1"));
        Assert.Contains("'dense1' is followed by layers with parameters or state ('dense2')", notLast.Message);
        var notClassifier = Assert.Throws<ShapeException>(() => Transfer.ReplaceHead(net, p, Parameters.Empty, 5, 1, "features/conv1"));
        Assert.Contains("The head 'features/conv1' is a Conv2d with output [4, 4, 4]", notClassifier.Message);
        var frozenHead = Assert.Throws<ShapeException>(() => Transfer.ReplaceHead(Transfer.Freeze(net, ["dense2"]), p, Parameters.Empty, 5, 1));
        Assert.Contains("The head 'dense2' is inside a frozen subtree", frozenHead.Message);
        var wrongShape = Assert.Throws<ShapeException>(() => Transfer.ReplaceHead(net, p.With("dense1/weight", Tensor.Zeros(2, 2)), Parameters.Empty, 5, 1));
        Assert.Contains("'dense1/weight' given has shape [2, 2]; the network expects [8, 64]", wrongShape.Message);

        var normalisedLast = Network.Create(new Serial(new Flatten(), new Dense(3), new BatchNorm()), new Shape(1, 2, 2));
        Assert.Contains("'bn1' (a BatchNorm with output [3]), is not a classifier head",
            Assert.Throws<ShapeException>(() => Transfer.FindHead(normalisedLast)).Message);
        var twoHeads = Network.Create(new Serial(new Flatten(), FanOut.Concat(new Dense(3), new Dense(2))), new Shape(1, 2, 2));
        Assert.Contains("ambiguous: the last layer with parameters, 'concat1/dense2', is in one of the branches joined at 'concat1' (concat; branches end in 'concat1/dense1', 'concat1/dense2')",
            Assert.Throws<ShapeException>(() => Transfer.FindHead(twoHeads)).Message);
    }
}
