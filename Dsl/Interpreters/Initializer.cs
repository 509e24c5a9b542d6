using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// Makes the parameter tree of a network from a seed. The default is PyTorch's: weights and biases uniform
/// in <c>±1/sqrt(fan_in)</c> (what <c>kaiming_uniform_(a=sqrt(5))</c> amounts to for Conv2d and Linear).
/// </summary>
public static class Initializer
{
    /// <summary>The parameters of <paramref name="network"/>, initialised from <paramref name="seed"/>, keyed by path.</summary>
    /// <remarks>Parameters are drawn in path order from one generator, so the same seed gives the same tree on every machine.</remarks>
    public static Parameters Init(Network network, int seed)
    {
        ArgumentNullException.ThrowIfNull(network);
        var specs = network.RootNode.Leaves().SelectMany(n => n.ParameterSpecs()).OrderBy(s => s.Path, StringComparer.Ordinal);
        var rng = new Random(seed);
        return Parameters.Of(specs.Select(s =>
        {
            float bound = 1f / MathF.Sqrt(Math.Max(1, s.Spec.FanIn));
            var d = new float[s.Spec.Shape.Size];
            for (int i = 0; i < d.Length; i++) d[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
            return KeyValuePair.Create(s.Path, Tensor.Own(d, s.Spec.Shape));
        }));
    }
}
