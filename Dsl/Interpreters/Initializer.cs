using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// The initialisation interpreter: makes the parameter tree and the initial state of a network from a seed.
/// Each layer uses its own <see cref="Layer.WeightInit"/>, else the nearest enclosing layer's, else the default
/// given here (PyTorch's unless said otherwise).
/// </summary>
public static class Initializer
{
    /// <summary>The parameters of <paramref name="network"/>, keyed by path.</summary>
    /// <remarks>
    /// Each parameter is drawn from its own generator, seeded from <paramref name="seed"/> and its path, so the
    /// same seed gives the same values on every machine, and adding a layer does not change the others' values.
    /// </remarks>
    public static Parameters Init(Network network, int seed, Init? defaultInit = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        var entries = new List<KeyValuePair<string, Tensor>>();
        Walk(network.RootNode, defaultInit ?? Dsl.Init.PyTorch, seed, entries);
        return Parameters.Of(entries);
    }

    /// <summary>The initial state of <paramref name="network"/> (batch-norm running statistics), keyed by path; empty when it has none.</summary>
    public static Parameters InitState(Network network) =>
        Parameters.Of(network.RootNode.Leaves().SelectMany(n => n.StateSpecs())
            .Select(s => KeyValuePair.Create(s.Path, Tensor.Full(s.Spec.Shape, s.Spec.InitialValue))));

    private static void Walk(Node node, Init inherited, int seed, List<KeyValuePair<string, Tensor>> into)
    {
        var init = node.Layer.WeightInit ?? inherited;
        foreach (var child in node.Children) Walk(child, init, seed, into);
        foreach (var (path, spec) in node.ParameterSpecs())
        {
            var rng = PathHash.Generator(seed, path);
            var d = new float[spec.Shape.Size];
            switch (spec.Init)
            {
                case ParameterInit.Ones: Array.Fill(d, 1f); break;
                case ParameterInit.Zeros: break;
                default:
                    for (int i = 0; i < d.Length; i++)
                        d[i] = spec.IsBias ? init.Bias(rng, Math.Max(1, spec.FanIn)) : init.Weight(rng, Math.Max(1, spec.FanIn), Math.Max(1, spec.FanOut));
                    break;
            }
            into.Add(KeyValuePair.Create(path, Tensor.Own(d, spec.Shape)));
        }
    }
}
