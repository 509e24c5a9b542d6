using Cnn.Core;
using Cnn.Dsl;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Onnx;

/// <summary>
/// Builds the layer tree of an imported graph. The exporter names each node after its layer's path
/// (<c>block1/conv2</c>), so the tree is first rebuilt from the names: consecutive items that share a first path
/// segment form a nested <see cref="Serial"/> of that name, and each layer takes its last segment; a model exported
/// here thus comes back with its nesting and its parameter paths. When the names do not describe a tree whose paths
/// are those names (a model made elsewhere), the tree follows torch.onnx's module scopes where the names have them
/// (<c>/features/features.0/Conv</c>, see ModuleTree.cs), and is built flat, with default names, otherwise.
/// </summary>
internal sealed partial class ImportTree
{
    private readonly Dictionary<Layer, LeafItem?> _leaves = new(ReferenceEqualityComparer.Instance);
    private readonly bool _named;

    private ImportTree(bool named) => _named = named;

    /// <summary>The network and, for each leaf that came from the graph, its resolved node and item.</summary>
    public static (Network Network, List<(Node Node, LeafItem Item)> Leaves) Build(IReadOnlyList<ImportItem> items, Shape input, string source)
    {
        try
        {
            var named = new ImportTree(named: true);
            var network = Network.Create(named.Root(items), input);
            var leaves = named.Match(network);
            if (leaves.All(l => l.Node.Path == l.Item.NodeName)) return (network, leaves);
        }
        catch (Exception e) when (e is NamingMismatch or ShapeException)
        {
            // The names are only a hint; the flat tree below is always valid.
        }
        if (HasModuleScopes(items))
        {
            try
            {
                var scoped = new ImportTree(named: false);
                var network = Network.Create(scoped.ModuleRoot(items), input);
                return (network, scoped.Match(network));
            }
            catch (Exception e) when (e is NamingMismatch or ShapeException)
            {
                // Scopes that do not make a tree of unique names leave the flat tree.
            }
        }
        var plain = new ImportTree(named: false);
        try
        {
            var network = Network.Create(plain.Root(items), input);
            return (network, plain.Match(network));
        }
        catch (ShapeException e)
        {
            throw new FormatException($"ONNX model from {source}: the imported layers do not fit together: {e.Message}", e);
        }
    }

    private Layer Root(IReadOnlyList<ImportItem> items)
    {
        if (items.Count == 0) return new Serial(Record(new Identity(), null));
        if (!_named) return new Serial(items.Select(Plain));
        // A FanOut or Residual at the root (path "") names its node after its kind, but its branches' paths have no prefix.
        if (items is [JoinItem join] && !Flatten(join).Any(i => i.NodeName.StartsWith(join.NodeName + "/", StringComparison.Ordinal)))
            return Joined(join, "", null);
        // An unnamed root adds nothing to paths, so a root Serial named "net" comes back as its only child.
        return new Serial(Sequence(items, ""));
    }

    private List<(Node Node, LeafItem Item)> Match(Network network)
    {
        var result = new List<(Node Node, LeafItem Item)>();
        foreach (var node in network.Leaves)
        {
            // A leaf not recorded is the identity shortcut a Residual adds for itself.
            if (_leaves.TryGetValue(node.Layer, out var item) && item is not null) result.Add((node, item));
        }
        if (result.Count != _leaves.Values.Count(i => i is not null)) throw new NamingMismatch();
        return result;
    }

    private Layer Record(LeafLayer layer, LeafItem? item)
    {
        _leaves.Add(layer, item);
        return layer;
    }

    private Layer Plain(ImportItem item) => item switch
    {
        LeafItem leaf => Record(leaf.Layer, leaf),
        JoinItem { Op: "Add" } j => new Residual(PlainBranch(j.Branches[0]), j.Shortcut is null ? null : PlainBranch(j.Shortcut)),
        JoinItem j => new FanOut(JoinOf(j.Op), j.Branches.Select(PlainBranch)),
        _ => throw new InvalidOperationException(item.GetType().Name),
    };

    private Layer PlainBranch(IReadOnlyList<ImportItem> items) => items.Count switch
    {
        0 => Record(new Identity(), null),
        1 => Plain(items[0]),
        _ => new Serial(items.Select(Plain)),
    };

