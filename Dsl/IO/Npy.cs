using System.Buffers.Binary;
using System.Text;
using Cnn.Core;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.IO;

/// <summary>
/// Reads and writes NumPy's <c>.npy</c> format, the exchange format of the command line: the magic
/// <c>\x93NUMPY</c>, a version (1.0: 16-bit header length; 2.0: 32-bit; 3.0: as 2.0 with a UTF-8 header), a
/// Python dict literal with exactly the keys <c>descr</c>, <c>fortran_order</c> and <c>shape</c>, then the
/// elements. The reader takes both byte orders and column-major (<c>fortran_order</c> True) data, which it
/// transposes to row-major. It rejects object arrays (pickles: CVE-2019-6446), headers over 10,000 bytes (NumPy's
/// own limit), and any file whose shape does not account for its exact length; it checks every size against the
/// file's length before allocating anything from it. The writer emits version 1.0, little-endian and row-major,
/// padded to a multiple of 64 bytes as NumPy does.
/// </summary>
public static partial class Npy
{
    /// <summary>The longest header accepted, as NumPy's <c>max_header_size</c>.</summary>
    public const int MaxHeaderLength = 10_000;

    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads a <c>.npy</c> file.</summary>
    /// <exception cref="FormatException">The file is malformed, truncated or lies about its size; the message names the file and the defect.</exception>
    /// <exception cref="CnnException">The file cannot be opened.</exception>
    public static NpyArray Read(string path)
    {
        using var fs = InputFile.OpenRead(path, ".npy file");
        try { return Read(fs, fs.Length, path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CnnException($"Cannot read .npy file '{path}': {e.Message}", e);
        }
    }

    /// <summary>Reads a <c>.npy</c> file as a float32 tensor (integer arrays are converted).</summary>
    public static Tensor ReadTensor(string path) => Read(path).ToTensor();

    /// <summary>Parses the bytes of a <c>.npy</c> file; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="FormatException">The bytes are malformed.</exception>
    public static NpyArray Parse(byte[] bytes, string source)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var ms = new MemoryStream(bytes, writable: false);
        return Read(ms, bytes.Length, source);
    }

    /// <summary>
    /// Reads a <c>.npy</c> array from a stream holding exactly <paramref name="length"/> bytes of it (no more data
    /// may follow); <paramref name="source"/> names it in errors.
    /// </summary>
    /// <exception cref="FormatException">The bytes are malformed.</exception>
    public static NpyArray Read(Stream stream, long length, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        FormatException Bad(string what) => new($"'{source}' is not a valid .npy file: {what}.");
        if (length < 10) throw Bad($"it has {length} bytes, fewer than the 10-byte prefix (magic, version, header length)");
        Span<byte> prefix = stackalloc byte[12];
        ReadExactly(stream, prefix[..8], source);
        if (!prefix[..6].SequenceEqual(Magic)) throw Bad("it does not begin with the magic \\x93NUMPY");
        byte major = prefix[6], minor = prefix[7];
        if (major is < 1 or > 3 || minor != 0) throw Bad($"version {major}.{minor} is not 1.0, 2.0 or 3.0");
        int lengthBytes = major == 1 ? 2 : 4;
        if (length < 8 + lengthBytes) throw Bad($"it has {length} bytes, too few for a version {major}.0 header length");
        ReadExactly(stream, prefix.Slice(8, lengthBytes), source);
        long headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(prefix[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..]);
        long dataStart = 8 + lengthBytes + headerLength;
        if (headerLength > MaxHeaderLength) throw Bad($"header length {headerLength} exceeds the limit of {MaxHeaderLength} bytes");
        if (dataStart > length) throw Bad($"header length {headerLength} runs past the end of the file ({length} bytes)");
        var headerBytes = new byte[headerLength];
        ReadExactly(stream, headerBytes, source);
        string header;
        if (major == 3)
        {
            try { header = StrictUtf8.GetString(headerBytes); }
            catch (ArgumentException) { throw Bad("the version 3.0 header is not UTF-8"); }
        }
        else
        {
            header = Encoding.Latin1.GetString(headerBytes);
        }
        var (type, bigEndian, fortran, dims) = ParseHeader(header, Bad);

        long count = 1;
        foreach (var d in dims)
        {
            if (d > int.MaxValue) throw Bad($"dimension {d} in shape ({string.Join(", ", dims)}) exceeds {int.MaxValue}");
            count *= d;
            if (count > int.MaxValue) throw Bad($"shape ({string.Join(", ", dims)}) has more than {int.MaxValue} elements");
        }
        int itemSize = ItemSize(type);
        long dataBytes = count * itemSize;
        if (dataBytes != length - dataStart)
            throw Bad($"shape ({string.Join(", ", dims)}) of {Descr(type)} needs {dataBytes} data bytes after the {dataStart}-byte header; the file has {length - dataStart}");
        var shape = new Shape(dims.Select(d => (int)d).ToArray());
        var data = new byte[dataBytes];
        ReadExactly(stream, data, source);
        var array = Decode(type, bigEndian, shape, data, Bad);
        return fortran && shape.Rank > 1 ? FromColumnMajor(array) : array;
    }

