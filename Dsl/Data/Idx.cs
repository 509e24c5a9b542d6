using System.Buffers.Binary;
using System.IO.Compression;
using Cnn.Core;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.Data;

/// <summary>
/// Reads the IDX files of MNIST and Fashion-MNIST (<c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>,
/// <c>t10k-…</c>), plain or gzip-compressed (recognised by the gzip magic, whatever the file's name).
/// </summary>
/// <remarks>
/// An IDX file is a 4-byte magic (two zero bytes, the element type — 0x08 for unsigned bytes — and the rank), one
/// big-endian 32-bit size per axis, then the elements. The reader checks the magic and that the file is exactly
/// the header plus the product of the sizes. For a compressed file, whose length is known only once it is
/// inflated, the buffer grows with the bytes that actually arrive, so a lying header cannot make it allocate
/// more than the data it holds.
/// </remarks>
public static class Idx
{
    /// <summary>The magic of a file of unsigned-byte images: type 0x08, rank 3 (count, rows, columns).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>The magic of a file of unsigned-byte labels: type 0x08, rank 1.</summary>
    public const int LabelsMagic = 0x00000801;

    private const int Chunk = 1 << 20;

    /// <summary>
    /// Reads an images file as a <c>[N, 1, rows, columns]</c> tensor with each byte <c>k</c> as <c>k / 255</c>.
    /// </summary>
    /// <exception cref="FormatException">The file is not an IDX images file of unsigned bytes, or its length differs from its header's.</exception>
    public static Tensor ReadImages(string path)
    {
        var (dims, data) = ReadRaw(path, 3, "images");
        var f = new float[data.Length];
        for (int i = 0; i < f.Length; i++) f[i] = data[i] / 255f;
        return Tensor.Own(f, new Shape(dims[0], 1, dims[1], dims[2]));
    }

    /// <summary>Reads a labels file.</summary>
    /// <exception cref="FormatException">The file is not an IDX labels file of unsigned bytes, or its length differs from its header's.</exception>
    public static int[] ReadLabels(string path)
    {
        var (_, data) = ReadRaw(path, 1, "labels");
        return data.Select(b => (int)b).ToArray();
    }

    /// <summary>Reads an images file and its labels file as one data set.</summary>
    /// <param name="imagesPath">The images file (plain or .gz).</param>
    /// <param name="labelsPath">The labels file (plain or .gz).</param>
    /// <param name="classes">The number of classes (10 for MNIST and Fashion-MNIST).</param>
    /// <exception cref="FormatException">A file is malformed, or the two files disagree on the number of examples, or a label is not below <paramref name="classes"/>.</exception>
    public static LabeledData Load(string imagesPath, string labelsPath, int classes = 10)
    {
        var images = ReadImages(imagesPath);
        var labels = ReadLabels(labelsPath);
        if (labels.Length != images.Shape[0])
            throw new FormatException($"'{imagesPath}' holds {images.Shape[0]} images but '{labelsPath}' holds {labels.Length} labels.");
        int bad = Array.FindIndex(labels, l => l >= classes);
        if (bad >= 0) throw new FormatException($"'{labelsPath}': label {bad} is {labels[bad]}; labels must be in [0, {classes}).");
        return new LabeledData(images, labels, classes);
    }

    /// <summary>
    /// Loads the training and test sets from a folder holding the four files under their usual names
    /// (<c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>, <c>t10k-images-idx3-ubyte</c>,
    /// <c>t10k-labels-idx1-ubyte</c>, each possibly with <c>.gz</c>, or with a dot for the hyphen before <c>idx</c>).
    /// </summary>
    /// <returns><see cref="DataSplit.First"/> is the training set, <see cref="DataSplit.Second"/> the test set.</returns>
    /// <exception cref="CnnException">A file is missing (the message names the names tried) or malformed.</exception>
    public static DataSplit LoadDirectory(string directory, int classes = 10) =>
        new(Load(Find(directory, "train", "images", 3), Find(directory, "train", "labels", 1), classes),
            Load(Find(directory, "t10k", "images", 3), Find(directory, "t10k", "labels", 1), classes));

    private static string Find(string directory, string prefix, string kind, int rank)
    {
        var names = new[] { $"{prefix}-{kind}-idx{rank}-ubyte", $"{prefix}-{kind}.idx{rank}-ubyte" }
            .SelectMany(n => new[] { n, n + ".gz" }).ToArray();
        foreach (var n in names)
        {
            var p = Path.Combine(directory, n);
            if (File.Exists(p)) return p;
        }
        throw new CnnException($"No IDX {kind} file in '{directory}': tried {string.Join(", ", names)}.");
    }

    private static (int[] Dims, byte[] Data) ReadRaw(string path, int rank, string what)
    {
        FileStream fs;
        try { fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CnnException($"Cannot read IDX {what} file '{path}': {e.Message}", e);
        }
        using (fs)
        {
            bool gz = fs.Length >= 2 && fs.ReadByte() == 0x1f && fs.ReadByte() == 0x8b;
            fs.Position = 0;
            try
            {
                if (!gz) return Parse(fs, fs.Length, rank, path, what);
                using var inflated = new GZipStream(fs, CompressionMode.Decompress);
                return Parse(inflated, null, rank, path, what);
            }
            catch (InvalidDataException e)
            {
                throw new FormatException($"'{path}' is not a valid gzip-compressed IDX {what} file: {e.Message}", e);
            }
        }
    }

    // length: the stream's length when known (a plain file); null for a compressed stream.
    private static (int[] Dims, byte[] Data) Parse(Stream s, long? length, int rank, string path, string what)
    {
        FormatException Bad(string defect) => new($"'{path}' is not a valid IDX {what} file: {defect}.");
        int headerBytes = 4 + 4 * rank;
        var header = new byte[headerBytes];
        int got = s.ReadAtLeast(header, headerBytes, throwOnEndOfStream: false);
        if (got < headerBytes) throw Bad($"it has {got} bytes, fewer than the {headerBytes}-byte header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        int expectedMagic = rank == 3 ? ImagesMagic : LabelsMagic;
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
        if (length is long len)
        {
            if (len != headerBytes + count)
                throw Bad($"sizes ({string.Join(", ", dims)}) need {headerBytes + count} bytes; the file has {len}");
            var data = new byte[count];
            s.ReadExactly(data);
            return (dims, data);
        }
        var chunks = new List<byte[]>();
        long have = 0;
        while (have < count)
        {
            var c = new byte[Math.Min(Chunk, count - have)];
            int n = s.ReadAtLeast(c, c.Length, throwOnEndOfStream: false);
            have += n;
            if (n < c.Length)
                throw Bad($"sizes ({string.Join(", ", dims)}) need {headerBytes + count} bytes; the inflated file has {headerBytes + have} (truncated)");
            chunks.Add(c);
        }
        if (s.ReadByte() >= 0) throw Bad($"sizes ({string.Join(", ", dims)}) need {headerBytes + count} bytes; the inflated file has more");
        var all = new byte[count];
        long at = 0;
        foreach (var c in chunks)
        {
            c.CopyTo(all, at);
            at += c.Length;
        }
        return (dims, all);
    }
}