    /// <summary>The layers of a chain of items whose node names all lie under path <paramref name="prefix"/>.</summary>
    private List<Layer> Sequence(IReadOnlyList<ImportItem> items, string prefix)
    {
        items = Absorb(items);
        var layers = new List<Layer>();
        for (int i = 0; i < items.Count;)
        {
            var segments = Relative(items[i].NodeName, prefix);
            if (segments.Length == 1)
            {
                layers.Add(Named(items[i], prefix, segments[0]));
                i++;
                continue;
            }
            int end = i + 1;
            while (end < items.Count && Relative(items[end].NodeName, prefix) is { Length: > 1 } s && s[0] == segments[0]) end++;
            layers.Add(new Serial(Sequence(items.Skip(i).Take(end - i).ToArray(), Network.Join(prefix, segments[0]))) { Name = segments[0] });
            i = end;
        }
        return layers;
    }

    /// <summary>
    /// A FanOut of one branch does not fork: its branch's nodes come before its Sum or Concat in the chain. The
    /// names tell them apart from the layers before the FanOut (<c>sum1/conv1</c> lies under <c>sum1</c>).
    /// </summary>
    private static List<ImportItem> Absorb(IReadOnlyList<ImportItem> items)
    {
        var result = new List<ImportItem>();
        foreach (var item in items)
        {
            if (item is JoinItem { Op: "Sum" or "Concat", Branches: [{ Count: 0 }] } join)
            {
                int start = result.Count;
                while (start > 0 && result[start - 1].NodeName.StartsWith(join.NodeName + "/", StringComparison.Ordinal)) start--;
                if (start < result.Count)
                {
                    var branch = result.GetRange(start, result.Count - start);
                    result.RemoveRange(start, branch.Count);
                    result.Add(join with { Branches = new[] { branch } });
                    continue;
                }
            }
            result.Add(item);
        }
        return result;
    }

    private Layer Named(ImportItem item, string prefix, string name) => item switch
    {
        LeafItem leaf => Record(leaf.Layer with { Name = name }, leaf),
        JoinItem j => Joined(j, Network.Join(prefix, name), name),
        _ => throw new InvalidOperationException(item.GetType().Name),
    };

    private Layer Joined(JoinItem j, string path, string? name) => j.Op == "Add"
        ? new Residual(NamedBranch(j.Branches[0], path), j.Shortcut is null ? null : NamedBranch(j.Shortcut, path)) { Name = name }
        : new FanOut(JoinOf(j.Op), Distinct(j.Branches.Select(b => NamedBranch(b, path)).ToArray())) { Name = name };

    /// <summary>The join of a FanOut read from a Sum, a Concat or a Mul.</summary>
    private static Join JoinOf(string op) => op switch { "Sum" => Join.Sum, "Concat" => Join.Concat, _ => Join.Product };

    private static IEnumerable<ImportItem> Flatten(JoinItem join) =>
        join.Branches.Append(join.Shortcut ?? Array.Empty<ImportItem>()).SelectMany(b => b).SelectMany(i => i is JoinItem inner ? Flatten(inner).Prepend(i) : new[] { i });

    /// <summary>Names the identities of empty branches (a dropout left out) apart from their named siblings.</summary>
    private static Layer[] Distinct(Layer[] branches)
    {
        var taken = branches.Select(b => b.Name).OfType<string>().ToHashSet(StringComparer.Ordinal);
        int next = 1;
        for (int i = 0; i < branches.Length; i++)
        {
            if (branches[i].Name is not null) continue;
            while (!taken.Add($"identity{next}")) next++;
            branches[i] = branches[i].Named($"identity{next}");
        }
        return branches;
    }

    private Layer NamedBranch(IReadOnlyList<ImportItem> items, string path)
    {
        if (items.Count == 0) return Record(new Identity(), null);
        var layers = Sequence(items, path);
        return layers.Count == 1 ? layers[0] : throw new NamingMismatch();
    }

    private static string[] Relative(string name, string prefix)
    {
        if (prefix.Length > 0 && !name.StartsWith(prefix + "/", StringComparison.Ordinal)) throw new NamingMismatch();
        var segments = (prefix.Length > 0 ? name[(prefix.Length + 1)..] : name).Split('/');
        if (segments.Any(s => s.Length == 0)) throw new NamingMismatch();
        return segments;
    }

    /// <summary>The node names do not describe a tree; the flat tree is used instead.</summary>
    private sealed class NamingMismatch : Exception;
}
