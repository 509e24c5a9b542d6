using System.Buffers.Binary;
using Cnn.Core;
using Cnn.Onnx.Proto;
using DataType = Cnn.Onnx.Proto.TensorProto.Types.DataType;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Onnx;

/// <summary>
/// A constant tensor of an ONNX model (an initializer or a Constant node's value), read defensively: every size is
/// checked against the data actually present before anything is allocated from it.
/// </summary>
/// <param name="Name">The value's name.</param>
/// <param name="Dims">The dimensions.</param>
/// <param name="Floats">The elements of a float tensor; null for an integer one.</param>
/// <param name="Integers">The elements of an integer or boolean tensor; null for a float one.</param>
internal sealed record OnnxConstant(string Name, long[] Dims, float[]? Floats, long[]? Integers)
{
    /// <summary>The number of elements.</summary>
    public int Count => Floats?.Length ?? Integers!.Length;

    /// <summary>The tensor as a float tensor of its own shape.</summary>
    /// <exception cref="OnnxUnsupportedException">It holds integers, or has more dimensions than fit a shape.</exception>
    public Tensor ToTensor(string where)
    {
        if (Floats is null) throw new OnnxUnsupportedException($"{where}: tensor '{Name}' holds integers; a float tensor was expected.");
        return Tensor.FromArray(Floats, new Shape(Dims.Select(d => (int)d).ToArray()));
    }

    /// <summary>Reads <paramref name="t"/>.</summary>
    /// <exception cref="FormatException">Negative dimensions, data that disagrees with the dimensions, or data kept in an external file.</exception>
    /// <exception cref="OnnxUnsupportedException">A data type other than float, int64, int32, int16, int8, uint8, uint16 and bool.</exception>
    public static OnnxConstant Read(TensorProto t, string source)
    {
        string where = $"ONNX model from {source}: tensor '{t.Name}'";
        if (t.DataLocation == TensorProto.Types.DataLocation.External || t.ExternalData.Count > 0)
        {
            var location = t.ExternalData.FirstOrDefault(e => e.Key == "location")?.Value ?? "(no location)";
            throw new FormatException(
                $"{where} keeps its data in an external file ('{location}'). The importer reads only self-contained models and never opens " +
                "other files (external paths are a known attack surface); save the model with every tensor inside it.");
        }
        if (t.Segment is not null) throw new FormatException($"{where} is a segment of a larger tensor, which the importer does not read.");
        long count = 1;
        foreach (var d in t.Dims)
        {
            if (d < 0) throw new FormatException($"{where} has a negative dimension in [{string.Join(", ", t.Dims)}].");
            if (d > int.MaxValue) throw new FormatException($"{where}: dimension {d} in [{string.Join(", ", t.Dims)}] exceeds {int.MaxValue}.");
            if (d > 0 && count > int.MaxValue / d)
                throw new FormatException($"{where}: dimensions [{string.Join(", ", t.Dims)}] hold more than {int.MaxValue} elements.");
            count *= d;
        }
        int n = (int)count;
        var dims = t.Dims.ToArray();
        var type = (DataType)t.DataType;
        int rawSize = type switch
        {
            DataType.Float or DataType.Int32 => 4,
            DataType.Int64 => 8,
            DataType.Int16 or DataType.Uint16 => 2,
            DataType.Int8 or DataType.Uint8 or DataType.Bool => 1,
            _ => throw new OnnxUnsupportedException(
                $"{where} has data type {type}; the importer reads float, int64, int32, int16, int8, uint8, uint16 and bool tensors."),
        };
        int typedCount = type switch
        {
            DataType.Float => t.FloatData.Count,
            DataType.Int64 => t.Int64Data.Count,
            _ => t.Int32Data.Count,
        };
        bool raw = t.RawData.Length > 0;
        if (raw && typedCount > 0) throw new FormatException($"{where} has both raw_data and typed data.");
        if (raw ? t.RawData.Length != (long)n * rawSize : typedCount != n)
            throw new FormatException(
                $"{where}: dimensions [{string.Join(", ", t.Dims)}] hold {n} elements of {rawSize} bytes, but the data has " +
                (raw ? $"{t.RawData.Length} bytes." : $"{typedCount} elements."));
        var bytes = t.RawData.Span;
        if (type == DataType.Float)
        {
            var f = new float[n];
            if (!raw) t.FloatData.CopyTo(f, 0);
            else for (int i = 0; i < n; i++) f[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(4 * i));
            return new OnnxConstant(t.Name, dims, f, null);
        }
        var v = new long[n];
        for (int i = 0; i < n; i++)
        {
            v[i] = !raw
                ? (type == DataType.Int64 ? t.Int64Data[i] : t.Int32Data[i])
                : type switch
                {
                    DataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(bytes.Slice(8 * i)),
                    DataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(bytes.Slice(4 * i)),
                    DataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(bytes.Slice(2 * i)),
                    DataType.Uint16 => BinaryPrimitives.ReadUInt16LittleEndian(bytes.Slice(2 * i)),
                    DataType.Int8 => (sbyte)bytes[i],
                    _ => bytes[i],
                };
        }
        return new OnnxConstant(t.Name, dims, null, v);
    }
}
