using Cnn.Core;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Cnn.Tests.Dsl;

/// <summary>Networks and layer trees compare by value: the same code builds equal networks with equal hashes.</summary>
public class NetworkEqualityTests
{
    /// <summary>A random layer tree on [C, 8, 8] input, built by a function of the seed so that it can be built twice.</summary>
    private static Layer Tree(int seed, int depth)
    {
        var rng = new Random(seed);
        int blocks = 0;
        Layer Leaf(int c) => rng.Next(7) switch
        {
            0 => new Conv2d(c, kernel: 1 + 2 * rng.Next(2), padding: Padding.Same),
            1 => new Relu(),
            2 => new BatchNorm(Momentum: 0.1f * (1 + rng.Next(3))),
            3 => new Dropout(0.1f * rng.Next(5)),
            4 => new LeakyRelu(0.01f * rng.Next(1, 4)),
            5 => new Identity(),
            _ => new Conv2d(c, 3, 3, PadH: 1, PadW: 1).InitWith(Init.HeNormal),
        };
        Layer Node(int d, int c)
        {
            if (d == 0) return Leaf(c);
            int n = rng.Next(1, 4);
            var kids = Enumerable.Range(0, n).Select(_ => Node(d - 1, c)).ToArray();
            return rng.Next(5) switch
            {
                0 => new Serial(kids),
                1 => FanOut.Sum(kids),
                2 => new Residual(new Serial(kids)),
                3 => new Freeze(new Serial(kids)),
                _ => new Serial(kids).Named("block" + ++blocks),
            };
        }
        return new Serial(Node(depth, 2), new Flatten(), new Dense(3));
    }

    [CnnProperty]
    public Property TheSameCodeBuildsEqualNetworksWithEqualHashes() =>
        Prop.ForAll((from seed in Gen.Choose(0, 100_000) from depth in Gen.Choose(0, 3) select (seed, depth)).ToArbitrary(), t =>
        {
            var a = Network.Create(Tree(t.seed, t.depth), new Shape(2, 8, 8));
            var b = Network.Create(Tree(t.seed, t.depth), new Shape(2, 8, 8));
            return (a.Equals(b) && a == b && a.GetHashCode() == b.GetHashCode() && a.Root.Equals(b.Root) && a.Root.GetHashCode() == b.Root.GetHashCode())
                .Label($"seed {t.seed}, depth {t.depth}");
        });

    [CnnProperty]
    public Property ADifferentLeafInputShapeOrStrictnessMakesADifferentNetwork() =>
        Prop.ForAll(Gen.Choose(0, 100_000).ToArbitrary(), seed =>
        {
            var root = Tree(seed, 2);
            var a = Network.Create(root, new Shape(2, 8, 8));
            var changedLeaf = Network.Create(new Serial(root, new Dense(2)), new Shape(2, 8, 8));
            var otherInput = Network.Create(root, new Shape(2, 9, 8));
            var strict = Network.Create(root, new Shape(2, 8, 8), strict: true);
            return (!a.Equals(changedLeaf) && !a.Equals(otherInput) && !a.Equals(strict) && a != otherInput).Label($"seed {seed}");
        });

    [Fact]
    public void EveryZooNetworkBuiltTwiceIsEqualAndHashesAlike()
    {
        foreach (var name in Zoo.Names)
        {
            var a = Zoo.ByName(name);
            var b = Zoo.ByName(name);
            Assert.True(a.Equals(b), name);
            Assert.Equal(a.GetHashCode(), b.GetHashCode());
        }
        Assert.NotEqual(Zoo.ByName("lenet5"), Zoo.ByName("simple-convnet"));
    }

    [Fact]
    public void ANetworkReadBackFromJsonEqualsTheOriginal()
    {
        var net = Zoo.ByName("resnet-mini");
        Assert.Equal(net, Cnn.Dsl.IO.NetworkJson.Deserialize(Cnn.Dsl.IO.NetworkJson.Serialize(net), "test"));
    }
}
