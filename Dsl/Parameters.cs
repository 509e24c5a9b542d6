using System.Collections.Immutable;
using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// An immutable map from parameter path (<c>conv1/weight</c>) to tensor, ordered by path.
/// Gradients and optimizer moments use the same type.
/// </summary>
public sealed class Parameters
{
    private readonly ImmutableSortedDictionary<string, Tensor> _map;

    private Parameters(ImmutableSortedDictionary<string, Tensor> map) => _map = map;

    /// <summary>An empty set.</summary>
    public static Parameters Empty { get; } = new(ImmutableSortedDictionary.Create<string, Tensor>(StringComparer.Ordinal));

    /// <summary>A set from path-tensor pairs.</summary>
    /// <exception cref="CnnException">A path appears twice.</exception>
    public static Parameters Of(IEnumerable<KeyValuePair<string, Tensor>> entries)
    {
        var b = ImmutableSortedDictionary.CreateBuilder<string, Tensor>(StringComparer.Ordinal);
        foreach (var (k, v) in entries)
        {
            if (b.ContainsKey(k)) throw new CnnException($"Parameter path '{k}' appears twice.");
            b[k] = v;
        }
        return new Parameters(b.ToImmutable());
    }

    /// <summary>The paths, in ordinal order.</summary>
    public IReadOnlyList<string> Paths => _map.Keys.ToArray();

    /// <summary>The number of tensors.</summary>
    public int Count => _map.Count;

    /// <summary>The total number of scalar parameters.</summary>
    public long ScalarCount => _map.Values.Sum(t => (long)t.Size);

    /// <summary>The entries, in path order.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> Entries => _map;

    /// <summary>Whether a path is present.</summary>
    public bool Contains(string path) => _map.ContainsKey(path);

    /// <summary>The tensor at a path.</summary>
    /// <exception cref="CnnException">No tensor has that path; the message lists the paths there are.</exception>
    public Tensor this[string path] =>
        _map.TryGetValue(path, out var t) ? t
        : throw new CnnException($"No parameter at path '{path}'. Paths present: {string.Join(", ", _map.Keys)}.");

    /// <summary>This set with one path set to a tensor.</summary>
    public Parameters With(string path, Tensor value) => new(_map.SetItem(path, value));

    /// <summary>
    /// This set with several paths set at once: one builder over the shared tree, so replacing every tensor (an optimizer
    /// step) makes each tree node once rather than a path of nodes per tensor.
    /// </summary>
    internal Parameters SetItems(IReadOnlyList<KeyValuePair<string, Tensor>> items)
    {
        if (items.Count == 0) return this;
        var b = _map.ToBuilder();
        foreach (var (k, v) in items) b[k] = v;
        return new Parameters(b.ToImmutable());
    }

    /// <summary>A set with the same paths, each tensor mapped.</summary>
    public Parameters Map(Func<string, Tensor, Tensor> f) =>
        new(_map.ToImmutableSortedDictionary(kv => kv.Key, kv => f(kv.Key, kv.Value), StringComparer.Ordinal));

    /// <summary>A set of zeros with the same paths and shapes.</summary>
    public Parameters ZerosLike() => Map((_, t) => Tensor.Zeros(t.Shape));
}
