using System.Buffers.Binary;
using System.Security.Cryptography;
using Cnn.Core;
using static Cnn.Dsl.Data.MnistNpm;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.Data;

/// <summary>The compact file in which the decoded digits are cached, and its checks.</summary>
internal static class MnistNpmCache
{
    // Little-endian. Header (36 bytes): magic "CNNMNPM1" (8), format version u32 = 1, image count u32,
    // height u32, width u32, classes u32, encoding u32 (1 = one byte per pixel indexing the value table,
    // 2 = float32 per pixel), table length u32 (1..256 for encoding 1, 0 for encoding 2).
    // Then the table (float32 each), the labels (one byte each), the pixels, and a SHA-256 of all bytes before it.
    // The package's values are k/255 rounded to 3 decimals: 256 distinct values, so encoding 1 holds them
    // exactly in 7.9 MB instead of 31 MB. Encoding 2 is the fallback should a build ever meet more than 256 values.

    private static ReadOnlySpan<byte> Magic => "CNNMNPM1"u8;
    private const uint FormatVersion = 1;
    private const uint EncodingTable = 1, EncodingFloat32 = 2;
    private const int HeaderBytes = 36, HashBytes = 32;

    internal static byte[] Encode(float[] pixels, byte[] labels)
    {
        var distinct = new HashSet<float>();
        foreach (var v in pixels)
            if (distinct.Add(v) && distinct.Count > 256) break;
        bool table = distinct.Count <= 256;
        float[] values = table ? distinct.Order().ToArray() : [];
        int pixelBytes = table ? pixels.Length : pixels.Length * sizeof(float);
        int length = HeaderBytes + values.Length * sizeof(float) + labels.Length + pixelBytes + HashBytes;

        var buf = new byte[length];
        var s = buf.AsSpan();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], ImageCount);
        BinaryPrimitives.WriteUInt32LittleEndian(s[16..], ImageSide);
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], ImageSide);
        BinaryPrimitives.WriteUInt32LittleEndian(s[24..], Classes);
        BinaryPrimitives.WriteUInt32LittleEndian(s[28..], table ? EncodingTable : EncodingFloat32);
        BinaryPrimitives.WriteUInt32LittleEndian(s[32..], (uint)values.Length);
        int at = HeaderBytes;
        foreach (var v in values)
        {
            BinaryPrimitives.WriteSingleLittleEndian(s[at..], v);
            at += sizeof(float);
        }
        labels.CopyTo(s[at..]);
        at += labels.Length;
        if (table)
        {
            var index = new Dictionary<float, byte>(values.Length);
            for (int i = 0; i < values.Length; i++) index[values[i]] = (byte)i;
            for (int i = 0; i < pixels.Length; i++) s[at + i] = index[pixels[i]];
        }
        else
        {
            for (int i = 0; i < pixels.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(s[(at + i * sizeof(float))..], pixels[i]);
        }
        at += pixelBytes;
        SHA256.HashData(s[..at], s[at..]);
        return buf;
    }

    internal static LabeledData Read(byte[] buf, string path)
    {
        var s = (ReadOnlySpan<byte>)buf;
        if (s.Length < HeaderBytes + HashBytes || !s[..8].SequenceEqual(Magic))
            throw new FormatException($"{path}: not a cache file of this format (bad magic or too short).");
        if (U(s, 8) != FormatVersion || U(s, 12) != ImageCount || U(s, 16) != ImageSide || U(s, 20) != ImageSide || U(s, 24) != Classes)
            throw new FormatException($"{path}: header does not describe {ImageCount} images of {ImageSide} × {ImageSide}, {Classes} classes, format {FormatVersion}.");
        uint encoding = U(s, 28), tableLength = U(s, 32);
        bool table = encoding == EncodingTable;
        if (!(table && tableLength is >= 1 and <= 256) && !(encoding == EncodingFloat32 && tableLength == 0))
            throw new FormatException($"{path}: unknown encoding {encoding} with table length {tableLength}.");
        long pixelBytes = table ? (long)ImageCount * Pixels : (long)ImageCount * Pixels * sizeof(float);
        long length = HeaderBytes + tableLength * sizeof(float) + ImageCount + pixelBytes + HashBytes;
        if (s.Length != length)
            throw new FormatException($"{path}: expected {length} bytes; found {s.Length}.");
        int body = s.Length - HashBytes;
        Span<byte> hash = stackalloc byte[HashBytes];
        SHA256.HashData(s[..body], hash);
        if (!hash.SequenceEqual(s[body..]))
            throw new FormatException($"{path}: SHA-256 mismatch; the file is corrupt.");

        int at = HeaderBytes;
        var values = new float[tableLength];
        for (int i = 0; i < values.Length; i++, at += sizeof(float))
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(s[at..]);
            if (!float.IsFinite(values[i]) || values[i] < 0f || values[i] > 1f)
                throw new FormatException($"{path}: table value {i} is {values[i]}; expected a finite number in [0, 1].");
        }
        var labels = s.Slice(at, ImageCount).ToArray();
        at += ImageCount;
        for (int d = 0, i = 0; d < Classes; d++)
            for (int k = 0; k < Counts[d]; k++, i++)
                if (labels[i] != d) throw new FormatException($"{path}: label {i} is {labels[i]}; expected {d}.");

        var pixels = new float[ImageCount * Pixels];
        var src = s.Slice(at, (int)pixelBytes);
        if (table)
        {
            for (int i = 0; i < pixels.Length; i++)
            {
                byte b = src[i];
                if (b >= values.Length) throw new FormatException($"{path}: pixel {i} indexes value {b} of a {values.Length}-entry table.");
                pixels[i] = values[b];
            }
        }
        else
        {
            for (int i = 0; i < pixels.Length; i++)
            {
                float v = BinaryPrimitives.ReadSingleLittleEndian(src[(i * sizeof(float))..]);
                if (!float.IsFinite(v) || v < 0f || v > 1f)
                    throw new FormatException($"{path}: pixel {i} is {v}; expected a finite number in [0, 1].");
                pixels[i] = v;
            }
        }
        return Make(pixels, labels);
    }

    private static uint U(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
}