    /// <summary>The bytes of a <c>.npy</c> file (version 1.0, or 2.0 if the header needs it; little-endian, row-major).</summary>
    public static byte[] ToBytes(NpyArray array)
    {
        ArgumentNullException.ThrowIfNull(array);
        var dims = array.Shape.ToArray();
        string shape = dims.Length == 1 ? $"({dims[0]},)" : "(" + string.Join(", ", dims) + ")";
        string dict = $"{{'descr': '{Descr(array.Type)}', 'fortran_order': False, 'shape': {shape}, }}";
        int major = 10 + dict.Length + 1 <= ushort.MaxValue ? 1 : 2;
        int prefix = major == 1 ? 10 : 12;
        int total = prefix + dict.Length + 1;
        int pad = (64 - total % 64) % 64;
        var header = Encoding.ASCII.GetBytes(dict + new string(' ', pad) + "\n");
        int itemSize = ItemSize(array.Type);
        var bytes = new byte[prefix + header.Length + (long)array.Size * itemSize];
        Magic.CopyTo(bytes, 0);
        bytes[6] = (byte)major;
        bytes[7] = 0;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)header.Length);
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)header.Length);
        header.CopyTo(bytes, prefix);
        var body = bytes.AsSpan(prefix + header.Length);
        if (array.IsInteger)
        {
            var v = array.ToInt64();
            for (int i = 0; i < v.Length; i++) WriteInteger(array.Type, v[i], body.Slice(i * itemSize, itemSize));
        }
        else
        {
            var t = array.ToTensor();
            for (int i = 0; i < t.Size; i++)
            {
                if (array.Type == NpyType.Float64) BinaryPrimitives.WriteDoubleLittleEndian(body[(i * 8)..], t[i]);
                else BinaryPrimitives.WriteSingleLittleEndian(body[(i * 4)..], t[i]);
            }
        }
        return bytes;
    }

    /// <summary>Writes a <c>.npy</c> file atomically (temporary file, flush, rename).</summary>
    public static void Write(string path, NpyArray array) => AtomicFile.WriteAllBytes(path, ToBytes(array));

    /// <summary>Writes a float32 tensor as a <c>.npy</c> file atomically.</summary>
    public static void Write(string path, Tensor tensor) => Write(path, NpyArray.FromTensor(tensor));

    /// <summary>NumPy's little-endian <c>descr</c> of a type: <c>&lt;f4</c>, <c>|u1</c>, <c>&lt;i8</c>, …</summary>
    public static string Descr(NpyType type) => type switch
    {
        NpyType.Float32 => "<f4",
        NpyType.Float64 => "<f8",
        NpyType.Bool => "|b1",
        NpyType.Int8 => "|i1",
        NpyType.UInt8 => "|u1",
        NpyType.Int16 => "<i2",
        NpyType.UInt16 => "<u2",
        NpyType.Int32 => "<i4",
        NpyType.UInt32 => "<u4",
        NpyType.Int64 => "<i8",
        NpyType.UInt64 => "<u8",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    private static int ItemSize(NpyType type) => type switch
    {
        NpyType.Bool or NpyType.Int8 or NpyType.UInt8 => 1,
        NpyType.Int16 or NpyType.UInt16 => 2,
        NpyType.Float32 or NpyType.Int32 or NpyType.UInt32 => 4,
        _ => 8,
    };

    private static void ReadExactly(Stream stream, Span<byte> into, string source)
    {
        try { stream.ReadExactly(into); }
        catch (EndOfStreamException e) { throw new FormatException($"'{source}' is not a valid .npy file: it ends early (truncated).", e); }
    }

    private static (NpyType Type, bool BigEndian, bool Fortran, long[] Dims) ParseHeader(string header, Func<string, FormatException> bad)
    {
        object? value;
        try { value = new PyLiteral(header).ParseWhole(); }
        catch (System.FormatException e) { throw bad($"the header is not a Python dict literal ({e.Message})"); }
        if (value is not Dictionary<string, object> dict) throw bad("the header is not a dict");
        foreach (var key in dict.Keys)
            if (key is not ("descr" or "fortran_order" or "shape")) throw bad($"the header has the unexpected key '{key}'");
        foreach (var key in new[] { "descr", "fortran_order", "shape" })
            if (!dict.ContainsKey(key)) throw bad($"the header lacks the key '{key}'");
        if (dict["descr"] is not string descr)
            throw bad("descr is not a string (structured dtypes are not supported)");
        if (dict["fortran_order"] is not bool fortran) throw bad("fortran_order is not True or False");
        if (dict["shape"] is not PyTuple tuple) throw bad("shape is not a tuple");
        var dims = new long[tuple.Items.Count];
        for (int i = 0; i < dims.Length; i++)
        {
            if (tuple.Items[i] is not long d) throw bad($"shape element {i} is not an integer");
            if (d < 0) throw bad($"shape element {i} is negative ({d})");
            dims[i] = d;
        }
        var (type, big) = ParseDescr(descr, bad);
        return (type, big, fortran, dims);
    }

    private static (NpyType, bool) ParseDescr(string descr, Func<string, FormatException> bad)
    {
        if (descr.Length < 2) throw bad($"descr '{descr}' is not a type");
        char order = descr[0];
        string code = descr[1..];
        if (descr.Contains('O')) throw bad($"descr '{descr}' is an object array (pickled Python objects), which is never loaded");
        NpyType? type = code switch
        {
            "f4" => NpyType.Float32, "f8" => NpyType.Float64, "b1" => NpyType.Bool,
            "i1" => NpyType.Int8, "u1" => NpyType.UInt8, "i2" => NpyType.Int16, "u2" => NpyType.UInt16,
            "i4" => NpyType.Int32, "u4" => NpyType.UInt32, "i8" => NpyType.Int64, "u8" => NpyType.UInt64,
            _ => null,
        };
        if (type is null || order is not ('<' or '>' or '|' or '='))
            throw bad($"descr '{descr}' is not supported (expected f4, f8, b1, i1/u1, i2/u2, i4/u4 or i8/u8 with a byte order < > or |)");
        bool single = ItemSize(type.Value) == 1;
        if (!single && order is '|' or '=')
            throw bad($"descr '{descr}' does not say the byte order of a {ItemSize(type.Value)}-byte type");
        return (type.Value, order == '>');
    }

    private static NpyArray Decode(NpyType type, bool big, Shape shape, byte[] data, Func<string, FormatException> bad)
    {
        int n = shape.Size;
        if (type is NpyType.Float32 or NpyType.Float64)
        {
            var f = new float[n];
            for (int i = 0; i < n; i++)
            {
                f[i] = type == NpyType.Float32
                    ? (big ? BinaryPrimitives.ReadSingleBigEndian(data.AsSpan(i * 4)) : BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(i * 4)))
                    : (float)(big ? BinaryPrimitives.ReadDoubleBigEndian(data.AsSpan(i * 8)) : BinaryPrimitives.ReadDoubleLittleEndian(data.AsSpan(i * 8)));
            }
            return NpyArray.OwnFloats(type, shape, f);
        }
        var v = new long[n];
        int size = ItemSize(type);
        for (int i = 0; i < n; i++)
        {
            var s = data.AsSpan(i * size, size);
            v[i] = type switch
            {
                NpyType.Bool => s[0] <= 1 ? s[0] : throw bad($"element {i} of a bool array is {s[0]}, not 0 or 1"),
                NpyType.Int8 => (sbyte)s[0],
                NpyType.UInt8 => s[0],
                NpyType.Int16 => big ? BinaryPrimitives.ReadInt16BigEndian(s) : BinaryPrimitives.ReadInt16LittleEndian(s),
                NpyType.UInt16 => big ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s),
                NpyType.Int32 => big ? BinaryPrimitives.ReadInt32BigEndian(s) : BinaryPrimitives.ReadInt32LittleEndian(s),
                NpyType.UInt32 => big ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s),
                NpyType.Int64 => big ? BinaryPrimitives.ReadInt64BigEndian(s) : BinaryPrimitives.ReadInt64LittleEndian(s),
                _ => (big ? BinaryPrimitives.ReadUInt64BigEndian(s) : BinaryPrimitives.ReadUInt64LittleEndian(s)) is var u && u <= long.MaxValue
                    ? (long)u : throw bad($"element {i} of a uint64 array exceeds {long.MaxValue}"),
            };
        }
        return NpyArray.OwnIntegers(type, shape, v);
    }

    private static void WriteInteger(NpyType type, long value, Span<byte> into)
    {
        switch (type)
        {
            case NpyType.Bool or NpyType.UInt8: into[0] = (byte)value; break;
            case NpyType.Int8: into[0] = unchecked((byte)(sbyte)value); break;
            case NpyType.Int16: BinaryPrimitives.WriteInt16LittleEndian(into, (short)value); break;
            case NpyType.UInt16: BinaryPrimitives.WriteUInt16LittleEndian(into, (ushort)value); break;
            case NpyType.Int32: BinaryPrimitives.WriteInt32LittleEndian(into, (int)value); break;
            case NpyType.UInt32: BinaryPrimitives.WriteUInt32LittleEndian(into, (uint)value); break;
            default: BinaryPrimitives.WriteInt64LittleEndian(into, value); break;
        }
    }

    /// <summary>Reorders column-major elements (first index fastest) to row-major.</summary>
    private static NpyArray FromColumnMajor(NpyArray array)
    {
        var dims = array.Shape.ToArray();
        int n = array.Size, rank = dims.Length;
        var rowMajorIndex = new int[n];
        var index = new int[rank];
        var rowStride = new int[rank];
        rowStride[rank - 1] = 1;
        for (int a = rank - 2; a >= 0; a--) rowStride[a] = rowStride[a + 1] * dims[a + 1];
        // Walk the file's order (first axis fastest) and note where each element lands in row-major order.
        for (int k = 0; k < n; k++)
        {
            int r = 0;
            for (int a = 0; a < rank; a++) r += index[a] * rowStride[a];
            rowMajorIndex[k] = r;
            for (int a = 0; a < rank && ++index[a] == dims[a]; a++) index[a] = 0;
        }
        if (array.IsInteger)
        {
            var src = array.ToInt64();
            var dst = new long[n];
            for (int k = 0; k < n; k++) dst[rowMajorIndex[k]] = src[k];
            return NpyArray.OwnIntegers(array.Type, array.Shape, dst);
        }
        var s = array.ToTensor().Span;
        var d = new float[n];
        for (int k = 0; k < n; k++) d[rowMajorIndex[k]] = s[k];
        return NpyArray.OwnFloats(array.Type, array.Shape, d);
    }
}
