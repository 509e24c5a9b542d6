using Cnn.Dsl;

namespace Cnn.Onnx;

/// <summary>
/// The layer tree of a graph written by torch.onnx, nested as the PyTorch modules were. torch.onnx names each node after
/// its module's scope and its operation (<c>/layer1/layer1.0/conv1/Conv</c>: module <c>layer1.0.conv1</c>), so a layer's
/// path becomes the module's dotted name with '/' for '.' (<c>layer1/0/conv1</c>, as the state dict's
/// <c>layer1.0.conv1.weight</c>): consecutive items of one module form a <see cref="Serial"/> of that name, and
/// <c>--freeze layer1</c> or <c>features</c> freezes what PyTorch calls so. A node without a scope (an unnamed node, an
/// <c>Add</c> of a residual block at its module's own level) takes a name after its kind; a name used twice among
/// siblings (a module called twice) gets a suffix <c>_2</c>, so paths stay unique.
/// </summary>
internal sealed partial class ImportTree
{
    /// <summary>Whether some node name is torch.onnx's scoped form <c>/module/.../Operation</c>.</summary>
    private static bool HasModuleScopes(IEnumerable<ImportItem> items) => items.Any(i => ModulePath(i.NodeName).Length > 0);

    /// <summary>
    /// The module path of a scoped node name: <c>/layer1/layer1.0/conv1/Conv</c> gives <c>[layer1, 0, conv1]</c> (a scope
    /// repeats its parent's dotted name, <c>layer1.0</c> under <c>layer1</c>, or names a child, <c>conv1</c>); empty for
    /// any other name.
    /// </summary>
    private static string[] ModulePath(string nodeName)
    {
        if (!nodeName.StartsWith('/')) return Array.Empty<string>();
        var segments = nodeName[1..].Split('/');
        string dotted = "";
        // The last segment is the operation (Conv, Relu_1) or a suffix the importer adds; the others are scopes.
        foreach (var scope in segments[..^1])
        {
            if (scope.Length == 0) return Array.Empty<string>();
            dotted = dotted.Length == 0 || scope.StartsWith(dotted + ".", StringComparison.Ordinal) ? scope : dotted + "." + scope;
        }
        var path = dotted.Split('.');
        return path.Any(s => s.Length == 0) ? Array.Empty<string>() : path;
    }

    /// <summary>The part of <paramref name="item"/>'s module path under <paramref name="prefix"/>; empty when it is not under it.</summary>
    private static string[] Below(ImportItem item, string[] prefix)
    {
        var path = ModulePath(item.NodeName);
        return path.Length > prefix.Length && path.Take(prefix.Length).SequenceEqual(prefix, StringComparer.Ordinal) ? path[prefix.Length..] : Array.Empty<string>();
    }

    private Layer ModuleRoot(IReadOnlyList<ImportItem> items) =>
        items.Count == 0 ? new Serial(Record(new Identity(), null)) : new Serial(ModuleSequence(items, Array.Empty<string>()));

    /// <summary>The layers of a chain of items inside the module at <paramref name="prefix"/>.</summary>
    private List<Layer> ModuleSequence(IReadOnlyList<ImportItem> items, string[] prefix)
    {
        // Consecutive items whose module paths start with the same child module are one group: that child.
        var groups = new List<(string? Name, List<ImportItem> Items)>();
        foreach (var item in items)
        {
            var below = Below(item, prefix);
            string? name = below.Length > 0 ? below[0] : null;
            if (name is not null && groups.Count > 0 && groups[^1].Name == name) groups[^1].Items.Add(item);
            else groups.Add((name, new List<ImportItem> { item }));
        }
        var names = UniqueNames(groups.Select(g => (g.Name, Kind: g.Name is null ? KindOf(g.Items[0]) : null)).ToList());
        var layers = new List<Layer>();
        for (int i = 0; i < groups.Count; i++)
        {
            var (name, group) = groups[i];
            if (group.Count == 1 && (name is null || Below(group[0], prefix).Length == 1))
                layers.Add(ModuleItem(group[0], names[i], name is null ? prefix : prefix.Append(name).ToArray()));
            else
                layers.Add(new Serial(ModuleSequence(group, prefix.Append(name!).ToArray())) { Name = names[i] });
        }
        return layers;
    }

    /// <summary>One item named <paramref name="name"/>; a join's branches lie inside the module at <paramref name="path"/>.</summary>
    private Layer ModuleItem(ImportItem item, string name, string[] path) => item switch
    {
        LeafItem leaf => Record(leaf.Layer with { Name = name }, leaf),
        JoinItem { Op: "Add" } j => new Residual(ModuleBranch(j.Branches[0], path, null), j.Shortcut is null ? null : ModuleBranch(j.Shortcut, path, null)) { Name = name },
        JoinItem j => new FanOut(JoinOf(j.Op), ModuleBranches(j.Branches, path)) { Name = name },
        _ => throw new InvalidOperationException(item.GetType().Name),
    };

    /// <summary>A FanOut's branches, each named after its one module, or <c>branch{i}</c> when it holds several.</summary>
    private Layer[] ModuleBranches(IReadOnlyList<IReadOnlyList<ImportItem>> branches, string[] path)
    {
        var names = UniqueNames(branches.Select((b, i) =>
        {
            var heads = b.Select(item => Below(item, path) is { Length: > 0 } below ? below[0] : null).Distinct().ToList();
            return (Name: heads is [string only] ? only : (string?)null, Kind: (string?)$"branch{i + 1}");
        }).ToList());
        return branches.Select((b, i) => ModuleBranch(b, path, names[i])).ToArray();
    }

    private Layer ModuleBranch(IReadOnlyList<ImportItem> items, string[] path, string? name)
    {
        if (items.Count == 0) return Record(new Identity { Name = name }, null);
        var layers = ModuleSequence(items, path);
        return layers is [var only] && name is null ? only : new Serial(layers) { Name = name };
    }

    /// <summary>The default name of an item outside any module: its layer's kind, or its join's operation.</summary>
    private static string KindOf(ImportItem item) => item switch
    {
        LeafItem leaf => leaf.Layer.Kind,
        JoinItem j => j.Op.ToLowerInvariant(),
        _ => throw new InvalidOperationException(item.GetType().Name),
    };

    /// <summary>
    /// Sibling names: each given name, with <c>_2</c>, <c>_3</c> on a repeat; each missing one its kind and the first free
    /// number (<c>relu1</c>), or the kind itself when it ends in a digit (<c>branch2</c>) and is free.
    /// </summary>
    private static string[] UniqueNames(IReadOnlyList<(string? Name, string? Kind)> wanted)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        var result = new string[wanted.Count];
        for (int i = 0; i < wanted.Count; i++)
        {
            if (wanted[i].Name is not { } name) continue;
            result[i] = name;
            for (int k = 2; !taken.Add(result[i]); k++) result[i] = $"{name}_{k}";
        }
        for (int i = 0; i < wanted.Count; i++)
        {
            if (result[i] is not null) continue;
            string kind = wanted[i].Kind ?? "layer";
            if (char.IsAsciiDigit(kind[^1]) && taken.Add(kind))
            {
                result[i] = kind;
                continue;
            }
            for (int k = 1; result[i] is null; k++)
                if (taken.Add($"{kind}{k}")) result[i] = $"{kind}{k}";
        }
        return result;
    }
}
