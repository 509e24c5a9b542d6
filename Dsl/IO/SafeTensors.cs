using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Cnn.Core;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.IO;

/// <summary>The tensors and the string metadata of a safetensors file.</summary>
/// <param name="Tensors">The tensors by name (for checkpoints: parameter paths).</param>
/// <param name="Metadata">The <c>__metadata__</c> map (string to string).</param>
public sealed record SafeTensorsContent(Parameters Tensors, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// Reads and writes the safetensors format (float32 tensors): 8 bytes of little-endian header length N, N bytes
/// of UTF-8 JSON, then the data. The writer follows the reference: header padded with spaces to a multiple of
/// 8, tensors ordered by name so the bytes do not depend on insertion order. The reader rejects everything the
/// reference reader rejects, and never allocates from a size it has not checked against the file's length.
/// </summary>
public static class SafeTensors
{
    /// <summary>The environment variable that sets <see cref="MaxHeaderBytes"/>.</summary>
    public const string MaxHeaderVariable = "CNN_MAX_SAFETENSORS_HEADER_BYTES";

    /// <summary>The default of <see cref="MaxHeaderBytes"/>: 16 MiB, room for a hundred thousand tensor entries and a network description.</summary>
    public const long DefaultMaxHeaderBytes = 16L << 20;

    /// <summary>
    /// The longest header (JSON, metadata included) read: <c>CNN_MAX_SAFETENSORS_HEADER_BYTES</c> when set, up to the
    /// reference reader's 100 MB, else <see cref="DefaultMaxHeaderBytes"/>. The header is parsed into strings of twice
    /// its size and a document, so its cap bounds the reader's memory beyond the tensors themselves.
    /// </summary>
    public static long MaxHeaderBytes => InputFile.Limit(MaxHeaderVariable, DefaultMaxHeaderBytes, 100_000_000);
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The file's bytes for the given tensors and metadata.</summary>
    public static byte[] ToBytes(Parameters tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in tensors.Entries)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", "F32");
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + 4L * t.Size);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += 4L * t.Size;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - json.Length % 8) % 8);
        long headerLen = json.Length + pad;
        var bytes = new byte[8 + headerLen + tensors.Entries.Sum(kv => 4L * kv.Value.Size)];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)headerLen);
        json.ToArray().CopyTo(bytes, 8);
        bytes.AsSpan(8 + (int)json.Length, pad).Fill((byte)' ');
        int pos = 8 + (int)headerLen;
        foreach (var (_, t) in tensors.Entries)
        {
            for (int i = 0; i < t.Size; i++, pos += 4) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(pos), t[i]);
        }
        return bytes;
    }

    /// <summary>Writes a safetensors file atomically.</summary>
    public static void Write(string path, Parameters tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.WriteAllBytes(path, ToBytes(tensors, metadata));

    /// <summary>Reads a safetensors file of float32 tensors.</summary>
    /// <exception cref="FormatException">The file is malformed, truncated or lies about its sizes; the message names the file and the defect.</exception>
    public static SafeTensorsContent Read(string path)
    {
        const string What = "safetensors file";
        long length = InputFile.Check(path, What);
        if (length >= 8)
        {
            // The header's length is checked before the file is read, so a file that is mostly header costs nothing.
            Span<byte> prefix = stackalloc byte[8];
            using (var fs = InputFile.OpenRead(path, What))
            {
                try { fs.ReadExactly(prefix); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CnnException($"Cannot read {What} '{path}': {e.Message}", e); }
            }
            CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(prefix), length, path);
        }
        return Parse(InputFile.ReadAllBytes(path, What), path);
    }

    /// <summary>Parses the bytes of a safetensors file; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="FormatException">The bytes are malformed.</exception>
    public static SafeTensorsContent Parse(ReadOnlySpan<byte> bytes, string source)
    {
        FormatException Bad(string what) => new($"'{source}' is not a valid safetensors file: {what}.");
        if (bytes.Length < 8) throw Bad($"it has {bytes.Length} bytes, fewer than the 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        CheckHeaderLength(n, bytes.Length, source);
        var data = bytes[(8 + (int)n)..];
        JsonDocument doc;
        try { doc = JsonDocument.Parse(StrictUtf8.GetString(bytes.Slice(8, (int)n)).TrimEnd(' ')); }
        catch (Exception e) when (e is JsonException or ArgumentException) { throw Bad("the header is not UTF-8 JSON (" + e.Message + ")"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad("the header is not a JSON object");
            var meta = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<(string Name, Shape Shape, long Begin, long End)>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!names.Add(prop.Name)) throw Bad($"the name '{prop.Name}' appears twice");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ is not an object");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw Bad($"metadata '{m.Name}' is not a string");
                        meta[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(prop, Bad));
            }
            long expected = 0;
            var tensors = new List<KeyValuePair<string, Tensor>>();
            foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
            {
                if (e.Begin != expected) throw Bad($"tensor '{e.Name}' starts at {e.Begin}; expected {expected} (offsets overlap or leave a gap)");
                long size;
                try { size = checked(4L * e.Shape.Size); }
                catch (OverflowException) { throw Bad($"tensor '{e.Name}' is too large"); }
                if (e.End - e.Begin != size) throw Bad($"tensor '{e.Name}' of shape {e.Shape} needs {size} bytes; its offsets span {e.End - e.Begin}");
                if (e.End > data.Length) throw Bad($"tensor '{e.Name}' ends at {e.End}, past the {data.Length} bytes of data");
                var values = new float[e.Shape.Size];
                for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(data.Slice((int)e.Begin + 4 * i, 4));
                tensors.Add(KeyValuePair.Create(e.Name, Tensor.Own(values, e.Shape)));
                expected = e.End;
            }
            if (expected != data.Length) throw Bad($"the data is {data.Length} bytes but the tensors cover {expected}");
            return new SafeTensorsContent(Parameters.Of(tensors), meta);
        }
    }

    private static void CheckHeaderLength(ulong n, long fileLength, string source)
    {
        long cap = MaxHeaderBytes;
        if (n > (ulong)cap)
            throw new FormatException($"'{source}' is not a valid safetensors file: header length {n} exceeds the limit of {cap} bytes (set {MaxHeaderVariable} to raise it, up to 100,000,000).");
        if ((long)n > fileLength - 8) throw new FormatException($"'{source}' is not a valid safetensors file: header length {n} runs past the end of the file ({fileLength} bytes).");
    }

    private static (string, Shape, long, long) ParseEntry(JsonProperty prop, Func<string, FormatException> bad)
    {
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw bad($"entry '{prop.Name}' is not an object");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw bad($"tensor '{prop.Name}' has no dtype");
        if (dt.GetString() != "F32") throw bad($"tensor '{prop.Name}' has dtype {dt.GetString()}; only F32 is supported");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw bad($"tensor '{prop.Name}' has no shape");
        var dims = new List<int>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out var di) || di < 0) throw bad($"tensor '{prop.Name}' has a bad dimension {d}");
            dims.Add(di);
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw bad($"tensor '{prop.Name}' has no [begin, end] data_offsets");
        if (!off[0].TryGetInt64(out var b) || !off[1].TryGetInt64(out var e) || b < 0 || e < b)
            throw bad($"tensor '{prop.Name}' has bad data_offsets {off}");
        Shape shape;
        try { shape = new Shape(dims.ToArray()); }
        catch (ShapeException) { throw bad($"tensor '{prop.Name}' has a shape [{string.Join(", ", dims)}] too large to hold"); }
        return (prop.Name, shape, b, e);
    }
}
