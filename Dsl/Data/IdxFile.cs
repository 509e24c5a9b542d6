using System.Buffers.Binary;
using System.IO.Compression;
using Cnn.Core;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.Data;

/// <summary>
/// One open IDX file, plain or gzip-compressed, whose header has been read and checked and whose elements have not:
/// the caller decides how many to read. Everything that can be checked before inflating is checked on opening.
/// </summary>
/// <remarks>
/// For a plain file the length must be the header plus the product of the sizes. For a gzip file the inflated length
/// is known, before inflating anything, from the member's trailer (its last 4 bytes, the inflated length modulo
/// 2^32): it must match the header's sizes too. So a header that lies, a file cut short and bytes after the gzip
/// member (which <see cref="GZipStream"/> would silently skip) are all rejected on opening, even when only the first
/// few elements are then read. A file of several concatenated gzip members is rejected the same way.
/// </remarks>
internal sealed class IdxFile : IDisposable
{
    private readonly FileStream _file;
    private readonly Stream _data;
    private long _read;

    private readonly string _what;

    private IdxFile(FileStream file, Stream data, int[] dims, long count, string path, string what)
    {
        (_file, _data, Dims, Count, Path, _what) = (file, data, dims, count, path, what);
    }

    /// <summary>The sizes of the axes, as the header declares them.</summary>
    public int[] Dims { get; }

    /// <summary>The number of elements the header declares (the product of <see cref="Dims"/>).</summary>
    public long Count { get; }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>Opens <paramref name="path"/> and checks its header (magic, rank, sizes, cap, length).</summary>
    /// <exception cref="CnnException">The file cannot be opened.</exception>
    /// <exception cref="FormatException">The header or the file's length is not that of an IDX file of unsigned bytes of this rank.</exception>
    public static IdxFile Open(string path, int rank, string what, long maxBytes)
    {
        FileStream fs;
        try { fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CnnException($"Cannot read IDX {what} file '{path}': {e.Message}", e);
        }
        try
        {
            return Open(fs, path, rank, what, maxBytes);
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    private static IdxFile Open(FileStream fs, string path, int rank, string what, long maxBytes)
    {
        FormatException Bad(string defect) => new($"'{path}' is not a valid IDX {what} file: {defect}.");
        bool gz = fs.Length >= 2 && fs.ReadByte() == 0x1f && fs.ReadByte() == 0x8b;
        long? inflatedModulo = null;
        if (gz)
        {
            // The smallest gzip member is a 10-byte header, an empty deflate block and the 8-byte trailer.
            if (fs.Length < 20) throw new FormatException($"'{path}' is not a valid gzip-compressed IDX {what} file: it has {fs.Length} bytes, too few for a gzip member (truncated).");
            fs.Position = fs.Length - 4;
            Span<byte> isize = stackalloc byte[4];
            fs.ReadExactly(isize);
            inflatedModulo = BinaryPrimitives.ReadUInt32LittleEndian(isize);
        }
        fs.Position = 0;
        Stream s = gz ? new GZipStream(fs, CompressionMode.Decompress, leaveOpen: true) : fs;
        try
        {
            int headerBytes = 4 + 4 * rank;
            var header = new byte[headerBytes];
            int got = ReadAtLeast(s, header, headerBytes, path, what);
            if (got < headerBytes) throw Bad($"it has {got} bytes, fewer than the {headerBytes}-byte header");
            int magic = BinaryPrimitives.ReadInt32BigEndian(header);
            int expectedMagic = rank == 3 ? Idx.ImagesMagic : Idx.LabelsMagic;
            if (magic != expectedMagic)
            {
                string found = $"0x{magic:X8}";
                if ((magic >> 16) == 0 && ((magic >> 8) & 0xff) != 0x08)
                    throw Bad($"magic {found}: element type 0x{(magic >> 8) & 0xff:X2} is not unsigned bytes (0x08)");
                throw Bad($"magic {found}, expected 0x{expectedMagic:X8} ({what}: unsigned bytes, rank {rank})");
            }
            var dims = new int[rank];
            long count = 1;
            for (int a = 0; a < rank; a++)
            {
                uint d = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4 + 4 * a));
                if (d > int.MaxValue) throw Bad($"size {d} of axis {a} exceeds {int.MaxValue}");
                dims[a] = (int)d;
                count *= d;
                if (count > int.MaxValue) throw Bad($"sizes ({string.Join(", ", dims.Take(a + 1))}) hold more than {int.MaxValue} elements");
            }
            string sizes = string.Join(", ", dims);
            if (count > maxBytes)
                throw Bad($"sizes ({sizes}) declare {count} bytes, more than the reader's cap of {maxBytes} (Idx.MaxBytes)");
            long total = headerBytes + count;
            if (!gz && fs.Length != total)
                throw Bad($"sizes ({sizes}) need {total} bytes; the file has {fs.Length}");
            if (inflatedModulo is long m && m != (total & 0xFFFFFFFFL))
                throw new FormatException(
                    $"'{path}' is not a valid gzip-compressed IDX {what} file: sizes ({sizes}) need {total} bytes inflated, but the gzip " +
                    $"trailer (the file's last 4 bytes) says {m} (modulo 2^32): the file is truncated, has bytes after its gzip member, " +
                    "or holds more or less data than its header says.");
            return new IdxFile(fs, s, dims, count, path, what);
        }
        catch
        {
            if (gz) s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads the next <paramref name="count"/> elements into a new array; when they are the last ones, also checks that
    /// nothing follows them. Only what is read is inflated.
    /// </summary>
    /// <exception cref="FormatException">The file ends early, has more data, or is not valid gzip.</exception>
    public byte[] Read(long count)
    {
        if (count < 0 || _read + count > Count) throw new CnnException($"Cannot read {count} more of the {Count - _read} elements left in '{Path}'.");
        var data = new byte[count];
        int got = ReadAtLeast(_data, data, data.Length, Path, _what);
        _read += got;
        int headerBytes = 4 + 4 * Dims.Length;
        if (got < data.Length)
            throw new FormatException(
                $"'{Path}' is not a valid IDX {_what} file: sizes ({string.Join(", ", Dims)}) need {headerBytes + Count} bytes; the inflated file ends after {headerBytes + _read} (truncated).");
        if (_read == Count && ReadAtLeast(_data, new byte[1], 1, Path, _what) > 0)
            throw new FormatException($"'{Path}' is not a valid IDX {_what} file: sizes ({string.Join(", ", Dims)}) need {headerBytes + Count} bytes; the inflated file has more.");
        return data;
    }

    private static int ReadAtLeast(Stream s, byte[] into, int count, string path, string what)
    {
        try { return s.ReadAtLeast(into, count, throwOnEndOfStream: false); }
        catch (InvalidDataException e)
        {
            throw new FormatException($"'{path}' is not a valid gzip-compressed IDX {what} file: {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!ReferenceEquals(_data, _file)) _data.Dispose();
        _file.Dispose();
    }
}
