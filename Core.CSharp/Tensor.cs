namespace Cnn.Core;

/// <summary>
/// An immutable, dense, row-major float32 tensor. Nothing can change its elements after it is made:
/// factories copy what they are given, and readers get a <see cref="ReadOnlySpan{T}"/> or a copy.
/// </summary>
public sealed class Tensor
{
    private readonly float[] _data;

    private Tensor(Shape shape, float[] data)
    {
        Shape = shape;
        _data = data;
    }

    /// <summary>The shape.</summary>
    public Shape Shape { get; }

    /// <summary>The number of elements.</summary>
    public int Size => _data.Length;

    /// <summary>The elements, read-only, in row-major order.</summary>
    public ReadOnlySpan<float> Span => _data;

    /// <summary>The elements as read-only memory, in row-major order.</summary>
    public ReadOnlyMemory<float> Memory => _data;

    /// <summary>The array behind the tensor, for the arena's ownership test; never written.</summary>
    internal float[] Storage => _data;

    /// <summary>The element at a flat (row-major) index.</summary>
    public float this[int index] => _data[index];

    /// <summary>A tensor holding a copy of <paramref name="data"/>.</summary>
    /// <exception cref="ShapeException">The data's length is not the shape's size.</exception>
    public static Tensor FromArray(float[] data, Shape shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        if (data.Length != shape.Size)
            throw new ShapeException($"A tensor of shape {shape} needs {shape.Size} elements; found {data.Length}.");
        return new Tensor(shape, (float[])data.Clone());
    }

    /// <summary>A tensor holding a copy of <paramref name="data"/> with the given dimensions.</summary>
    public static Tensor FromArray(float[] data, params int[] dims) => FromArray(data, new Shape(dims));

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(Shape shape) => new(shape, new float[shape.Size]);

    /// <summary>A tensor of zeros with the given dimensions.</summary>
    public static Tensor Zeros(params int[] dims) => Zeros(new Shape(dims));

    /// <summary>A tensor whose every element is <paramref name="value"/>.</summary>
    public static Tensor Full(Shape shape, float value)
    {
        var d = new float[shape.Size];
        Array.Fill(d, value);
        return new Tensor(shape, d);
    }

    /// <summary>
    /// Takes ownership of a freshly written array without copying. Kernels use it for the arrays they
    /// create; the caller must not keep or write the array afterwards.
    /// </summary>
    public static Tensor Own(float[] data, Shape shape)
    {
        if (data.Length != shape.Size)
            throw new ShapeException($"A tensor of shape {shape} needs {shape.Size} elements; found {data.Length}.");
        return new Tensor(shape, data);
    }

    /// <summary>A copy of the elements.</summary>
    public float[] ToArray() => (float[])_data.Clone();

    /// <summary>The same elements under another shape of the same size (no copy; both are immutable).</summary>
    public Tensor Reshape(Shape shape)
    {
        if (shape.Size != Size)
            throw new ShapeException($"Cannot reshape {Shape} ({Size} elements) to {shape} ({shape.Size} elements).");
        return new Tensor(shape, _data);
    }

    /// <summary>The same elements under other dimensions of the same size.</summary>
    public Tensor Reshape(params int[] dims) => Reshape(new Shape(dims));

    /// <summary>Rows <paramref name="start"/> to <paramref name="start"/>+<paramref name="count"/> of the first axis, copied.</summary>
    public Tensor Slice(int start, int count)
    {
        if (Shape.Rank == 0 || start < 0 || count < 0 || start + count > Shape[0])
            throw new ShapeException($"Slice [{start}, {start + count}) is outside the first axis of a tensor of shape {Shape}.");
        int inner = Shape[0] == 0 ? 0 : Size / Shape[0];
        var d = new float[count * inner];
        Array.Copy(_data, start * inner, d, 0, d.Length);
        return new Tensor(Shape.WithBatch(count), d);
    }

    /// <summary>The rows of the first axis at <paramref name="indices"/>, in that order, copied.</summary>
    public Tensor Gather(ReadOnlySpan<int> indices)
    {
        int inner = Shape[0] == 0 ? 0 : Size / Shape[0];
        var d = new float[indices.Length * inner];
        for (int i = 0; i < indices.Length; i++)
        {
            int r = indices[i];
            if ((uint)r >= (uint)Shape[0])
                throw new ShapeException($"Row index {r} is outside the first axis (length {Shape[0]}) of a tensor of shape {Shape}.");
            Array.Copy(_data, r * inner, d, i * inner, inner);
        }
        return new Tensor(Shape.WithBatch(indices.Length), d);
    }

    /// <inheritdoc />
    public override string ToString() => $"Tensor{Shape}";
}
