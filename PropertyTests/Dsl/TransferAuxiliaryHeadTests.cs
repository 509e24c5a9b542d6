using Cnn.Core;
using Cnn.Dsl;
using Cnn.Tests.PyTorch;
using Xunit;

namespace Cnn.Tests.Dsl;

/// <summary>
/// <see cref="Transfer.ReplaceHead"/> on a network with auxiliary heads (the zoo's <c>inception-mini-aux</c>, GoogLeNet's
/// shape): the auxiliary classifiers replaced with the main one (the default), the heads dropped, or kept when the class
/// count stays; <see cref="Transfer.AllButHead"/> keeps every classifier trainable; the result trains.
/// </summary>
public sealed class TransferAuxiliaryHeadTests
{
    private static readonly Network Net = Zoo.InceptionMiniAux(new Shape(1, 28, 28), classes: 10);
    private static readonly Parameters P = Initializer.Init(Net, 1);
    private static readonly Parameters S = Initializer.InitState(Net);

    [Fact]
    public void By_default_each_auxiliary_classifier_is_replaced_by_one_of_the_new_classes_and_the_rest_kept()
    {
        var tuned = Transfer.ReplaceHead(Net, P, S, 3, seed: 2);
        Assert.Equal(new Shape(3), tuned.Network.OutputShape);
        Assert.Equal(Net.Heads.Select(h => h.Path), tuned.Network.Heads.Select(h => h.Path));
        var fresh = Initializer.Init(tuned.Network, 2);
        foreach (var (path, t) in tuned.Parameters.Entries)
        {
            bool isNew = path.StartsWith(tuned.HeadPath + "/", StringComparison.Ordinal) || path.StartsWith("aux1/head/fc2/", StringComparison.Ordinal)
                || path.StartsWith("aux2/head/fc2/", StringComparison.Ordinal);
            if (isNew) Assert.Equal(fresh[path].ToArray(), t.ToArray());
            else Assert.Same(P[path], t);
        }
        Assert.Equal(new Shape(3, 32), tuned.Parameters["aux1/head/fc2/weight"].Shape);
        Assert.Equal(P.Paths, tuned.Parameters.Paths);

        // Fine-tuning with everything but the classifiers frozen trains the main and both auxiliary classifiers.
        var frozen = Transfer.Freeze(tuned.Network, [Transfer.AllButHead]);
        Assert.Equal(new[] { "aux1/head/fc2/bias", "aux1/head/fc2/weight", "aux2/head/fc2/bias", "aux2/head/fc2/weight", $"{tuned.HeadPath}/bias", $"{tuned.HeadPath}/weight" },
            Trainer.TrainablePaths(frozen).Order(StringComparer.Ordinal));
        var data = PyTorchTrainingTests.Digits(Net.InputShape, 3, 24, seed: 4);
        var trained = Trainer.Fit(frozen, tuned.Parameters, data, new TrainOptions(1, 8, new Sgd(0.05f), Seed: 3), initialState: tuned.State);
        Assert.True(float.IsFinite(trained.History[^1].TrainLoss), $"loss {trained.History[^1].TrainLoss}");
        Assert.NotEqual(tuned.Parameters["aux2/head/fc2/weight"].ToArray(), trained.Checkpoint.Parameters["aux2/head/fc2/weight"].ToArray());
        Assert.Equal(tuned.Parameters["aux2/head/fc1/weight"].ToArray(), trained.Checkpoint.Parameters["aux2/head/fc1/weight"].ToArray());
    }

    [Fact]
    public void Dropping_the_auxiliary_heads_removes_them_and_their_parameters_and_leaves_inference_unchanged()
    {
        var dropped = Transfer.ReplaceHead(Net, P, S, 3, seed: 2, auxiliaryHeads: AuxiliaryHeadChoice.Drop);
        Assert.Empty(dropped.Network.Heads);
        Assert.Equal(P.Paths.Where(p => !p.StartsWith("aux", StringComparison.Ordinal)), dropped.Parameters.Paths);
        Assert.Equal(Net.Leaves.Count(l => !l.Path.StartsWith("aux", StringComparison.Ordinal)), dropped.Network.Leaves.Count);
        // Inference runs the main head only: the same as with the auxiliary heads replaced (the new main head is the same draw).
        var replaced = Transfer.ReplaceHead(Net, P, S, 3, seed: 2);
        var x = PyTorchTrainingTests.Digits(Net.InputShape, 3, 5, seed: 6).Images;
        Assert.Equal(Apply.Forward(replaced.Network, replaced.Parameters, x, Mode.Eval, replaced.State).ToArray(),
            Apply.Forward(dropped.Network, dropped.Parameters, x, Mode.Eval, dropped.State).ToArray());
    }

    [Fact]
    public void Keeping_the_auxiliary_heads_needs_the_same_class_count()
    {
        var kept = Transfer.ReplaceHead(Net, P, S, 10, seed: 2, auxiliaryHeads: AuxiliaryHeadChoice.Keep);
        Assert.Same(P["aux1/head/fc2/weight"], kept.Parameters["aux1/head/fc2/weight"]);
        Assert.NotEqual(P[$"{kept.HeadPath}/weight"].ToArray(), kept.Parameters[$"{kept.HeadPath}/weight"].ToArray());
        var e = Assert.Throws<ShapeException>(() => Transfer.ReplaceHead(Net, P, S, 3, seed: 2, auxiliaryHeads: AuxiliaryHeadChoice.Keep));
        Assert.Contains("Keeping the auxiliary heads ('aux1', 'aux2') needs the head", e.Message);
        Assert.Contains("a new head of 3 classes needs them replaced (AuxiliaryHeadChoice.Replace) or dropped (AuxiliaryHeadChoice.Drop)", e.Message);

        // A head that ends in no classifier cannot be given the new classes; dropping it can.
        var odd = Network.Create(new Serial(new Conv2d(4, 3, 3), new AuxiliaryHead(new Serial(new Flatten(), new Dense(3), new BatchNorm()), 0.3f).Named("aux"),
            new Flatten(), new Dense(3)), new Shape(1, 6, 6));
        var p = Initializer.Init(odd, 1);
        var s = Initializer.InitState(odd);
        Assert.Contains("The auxiliary head 'aux' ends in 'aux/head/bn1', a BatchNorm with output [3], not a Dense or a 1x1 Conv2d",
            Assert.Throws<ShapeException>(() => Transfer.ReplaceHead(odd, p, s, 5, 1)).Message);
        var withoutHead = Transfer.ReplaceHead(odd, p, s, 5, 1, auxiliaryHeads: AuxiliaryHeadChoice.Drop);
        Assert.Empty(withoutHead.State.Paths);
        Assert.Equal(new Shape(5), withoutHead.Network.OutputShape);
    }
}
