using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// A layer tree checked against an input shape: every node with its path and its inferred input and output
/// shapes (per sample, without the batch axis). Made by <see cref="Network.Create"/>; immutable.
/// Two networks are equal when their descriptions, input shapes and strictness are (layer records compare by value,
/// children in order), so two networks built by the same code are equal and hash alike.
/// </summary>
public sealed class Network : IEquatable<Network>
{
    private Network(Layer root, Shape input, Node rootNode, bool strict)
    {
        Root = root;
        InputShape = input;
        RootNode = rootNode;
        Strict = strict;
    }

    /// <inheritdoc />
    public bool Equals(Network? other) =>
        other is not null && (ReferenceEquals(this, other) || (Strict == other.Strict && InputShape.Equals(other.InputShape) && Root.Equals(other.Root)));

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as Network);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Root, InputShape, Strict);

    /// <summary>Value equality (see <see cref="Equals(Network)"/>).</summary>
    public static bool operator ==(Network? a, Network? b) => a is null ? b is null : a.Equals(b);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(Network? a, Network? b) => !(a == b);

    /// <summary>The description this network was built from.</summary>
    public Layer Root { get; }

    /// <summary>The shape of one input sample (no batch axis), e.g. <c>[1, 28, 28]</c>.</summary>
    public Shape InputShape { get; }

    /// <summary>The shape of one output sample.</summary>
    public Shape OutputShape => RootNode.Output;

    /// <summary>Whether windows that do not tile their input were rejected.</summary>
    public bool Strict { get; }

    /// <summary>The resolved tree.</summary>
    public Node RootNode { get; }

    /// <summary>The nodes of the <see cref="AuxiliaryHead"/> layers, in execution order (the order of <see cref="ForwardResult.Heads"/>).</summary>
    public IReadOnlyList<Node> Heads => HeadRules.Under(RootNode).ToArray();

    /// <summary>Every leaf node in execution order.</summary>
    public IReadOnlyList<Node> Leaves => RootNode.Leaves().ToArray();

    /// <summary>
    /// Infers every shape of <paramref name="root"/> from the input shape alone, before any tensor exists.
    /// </summary>
    /// <param name="root">The network description.</param>
    /// <param name="inputShape">One sample's shape, without the batch axis (e.g. <c>[1, 28, 28]</c>).</param>
    /// <param name="strict">When true, a window that does not tile its input is an error instead of being floored.</param>
    /// <exception cref="ShapeException">A layer does not fit; the message names its path, the shapes and the formula.</exception>
    public static Network Create(Layer root, Shape inputShape, bool strict = false)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(inputShape);
        // An unnamed leaf at the root is named as a Serial would name it, so errors and parameter paths read well.
        var node = Resolve(root, root.Name ?? (root is LeafLayer ? root.Kind + "1" : ""), inputShape, strict);
        HeadRules.Check(node);
        return new Network(root, inputShape, node, strict);
    }

    private static Node Resolve(Layer layer, string path, Shape input, bool strict, bool frozen = false)
    {
        switch (layer)
        {
            case LeafLayer leaf:
                Shape output;
                try { output = leaf.OutputShape(input, path, strict); }
                catch (OverflowException) { throw new ShapeException($"Layer '{path}': its output size overflows for input {input}."); }
                catch (ShapeException e) when (!e.Message.StartsWith("Layer '", StringComparison.Ordinal))
                {
                    throw new ShapeException($"Layer '{path}' with input {input}: {e.Message}");
                }
                return new Node(leaf, path, input, output, Array.Empty<Node>(), frozen);
            case Serial serial:
            {
                var names = serial.ChildNames();
                var children = new Node[serial.Layers.Count];
                var shape = input;
                for (int i = 0; i < children.Length; i++)
                {
                    children[i] = Resolve(serial.Layers[i], Join(path, names[i]), shape, strict, frozen);
                    shape = children[i].Output;
                }
                return new Node(serial, path, input, shape, children, frozen);
            }
            case FanOut par:
            {
                var names = par.ChildNames();
                var children = par.Branches.Select((b, i) => Resolve(b, Join(path, names[i]), input, strict, frozen)).ToArray();
                return new Node(par, path, input, JoinShape(par.Join, children, path), children, frozen);
            }
            case Residual res:
            {
                var children = res.Parts.Select(p => Resolve(p.Layer, Join(path, p.Name), input, strict, frozen)).ToArray();
                return new Node(res, path, input, JoinShape(Dsl.Join.Sum, children, path), children, frozen);
            }
            case Freeze f:
            {
                var inner = Resolve(f.Inner, path, input, strict, frozen: true);
                return new Node(f, path, input, inner.Output, new[] { inner }, true);
            }
            case AuxiliaryHead aux:
            {
                if (!float.IsFinite(aux.Weight) || aux.Weight < 0)
                    throw new ShapeException($"Layer '{path}': an auxiliary head's loss weight must be finite and not negative; found {aux.Weight}.");
                var head = Resolve(aux.Head, Join(path, AuxiliaryHead.HeadSegment), input, strict, frozen);
                return new Node(aux, path, input, input, new[] { head }, frozen);
            }
            default:
                throw new ShapeException($"Layer '{path}': no shape rule for layer type {layer.GetType().Name}.");
        }
    }

    private static Shape JoinShape(Join join, Node[] branches, string path)
    {
        string Shapes() => string.Join(", ", branches.Select(b => $"'{b.Path}' {b.Output}"));
        var first = branches[0].Output;
        if (join == Dsl.Join.Product)
        {
            if (branches.Length != 2)
                throw new ShapeException($"Layer '{path}': a product joins exactly two branches (as ONNX's Mul); found {branches.Length}: {Shapes()}.");
            try { return Core.Kernels.BroadcastKernel.Shape(first, branches[1].Output); }
            catch (ShapeException) { throw new ShapeException($"Layer '{path}': branches joined by product must broadcast (same rank; each axis equal, or 1 in one); found {Shapes()}."); }
        }
        if (join == Dsl.Join.Sum)
        {
            if (branches.Any(b => b.Output != first))
                throw new ShapeException($"Layer '{path}': branches joined by sum must give equal shapes; found {Shapes()}.");
            return first;
        }
        if (branches.Any(b => b.Output.Rank == 0 || b.Output.Rank != first.Rank || !b.Output.Skip(1).SequenceEqual(first.Skip(1))))
            throw new ShapeException($"Layer '{path}': branches joined by concatenation must agree on every axis but channels; found {Shapes()}.");
        var dims = first.ToArray();
        long channels = branches.Sum(b => (long)b.Output[0]);
        if (channels > int.MaxValue) throw new ShapeException($"Layer '{path}': the concatenation has {channels} channels, more than {int.MaxValue}.");
        dims[0] = (int)channels;
        return new Shape(dims);
    }

    /// <summary>Joins two path segments with '/'.</summary>
    public static string Join(string parent, string child) => parent.Length == 0 ? child : parent + "/" + child;
}

