using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// Reorders the axes of each sample, the batch axis staying first: output axis <c>i</c> is input axis <c>Axes[i]</c>, counted
/// within the sample (<c>new Permute(1, 0)</c> turns <c>[C, L]</c> into <c>[L, C]</c>), as PyTorch's
/// <c>x.permute(0, 1 + Axes[0], ...)</c> and ONNX's <c>Transpose</c> with a permutation that keeps axis 0 first.
/// </summary>
public sealed record Permute : LeafLayer
{
    /// <summary>A permutation of the sample's axes.</summary>
    /// <param name="axes">For each output axis, the input axis it takes (0 is the sample's first axis, not the batch).</param>
    public Permute(params int[] axes) => Axes = (int[])(axes ?? throw new ArgumentNullException(nameof(axes))).Clone();

    /// <summary>For each output axis, the sample axis it takes.</summary>
    public IReadOnlyList<int> Axes { get; }

    /// <inheritdoc />
    public override string Kind => "permute";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Axes.Count != input.Rank || Axes.Order().Where((a, i) => a != i).Any())
            throw new ShapeException($"Layer '{path}': Permute needs a permutation of the sample's {input.Rank} axes 0..{input.Rank - 1}; found [{string.Join(", ", Axes)}] for {input}.");
        return new Shape(Axes.Select(a => input[a]).ToArray());
    }

    /// <inheritdoc />
    public bool Equals(Permute? other) => other is not null && base.Equals(other) && Axes.SequenceEqual(other.Axes);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(base.GetHashCode(), Axes.Count > 0 ? Axes[0] : -1, Axes.Count);

    /// <inheritdoc />
    public override string ToString() => $"Permute {{ Name = {Name}, Axes = [{string.Join(", ", Axes)}] }}";
}
