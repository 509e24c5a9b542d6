using Cnn.Core;
using FreezeLayer = Cnn.Dsl.Freeze;

namespace Cnn.Dsl;

/// <summary>
/// Network surgery for transfer learning: freeze subtrees by path and replace the classifier head with one of N classes.
/// Each operation returns a new network checked against the same input shape before anything runs; kept parameters and
/// state are the very tensors given (bitwise the same), a new head's parameters come from <see cref="Initializer.Init"/>
/// with a seed. A path names a node as parameter paths do (<c>features</c>, <c>layer4/1</c>, <c>classifier/1</c>; a
/// trailing '/' is ignored); every error names the path.
/// </summary>
public static class Transfer
{
    /// <summary>The freeze path that stands for every layer with parameters or state except the classifier head (and the auxiliary heads' classifiers).</summary>
    public const string AllButHead = "all-but-head";

    /// <summary>
    /// The classifier head: the last layer with parameters, which must be a <see cref="Dense"/> or a 1x1
    /// <see cref="Conv2d"/> of one group (squeezenet's classifier), and must not be one of several joined branches.
    /// </summary>
    /// <exception cref="ShapeException">No such layer, or the last layer with parameters is no classifier, or the output joins branches (ambiguous).</exception>
    public static string FindHead(Network network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var last = network.Leaves.LastOrDefault(l => l.ParameterSpecs().Any())
            ?? throw new ShapeException("The network has no layer with parameters, so no classifier head to find.");
        if (!IsClassifier(last.Layer))
            throw new ShapeException($"The last layer with parameters, '{last.Path}' ({Describe(last)}), is not a classifier head: expected a Dense or a 1x1 Conv2d of one group. Name the head by its path.");
        var join = Chain(network.RootNode, last)!.LastOrDefault(a => a.Layer is FanOut or Residual);
        if (join is not null)
        {
            var candidates = join.Children.Select(b => b.Leaves().LastOrDefault(l => l.ParameterSpecs().Any())?.Path ?? $"{b.Path} (no parameters)");
            throw new ShapeException($"The classifier head is ambiguous: the last layer with parameters, '{last.Path}', is in one of the branches joined at '{join.Path}' " +
                $"({join.Layer.Kind}; branches end in {string.Join(", ", candidates.Select(c => $"'{c}'"))}). Name the head by its path.");
        }
        return last.Path;
    }