/// <summary>One node of a resolved network: the layer, its path and its per-sample input and output shapes.</summary>
/// <param name="Layer">The layer record.</param>
/// <param name="Path">The path from the root (<c>block2/conv1</c>); empty for an unnamed root.</param>
/// <param name="Input">Per-sample input shape.</param>
/// <param name="Output">Per-sample output shape.</param>
/// <param name="Children">Resolved children of a combinator; empty for a leaf.</param>
/// <param name="Frozen">True under a <see cref="Freeze"/>: no gradient, no update, inference-mode normalisation.</param>
public sealed record Node(Layer Layer, string Path, Shape Input, Shape Output, IReadOnlyList<Node> Children, bool Frozen)
{
    /// <summary>The leaves under this node, in execution order.</summary>
    public IEnumerable<Node> Leaves() =>
        Children.Count == 0 ? new[] { this } : Children.SelectMany(c => c.Leaves());

    /// <summary>The parameter specs of this leaf, with full paths.</summary>
    public IEnumerable<(string Path, ParameterSpec Spec)> ParameterSpecs() =>
        Layer is LeafLayer leaf ? leaf.ParameterSpecs(Input).Select(s => (Network.Join(Path, s.Name), s)) : Enumerable.Empty<(string, ParameterSpec)>();

    /// <summary>The state specs of this leaf, with full paths.</summary>
    public IEnumerable<(string Path, StateSpec Spec)> StateSpecs() =>
        Layer is LeafLayer leaf ? leaf.StateSpecs(Input).Select(s => (Network.Join(Path, s.Name), s)) : Enumerable.Empty<(string, StateSpec)>();
}
