namespace Cnn.Dsl;

/// <summary>
/// Layers applied one after the other. Children are named by their <see cref="Layer.Name"/>, or else by
/// their kind and 1-based position among children of that kind (<c>conv1</c>, <c>conv2</c>, <c>dense1</c>).
/// Value equality compares the children in order.
/// </summary>
public sealed record Serial : Layer
{
    /// <summary>Creates a serial composition of the given layers (at least one).</summary>
    public Serial(IEnumerable<Layer> layers)
    {
        Layers = layers.ToArray();
        if (Layers.Count == 0) throw new Core.ShapeException("Serial needs at least one layer; found none.");
    }

    /// <summary>Creates a serial composition of the given layers (at least one).</summary>
    public Serial(params Layer[] layers) : this((IEnumerable<Layer>)layers) { }

    /// <summary>The children, in order.</summary>
    public IReadOnlyList<Layer> Layers { get; }

    /// <inheritdoc />
    public override string Kind => "serial";

    /// <summary>The path segment of each child, in order, after defaulting and checking for duplicates.</summary>
    public IReadOnlyList<string> ChildNames()
    {
        var names = new string[Layers.Count];
        var perKind = new Dictionary<string, int>();
        var seen = new HashSet<string>();
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            perKind[l.Kind] = perKind.GetValueOrDefault(l.Kind) + 1;
            names[i] = l.Name ?? l.Kind + perKind[l.Kind];
            if (names[i].Length == 0 || names[i].Contains('/'))
                throw new Core.ShapeException($"Layer name '{names[i]}' (child {i}) must be non-empty and must not contain '/'.");
            if (!seen.Add(names[i]))
                throw new Core.ShapeException($"Two children of a Serial are both named '{names[i]}'; names must be unique so that parameter paths are.");
        }
        return names;
    }

    /// <inheritdoc />
    public bool Equals(Serial? other) => other is not null && Name == other.Name && Layers.SequenceEqual(other.Layers);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Name);
        foreach (var l in Layers) h.Add(l);
        return h.ToHashCode();
    }
}