    /// <summary>
    /// <paramref name="network"/> with the nodes at <paramref name="paths"/> frozen (wrapped in <see cref="Freeze"/>: no
    /// gradient, no update, batch normalisation on its running statistics). Parameter paths do not change. The path
    /// <see cref="AllButHead"/> freezes every subtree with parameters or state that holds neither the head nor an auxiliary
    /// head's classifier (<see cref="AuxiliaryHead"/>: its last layer with parameters, when a Dense or a 1x1 Conv2d).
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="paths">Paths of nodes to freeze; an already frozen node, or one without parameters or state, stays as it is.</param>
    /// <param name="headPath">The head that must stay trainable (found by <see cref="FindHead"/> for <see cref="AllButHead"/> when null).</param>
    /// <exception cref="ShapeException">A path names no node, or a frozen node would hold the head; the message names the path.</exception>
    public static Network Freeze(Network network, IEnumerable<string> paths, string? headPath = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(paths);
        var head = headPath is null ? null : Find(network, Normalize(headPath, "head")).Path;
        var targets = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in paths)
        {
            var path = Normalize(raw, "freeze");
            if (path == AllButHead && Lookup(network, path) is null)
            {
                head ??= FindHead(network);
                // The auxiliary heads' classifiers train with the main one (a replaced one starts from random weights).
                var keep = network.Heads.Select(h => h.Leaves().LastOrDefault(l => l.ParameterSpecs().Any())).OfType<Node>()
                    .Where(l => IsClassifier(l.Layer)).Select(l => l.Path).Append(head).ToList();
                AllBut(network.RootNode, keep, targets);
            }
            else targets.Add(Find(network, path).Path);
        }
        if (head is not null && targets.FirstOrDefault(t => Holds(t, head)) is { } holder)
            throw new ShapeException($"Freezing '{holder}' would freeze the head '{head}', which then could not train.");
        var root = Rebuild(network.RootNode, n => !targets.Contains(n.Path) ? null : n.Frozen || !n.Leaves().Any(HasTensors) ? n.Layer
            // An unnamed leaf at the root is named by Network.Create after its kind; wrapped, it keeps that name by being given it.
            : new FreezeLayer(n.Layer) { Name = ReferenceEquals(n, network.RootNode) && n.Layer is LeafLayer { Name: null } ? n.Path : null });
        return ReferenceEquals(root, network.Root) ? network : Network.Create(root, network.InputShape, network.Strict);
    }

    /// <summary>
    /// <paramref name="network"/> with every <see cref="FreezeLayer"/> removed (what it wraps stays), so that every
    /// parameter trains again: the second stage of a fine-tuning that trains the head first. Parameter paths do not change.
    /// </summary>
    public static Network Unfreeze(Network network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var root = Rebuild(network.RootNode, Strip);
        return ReferenceEquals(root, network.Root) ? network : Network.Create(root, network.InputShape, network.Strict);
        static Layer? Strip(Node n) => n.Layer is FreezeLayer ? Rebuild(n.Children[0], Strip) : null;
    }

    /// <summary>
    /// Replaces the classifier head by a layer of the same kind with <paramref name="classes"/> outputs: a Dense of
    /// <paramref name="classes"/> units, or a 1x1 Conv2d of <paramref name="classes"/> filters, keeping its name, bias and
    /// initialisation scheme. Layers after the head may not have parameters or state. The auxiliary heads
    /// (<see cref="AuxiliaryHead"/>) follow <paramref name="auxiliaryHeads"/>: by default each one's classifier is replaced
    /// in the same way, since every head must give the network's classes.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters: every one is kept but the old head's.</param>
    /// <param name="state">Its state (empty when it has none); every tensor is kept.</param>
    /// <param name="classes">The new head's outputs (at least 1).</param>
    /// <param name="seed">Seeds the new head's initialisation (the initialiser's per-path generator).</param>
    /// <param name="headPath">The head's path; null finds it with <see cref="FindHead"/>.</param>
    /// <param name="auxiliaryHeads">Whether the auxiliary heads' classifiers are replaced too (the default), the heads dropped, or kept (same class count only).</param>
    /// <exception cref="ShapeException">No head, a head that is no classifier, frozen or followed by layers with parameters, an
    /// auxiliary head that does not end in a classifier (to replace) or gives another class count (to keep), a shape that
    /// no longer fits, or parameters that do not belong to the network; the message names the path.</exception>
    public static TransferModel ReplaceHead(Network network, Parameters parameters, Parameters state, int classes, int seed, string? headPath = null,
        AuxiliaryHeadChoice auxiliaryHeads = AuxiliaryHeadChoice.Replace)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(state);
        if (classes < 1) throw new ShapeException($"A new head needs at least 1 class; found {classes}.");
        var path = headPath is null ? FindHead(network) : Normalize(headPath, "head");
        var node = Find(network, path);
        while (node.Layer is FreezeLayer) node = node.Children[0];
        if (node.Frozen) throw new ShapeException($"The head '{path}' is inside a frozen subtree; a new head there would not train.");
        if (!IsClassifier(node.Layer))
            throw new ShapeException($"The head '{path}' is {Describe(node)}; a head to replace must be a Dense or a 1x1 Conv2d of one group.");
        var after = network.Leaves.SkipWhile(l => !ReferenceEquals(l, node)).Skip(1).Where(HasTensors).Select(l => $"'{l.Path}'").ToList();
        if (after.Count > 0)
            throw new ShapeException($"The head '{path}' is followed by layers with parameters or state ({string.Join(", ", after)}); the head to replace must be the last of them.");
        var replacement = WithClasses(node, classes);
        var heads = network.Heads;
        if (auxiliaryHeads == AuxiliaryHeadChoice.Keep && heads.Count > 0 && node.Output != new Shape(classes))
            throw new ShapeException($"Keeping the auxiliary heads ({string.Join(", ", heads.Select(h => $"'{h.Path}'"))}) needs the head '{path}' to keep their output " +
                $"{network.OutputShape}; a new head of {classes} classes needs them replaced (AuxiliaryHeadChoice.Replace) or dropped (AuxiliaryHeadChoice.Drop).");
        var auxiliary = auxiliaryHeads == AuxiliaryHeadChoice.Replace ? heads.Select(AuxiliaryClassifier).ToList() : [];
        bool drop = auxiliaryHeads == AuxiliaryHeadChoice.Drop;
        Layer? Replace(Node n)
        {
            if (ReferenceEquals(n, node)) return replacement;
            if (auxiliary.Contains(n)) return WithClasses(n, classes);
            if (drop && n.Layer is Serial s && n.Children.Any(c => c.Layer is AuxiliaryHead))
                return new Serial(n.Children.Where(c => c.Layer is not AuxiliaryHead).Select(c => Rebuild(c, Replace))) { Name = s.Name, WeightInit = s.WeightInit };
            // A head that is no child of a serial (a branch of a FanOut) passes its input on: an identity of its name keeps the siblings' names.
            return drop && n.Layer is AuxiliaryHead ? new Identity { Name = n.Path[(n.Path.LastIndexOf('/') + 1)..] } : null;
        }
        var root = Rebuild(network.RootNode, Replace);
        Network rebuilt;
        try { rebuilt = Network.Create(root, network.InputShape, network.Strict); }
        catch (ShapeException e) { throw new ShapeException($"Replacing the head '{path}' by one of {classes} classes: {e.Message}"); }
        var renewed = auxiliary.Select(a => a.Path).Concat(drop ? heads.Select(h => h.Path) : []).Append(path).ToList();
        bool IsNew(string p) => renewed.Any(r => p.StartsWith(r + "/", StringComparison.Ordinal));
        return new TransferModel(rebuilt, Keep(Initializer.Init(rebuilt, seed), parameters, IsNew, "parameter"),
            Keep(Initializer.InitState(rebuilt), state, p => drop && heads.Any(h => p.StartsWith(h.Path + "/", StringComparison.Ordinal)), "state tensor"), path);
    }

    /// <summary>The classifier of an auxiliary head: its last layer with parameters, which must be a Dense or a 1x1 Conv2d.</summary>
    private static Node AuxiliaryClassifier(Node head)
    {
        var last = head.Leaves().LastOrDefault(l => l.ParameterSpecs().Any())
            ?? throw new ShapeException($"The auxiliary head '{head.Path}' has no layer with parameters to replace; drop it (AuxiliaryHeadChoice.Drop).");
        return IsClassifier(last.Layer) ? last
            : throw new ShapeException($"The auxiliary head '{head.Path}' ends in '{last.Path}', {Describe(last)}, not a Dense or a 1x1 Conv2d of one group to give " +
                "the new classes; drop the auxiliary heads (AuxiliaryHeadChoice.Drop).");
    }

    /// <summary>A classifier layer (<see cref="IsClassifier"/>) with <paramref name="classes"/> outputs, its name, bias and initialisation kept.</summary>
    private static Layer WithClasses(Node node, int classes) => node.Layer switch
    {
        Dense d => d with { Units = classes },
        Conv2d c => c with { Filters = classes },
        _ => throw new ShapeException($"The head '{node.Path}' is {Describe(node)}."),
    };

    /// <summary>
    /// The surgery a fine-tuning run asks for: the head replaced (when <see cref="TransferOptions.NewHeadClasses"/> is
    /// set), then the paths frozen, the head kept trainable.
    /// </summary>
    /// <exception cref="ShapeException">As <see cref="ReplaceHead"/> and <see cref="Freeze"/>.</exception>
    public static TransferModel Prepare(Network network, Parameters parameters, Parameters state, TransferOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var model = options.NewHeadClasses is int classes
            ? ReplaceHead(network, parameters, state, classes, options.Seed, options.HeadPath, options.AuxiliaryHeads)
            : new TransferModel(network, parameters, state, null);
        var frozen = Freeze(model.Network, options.Freeze ?? [], model.HeadPath ?? options.HeadPath);
        return model with { Network = frozen };
    }

    private static bool IsClassifier(Layer layer) =>
        layer is Dense || layer is Conv2d { KernelH: 1, KernelW: 1, Groups: 1 };

    private static string Describe(Node node) => $"a {node.Layer.GetType().Name} with output {node.Output}";

    private static bool HasTensors(Node leaf) => leaf.ParameterSpecs().Any() || leaf.StateSpecs().Any();

    /// <summary>Whether the node at <paramref name="path"/> holds the node at <paramref name="inner"/> (or is it).</summary>
    private static bool Holds(string path, string inner) =>
        path.Length == 0 || path == inner || inner.StartsWith(path + "/", StringComparison.Ordinal);

    private static string Normalize(string path, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        var p = path.TrimEnd('/');
        if (p.Length == 0) throw new ShapeException($"A {what} path must name a layer; found '{path}'.");
        return p;
    }

    private static IEnumerable<Node> All(Node node) => node.Children.SelectMany(All).Prepend(node);

    /// <summary>The outermost node at <paramref name="path"/> (a <see cref="Freeze"/> before what it wraps), or null.</summary>
    private static Node? Lookup(Network network, string path) => All(network.RootNode).FirstOrDefault(n => n.Path == path);

    private static Node Find(Network network, string path)
    {
        if (Lookup(network, path) is { } found) return found;
        // Name what is there, under the deepest part of the path that exists.
        var at = network.RootNode;
        for (var p = path; p.Length > 0;)
        {
            int slash = p.LastIndexOf('/');
            p = slash < 0 ? "" : p[..slash];
            if (p.Length > 0 && Lookup(network, p) is { } parent) { at = parent; break; }
        }
        while (at.Layer is FreezeLayer) at = at.Children[0];
        var children = at.Children.Select(c => c.Path).Distinct().ToList();
        throw new ShapeException($"No layer at path '{path}'; the layers under '{at.Path}' are {(children.Count == 0 ? "none" : string.Join(", ", children.Take(30)))}" +
            $"{(children.Count > 30 ? $" and {children.Count - 30} more" : "")}.");
    }

    /// <summary>The nodes from the root to <paramref name="target"/> (both included), or null when it is not under <paramref name="from"/>.</summary>
    private static List<Node>? Chain(Node from, Node target)
    {
        if (ReferenceEquals(from, target)) return [from];
        foreach (var child in from.Children)
            if (Chain(child, target) is { } rest) return rest.Prepend(from).ToList();
        return null;
    }

    /// <summary>Adds the largest subtrees with parameters or state that hold none of <paramref name="keep"/>.</summary>
    private static void AllBut(Node node, IReadOnlyList<string> keep, HashSet<string> into)
    {
        if (keep.Contains(node.Path) && node.Layer is not FreezeLayer) return;
        if (!keep.Any(k => Holds(node.Path, k)))
        {
            if (node.Leaves().Any(HasTensors)) into.Add(node.Path);
            return;
        }
        foreach (var child in node.Children) AllBut(child, keep, into);
    }

    /// <summary>The layer tree of <paramref name="node"/> with the layers <paramref name="replace"/> gives in place of the nodes it is not null for; unchanged subtrees are the same records.</summary>
    private static Layer Rebuild(Node node, Func<Node, Layer?> replace)
    {
        if (replace(node) is { } replaced) return replaced;
        if (node.Children.Count == 0) return node.Layer;
        var kids = node.Children.Select(c => Rebuild(c, replace)).ToArray();
        if (kids.Select((k, i) => ReferenceEquals(k, node.Children[i].Layer)).All(same => same)) return node.Layer;
        return node.Layer switch
        {
            Serial s => new Serial(kids) { Name = s.Name, WeightInit = s.WeightInit },
            FanOut f => new FanOut(f.Join, kids) { Name = f.Name, WeightInit = f.WeightInit },
            // A residual without a shortcut shows an unnamed Identity node; it stays without one unless that node was replaced.
            Residual r => r with { Block = kids[0], Shortcut = r.Shortcut is null && kids[1] is Identity { Name: null, WeightInit: null } ? null : kids[1] },
            FreezeLayer f => f with { Inner = kids[0] },
            AuxiliaryHead a => a with { Head = kids[0] },
            _ => throw new ShapeException($"Layer '{node.Path}': no rule to rebuild a {node.Layer.GetType().Name}."),
        };
    }

    /// <summary>
    /// The tensors of <paramref name="fresh"/> (the new network's, in its order) with every one <paramref name="isNew"/>
    /// rejects taken from <paramref name="given"/>, which must hold it at the same shape and nothing the network lacks.
    /// </summary>
    private static Parameters Keep(Parameters fresh, Parameters given, Func<string, bool> isNew, string what)
    {
        // The old head's tensors (under the head's path, with other shapes) are replaced, not carried.
        var extra = given.Paths.FirstOrDefault(p => !isNew(p) && !fresh.Contains(p));
        if (extra is not null) throw new ShapeException($"The {what} '{extra}' given does not belong to the network.");
        return Parameters.Of(fresh.Entries.Select(kv =>
        {
            if (isNew(kv.Key)) return kv;
            if (!given.Contains(kv.Key)) throw new ShapeException($"The network's {what} '{kv.Key}' ({kv.Value.Shape}) is missing from the ones given.");
            if (given[kv.Key].Shape != kv.Value.Shape)
                throw new ShapeException($"The {what} '{kv.Key}' given has shape {given[kv.Key].Shape}; the network expects {kv.Value.Shape}.");
            return KeyValuePair.Create(kv.Key, given[kv.Key]);
        }));
    }
}
