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
    public IReadOnlyList<string> ChildNames() => ChildNaming.Names(Layers, "Serial");

    /// <inheritdoc />
    public bool Equals(Serial? other) => other is not null && Name == other.Name && WeightInit == other.WeightInit && Layers.SequenceEqual(other.Layers);

    /// <inheritdoc />
    public override int GetHashCode() => ChildNaming.Hash(Name, Layers);
}

/// <summary>How the outputs of parallel branches are joined.</summary>
public enum Join
{
    /// <summary>Element-wise sum; every branch must give the same shape (residual joins, stax's FanInSum).</summary>
    Sum,
    /// <summary>Concatenation along the channel axis; shapes must agree elsewhere (inception joins, stax's FanInConcat).</summary>
    Concat,
    /// <summary>
    /// Element-wise product of exactly two branches, which broadcast against each other: on each axis the sizes agree or one
    /// is 1, as ONNX's Mul (squeeze-and-excitation multiplies <c>[C, H, W]</c> by a <c>[C, 1, 1]</c> gate).
    /// </summary>
    Product,
}

/// <summary>
/// Branches fed by the same input (stax's FanOut followed by FanInSum or FanInConcat, or a product), joined by <see cref="Join"/>. Children are named as in
/// <see cref="Serial"/>: by their names, or by kind and position.
/// </summary>
public sealed record FanOut : Layer
{
    /// <summary>Creates parallel branches (at least one) joined by <paramref name="join"/>.</summary>
    public FanOut(Join join, IEnumerable<Layer> branches)
    {
        Join = join;
        Branches = branches.ToArray();
        if (Branches.Count == 0) throw new Core.ShapeException("FanOut needs at least one branch; found none.");
    }

    /// <summary>Creates parallel branches (at least one) joined by <paramref name="join"/>.</summary>
    public FanOut(Join join, params Layer[] branches) : this(join, (IEnumerable<Layer>)branches) { }

    /// <summary>The join.</summary>
    public Join Join { get; }

    /// <summary>The branches, in order (the order of concatenation).</summary>
    public IReadOnlyList<Layer> Branches { get; }

    /// <inheritdoc />
    public override string Kind => Join switch { Join.Sum => "sum", Join.Concat => "concat", _ => "product" };

    /// <summary>The path segment of each branch.</summary>
    public IReadOnlyList<string> ChildNames() => ChildNaming.Names(Branches, "FanOut");

    /// <summary>Branches whose outputs are summed (stax's FanOut then FanInSum).</summary>
    public static FanOut Sum(params Layer[] branches) => new(Join.Sum, branches);

    /// <summary>Branches whose outputs are concatenated along channels (stax's FanOut then FanInConcat).</summary>
    public static FanOut Concat(params Layer[] branches) => new(Join.Concat, branches);

    /// <summary>Two branches whose outputs are multiplied element-wise, broadcasting (a squeeze-and-excitation gate).</summary>
    public static FanOut Product(Layer first, Layer second) => new(Join.Product, first, second);

    /// <inheritdoc />
    public bool Equals(FanOut? other) =>
        other is not null && Name == other.Name && WeightInit == other.WeightInit && Join == other.Join && Branches.SequenceEqual(other.Branches);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Join, ChildNaming.Hash(Name, Branches));
}

/// <summary>
/// A residual block: <c>block(x) + shortcut(x)</c>, the shortcut being the identity or a projection (a 1x1
/// convolution, usually with batch normalisation, when the block changes the shape). Paths read
/// <c>block/...</c> and <c>shortcut/...</c>.
/// </summary>
/// <param name="Block">The residual branch.</param>
/// <param name="Shortcut">The shortcut; null for the identity.</param>
public sealed record Residual(Layer Block, Layer? Shortcut = null) : Layer
{
    /// <inheritdoc />
    public override string Kind => "res";

    /// <summary>The two branches with their fixed names.</summary>
    internal IReadOnlyList<(string Name, Layer Layer)> Parts =>
        new[] { ("block", Block), ("shortcut", Shortcut ?? new Identity()) };
}

/// <summary>
/// Marks a sub-network as frozen: its parameters receive no gradient and no update, and its batch
/// normalisation runs in inference mode with fixed running statistics (Keras's <c>trainable = False</c>),
/// as transfer learning wants. Transparent for paths: <c>Freeze(conv.Named("conv1"))</c> keeps <c>conv1/weight</c>.
/// </summary>
/// <param name="Inner">The frozen layer.</param>
public sealed record Freeze(Layer Inner) : Layer
{
    /// <inheritdoc />
    public override string Kind => Inner.Kind;
}

/// <summary>Default names of children and the checks on them, shared by the combinators.</summary>
internal static class ChildNaming
{
    public static IReadOnlyList<string> Names(IReadOnlyList<Layer> layers, string parent)
    {
        var names = new string[layers.Count];
        var perKind = new Dictionary<string, int>();
        var seen = new HashSet<string>();
        for (int i = 0; i < layers.Count; i++)
        {
            var l = layers[i];
            perKind[l.Kind] = perKind.GetValueOrDefault(l.Kind) + 1;
            names[i] = l.Name ?? (l is Freeze f ? f.Inner.Name : null) ?? l.Kind + perKind[l.Kind];
            if (names[i].Length == 0 || names[i].Contains('/'))
                throw new Core.ShapeException($"Layer name '{names[i]}' (child {i} of a {parent}) must be non-empty and must not contain '/'.");
            if (!seen.Add(names[i]))
                throw new Core.ShapeException($"Two children of a {parent} are both named '{names[i]}'; names must be unique so that parameter paths are.");
        }
        return names;
    }

    public static int Hash(string? name, IReadOnlyList<Layer> layers)
    {
        var h = new HashCode();
        h.Add(name);
        foreach (var l in layers) h.Add(l);
        return h.ToHashCode();
    }
}
