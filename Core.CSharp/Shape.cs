using System.Collections;

namespace Cnn.Core;

/// <summary>
/// An immutable tensor shape (row-major; batch first where there is a batch). Value equality.
/// </summary>
public sealed class Shape : IReadOnlyList<int>, IEquatable<Shape>
{
    private readonly int[] _dims;

    /// <summary>Creates a shape from its dimensions; each must be at least 0.</summary>
    public Shape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        foreach (var d in dims)
            if (d < 0) throw new ShapeException($"A shape's dimensions must be >= 0; found [{string.Join(", ", dims)}].");
        _dims = (int[])dims.Clone();
        // Each factor is below 2^31 and the product is checked against 2^31 at every step, so it never overflows a long.
        long n = 1;
        foreach (var d in _dims) n = n == 0 || d == 0 ? 0 : Math.Min(n * d, (long)int.MaxValue + 1);
        if (n > int.MaxValue) throw new ShapeException($"A tensor of shape {Format(_dims)} has more than {int.MaxValue} elements, the most supported.");
        Size = (int)n;
    }

    /// <summary>Creates a shape from a sequence of dimensions.</summary>
    public Shape(IEnumerable<int> dims) : this(dims.ToArray()) { }

    /// <summary>The number of dimensions.</summary>
    public int Rank => _dims.Length;

    /// <summary>The number of elements (product of the dimensions).</summary>
    public int Size { get; }

    /// <inheritdoc />
    public int Count => _dims.Length;

    /// <summary>The dimension at an axis; negative axes count from the end.</summary>
    public int this[int axis] => _dims[axis < 0 ? _dims.Length + axis : axis];

    /// <summary>The dimensions as a fresh array.</summary>
    public int[] ToArray() => (int[])_dims.Clone();

    /// <summary>This shape with its first dimension (the batch) replaced.</summary>
    public Shape WithBatch(int batch)
    {
        var d = ToArray();
        d[0] = batch;
        return new Shape(d);
    }

    /// <summary>The shape without its first dimension.</summary>
    public Shape DropBatch() => new(_dims[1..]);

    /// <summary>The shape with a batch dimension put in front.</summary>
    public Shape PrependBatch(int batch) => new(new[] { batch }.Concat(_dims).ToArray());

    /// <inheritdoc />
    public IEnumerator<int> GetEnumerator() => ((IEnumerable<int>)_dims).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc />
    public bool Equals(Shape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as Shape);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in _dims) h.Add(d);
        return h.ToHashCode();
    }

    /// <summary>Formats as <c>[2, 3, 28, 28]</c>.</summary>
    public override string ToString() => Format(_dims);

    private static string Format(int[] dims) => "[" + string.Join(", ", dims) + "]";

    /// <summary>Value equality.</summary>
    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(Shape? a, Shape? b) => !(a == b);
}
