using Cnn.Core;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.Data;

/// <summary>
/// Reads the binary version of CIFAR-10 (<c>data_batch_1.bin</c> … <c>data_batch_5.bin</c>, <c>test_batch.bin</c>):
/// records of 3,073 bytes, one label byte (0-9) then 1,024 red, 1,024 green and 1,024 blue bytes, each plane
/// row-major 32 x 32. Images come out as <c>[N, 3, 32, 32]</c> with each byte <c>k</c> as <c>k / 255</c>.
/// </summary>
public static class Cifar10
{
    /// <summary>Bytes per record: 1 label + 3 x 32 x 32 pixels.</summary>
    public const int RecordBytes = 1 + 3 * Side * Side;

    /// <summary>The side of an image.</summary>
    public const int Side = 32;

    /// <summary>The number of classes.</summary>
    public const int Classes = 10;

    /// <summary>The class names, by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        Array.AsReadOnly(new[] { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" });

    /// <summary>The largest batch file read: 16 times the 30,730,000 bytes of a standard batch (a file of the whole training set merged fits).</summary>
    public const long MaxBatchFileBytes = 16L * 30_730_000;

    /// <summary>Reads one batch file.</summary>
    /// <exception cref="FormatException">The file is empty, its length is not a multiple of 3,073, or a label is above 9.</exception>
    public static LabeledData ReadBatch(string path) => ReadBatches(new[] { path });

    /// <summary>Reads several batch files as one data set, in order.</summary>
    /// <exception cref="FormatException">A file is malformed; the message names it.</exception>
    public static LabeledData ReadBatches(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (paths.Count == 0) throw new CnnException("CIFAR-10: no batch file given.");
        var files = new List<byte[]>();
        long records = 0;
        foreach (var p in paths)
        {
            // A batch file is 30,730,000 bytes; the cap leaves room for a few merged ones and refuses anything endless.
            var bytes = IO.InputFile.ReadAllBytes(p, "CIFAR-10 batch", MaxBatchFileBytes, "a CIFAR-10 batch file holds 10,000 records of 3,073 bytes");
            CheckBatch(bytes, p);
            files.Add(bytes);
            records += bytes.Length / RecordBytes;
        }
        return Decode(files, records);
    }

    /// <summary>Parses the bytes of a batch file; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="FormatException">The bytes are malformed.</exception>
    public static LabeledData Parse(byte[] bytes, string source)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        CheckBatch(bytes, source);
        return Decode(new[] { bytes }, bytes.Length / RecordBytes);
    }

    /// <summary>
    /// Loads the training batches (<c>data_batch_1.bin</c> onwards, as many as are present, at least one) and
    /// <c>test_batch.bin</c> from a folder, or from its <c>cifar-10-batches-bin</c> sub-folder (as the archive unpacks).
    /// </summary>
    /// <returns><see cref="DataSplit.First"/> is the training set, <see cref="DataSplit.Second"/> the test set.</returns>
    /// <exception cref="CnnException">No training batch or no test batch is there, or a file is malformed.</exception>
    public static DataSplit LoadDirectory(string directory)
    {
        var dir = directory;
        if (!File.Exists(Path.Combine(dir, "data_batch_1.bin")) && Directory.Exists(Path.Combine(dir, "cifar-10-batches-bin")))
            dir = Path.Combine(dir, "cifar-10-batches-bin");
        var train = Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"data_batch_{i}.bin")).TakeWhile(File.Exists).ToList();
        if (train.Count == 0) throw new CnnException($"No CIFAR-10 training batch in '{directory}': expected data_batch_1.bin (binary version).");
        var test = Path.Combine(dir, "test_batch.bin");
        if (!File.Exists(test)) throw new CnnException($"No CIFAR-10 test batch in '{directory}': expected test_batch.bin.");
        return new DataSplit(ReadBatches(train), ReadBatch(test));
    }

    private static LabeledData Decode(IReadOnlyList<byte[]> files, long records)
    {
        if (records * (RecordBytes - 1) > int.MaxValue)
            throw new CnnException($"CIFAR-10: {records} records exceed the {int.MaxValue} elements a tensor holds.");
        var pixels = new float[records * (RecordBytes - 1)];
        var labels = new int[records];
        int r = 0;
        foreach (var bytes in files)
        {
            for (int off = 0; off < bytes.Length; off += RecordBytes, r++)
            {
                labels[r] = bytes[off];
                var dst = pixels.AsSpan(r * (RecordBytes - 1), RecordBytes - 1);
                for (int i = 0; i < dst.Length; i++) dst[i] = bytes[off + 1 + i] / 255f;
            }
        }
        return new LabeledData(Tensor.Own(pixels, new Shape(labels.Length, 3, Side, Side)), labels, Classes);
    }

    private static void CheckBatch(byte[] bytes, string source)
    {
        FormatException Bad(string defect) => new($"'{source}' is not a valid CIFAR-10 binary batch: {defect}.");
        if (bytes.Length == 0) throw Bad("it is empty");
        if (bytes.Length % RecordBytes != 0)
            throw Bad($"its {bytes.Length} bytes are not a whole number of {RecordBytes}-byte records ({bytes.Length / RecordBytes} records and {bytes.Length % RecordBytes} bytes over)");
        for (int off = 0, r = 0; off < bytes.Length; off += RecordBytes, r++)
            if (bytes[off] >= Classes) throw Bad($"record {r} (byte offset {off}) has label {bytes[off]}; labels are 0-9");
    }
}
