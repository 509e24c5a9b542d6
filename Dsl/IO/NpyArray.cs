using Cnn.Core;

namespace Cnn.Dsl.IO;

/// <summary>The element types a <c>.npy</c> file may hold here (NumPy's <c>descr</c> without the byte order).</summary>
public enum NpyType
{
    /// <summary><c>f4</c>: 32-bit float.</summary>
    Float32,

    /// <summary><c>f8</c>: 64-bit float (read, and narrowed to float32 by <see cref="NpyArray.ToTensor"/>).</summary>
    Float64,

    /// <summary><c>b1</c>: bool, one byte, 0 or 1.</summary>
    Bool,

    /// <summary><c>i1</c>: signed 8-bit integer.</summary>
    Int8,

    /// <summary><c>u1</c>: unsigned 8-bit integer.</summary>
    UInt8,

    /// <summary><c>i2</c>: signed 16-bit integer.</summary>
    Int16,

    /// <summary><c>u2</c>: unsigned 16-bit integer.</summary>
    UInt16,

    /// <summary><c>i4</c>: signed 32-bit integer.</summary>
    Int32,

    /// <summary><c>u4</c>: unsigned 32-bit integer.</summary>
    UInt32,

    /// <summary><c>i8</c>: signed 64-bit integer.</summary>
    Int64,

    /// <summary><c>u8</c>: unsigned 64-bit integer (values above <see cref="long.MaxValue"/> are rejected on read).</summary>
    UInt64,
}

/// <summary>
/// The content of a <c>.npy</c> file: its element type, its shape (rank 0 is a scalar) and its elements in row-major
/// order. Floating-point elements are kept as <see cref="float"/> (float64 files are narrowed on read), integer and
/// bool elements as <see cref="long"/>. Immutable: factories copy what they are given.
/// </summary>
public sealed class NpyArray
{
    private readonly float[]? _floats;
    private readonly long[]? _integers;

    private NpyArray(NpyType type, Shape shape, float[]? floats, long[]? integers)
    {
        Type = type;
        Shape = shape;
        _floats = floats;
        _integers = integers;
    }

    /// <summary>The element type as stored in the file.</summary>
    public NpyType Type { get; }

    /// <summary>The shape; rank 0 for a scalar (one element).</summary>
    public Shape Shape { get; }

    /// <summary>Whether the elements are integers (or bools) rather than floats.</summary>
    public bool IsInteger => _integers is not null;

    /// <summary>The number of elements.</summary>
    public int Size => Shape.Size;

    /// <summary>A float32 array holding a copy of the tensor's elements.</summary>
    public static NpyArray FromTensor(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return new NpyArray(NpyType.Float32, tensor.Shape, tensor.ToArray(), null);
    }

    /// <summary>An integer array of <paramref name="type"/> holding a copy of <paramref name="values"/>.</summary>
    /// <exception cref="CnnException">The type is a float type, the length differs from the shape's size, or a value does not fit the type.</exception>
    public static NpyArray FromIntegers(NpyType type, ReadOnlySpan<long> values, Shape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (type is NpyType.Float32 or NpyType.Float64)
            throw new CnnException($"NpyArray.FromIntegers needs an integer type; found {type}.");
        if (values.Length != shape.Size)
            throw new ShapeException($"An array of shape {shape} needs {shape.Size} elements; found {values.Length}.");
        var (min, max) = Range(type);
        for (int i = 0; i < values.Length; i++)
            if (values[i] < min || values[i] > max)
                throw new CnnException($"Element {i} is {values[i]}, outside the range [{min}, {max}] of {type}.");
        return new NpyArray(type, shape, null, values.ToArray());
    }

    /// <summary>An int32 array holding a copy of <paramref name="values"/> (labels, for instance).</summary>
    public static NpyArray FromInt32(ReadOnlySpan<int> values, Shape shape)
    {
        var wide = new long[values.Length];
        for (int i = 0; i < wide.Length; i++) wide[i] = values[i];
        return FromIntegers(NpyType.Int32, wide, shape);
    }

    /// <summary>Built by the reader, which owns the freshly read array.</summary>
    internal static NpyArray OwnFloats(NpyType type, Shape shape, float[] data) => new(type, shape, data, null);

    /// <summary>Built by the reader, which owns the freshly read array.</summary>
    internal static NpyArray OwnIntegers(NpyType type, Shape shape, long[] data) => new(type, shape, null, data);

    /// <summary>The elements as a float32 tensor of the same shape; integers are converted (exactly up to 2^24).</summary>
    public Tensor ToTensor()
    {
        if (_floats is not null) return Tensor.FromArray(_floats, Shape);
        var d = new float[_integers!.Length];
        for (int i = 0; i < d.Length; i++) d[i] = _integers[i];
        return Tensor.Own(d, Shape);
    }

    /// <summary>A copy of the integer elements, row-major.</summary>
    /// <exception cref="CnnException">The array holds floats; <paramref name="what"/> names it in the message.</exception>
    public long[] ToInt64(string what = "the array")
    {
        if (_integers is null)
            throw new CnnException($"{what} must be an integer array (int8 to int64, uint8 to uint64, bool); found {Type} (descr '{Npy.Descr(Type)}').");
        return (long[])_integers.Clone();
    }

    /// <summary>The integer elements as <see cref="int"/>, row-major.</summary>
    /// <exception cref="CnnException">The array holds floats, or an element does not fit in 32 bits.</exception>
    public int[] ToInt32(string what = "the array")
    {
        var wide = ToInt64(what);
        var r = new int[wide.Length];
        for (int i = 0; i < r.Length; i++)
        {
            if (wide[i] < int.MinValue || wide[i] > int.MaxValue)
                throw new CnnException($"{what}: element {i} is {wide[i]}, which does not fit in 32 bits.");
            r[i] = (int)wide[i];
        }
        return r;
    }

    /// <summary>The element at a flat index, as a double.</summary>
    public double this[int index] => _floats is not null ? _floats[index] : _integers![index];

    /// <inheritdoc />
    public override string ToString() => $"NpyArray({Npy.Descr(Type)}, {Shape})";

    internal static (long Min, long Max) Range(NpyType type) => type switch
    {
        NpyType.Bool => (0, 1),
        NpyType.Int8 => (sbyte.MinValue, sbyte.MaxValue),
        NpyType.UInt8 => (0, byte.MaxValue),
        NpyType.Int16 => (short.MinValue, short.MaxValue),
        NpyType.UInt16 => (0, ushort.MaxValue),
        NpyType.Int32 => (int.MinValue, int.MaxValue),
        NpyType.UInt32 => (0, uint.MaxValue),
        NpyType.Int64 => (long.MinValue, long.MaxValue),
        NpyType.UInt64 => (0, long.MaxValue),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not an integer type"),
    };
}
