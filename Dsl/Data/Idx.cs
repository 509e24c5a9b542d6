using Cnn.Core;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.Data;

/// <summary>
/// Reads the IDX files of MNIST and Fashion-MNIST (<c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>,
/// <c>t10k-…</c>), plain or gzip-compressed (recognised by the gzip magic, whatever the file's name).
/// </summary>
/// <remarks>
/// An IDX file is a 4-byte magic (two zero bytes, the element type — 0x08 for unsigned bytes — and the rank), one
/// big-endian 32-bit size per axis, then the elements. The reader's work is proportional to what is asked, not to
/// what a header claims: it reads and checks both headers first (magic, sizes against <see cref="MaxBytes"/>, the
/// file's length — for a gzip file, the inflated length its trailer records — and that the two files hold the same
/// number of examples), then the labels, then only the images asked for. A file whose header lies, that is cut
/// short or that has bytes after its gzip member is rejected before its elements are inflated.
/// </remarks>
public static class Idx
{
    /// <summary>The magic of a file of unsigned-byte images: type 0x08, rank 3 (count, rows, columns).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>The magic of a file of unsigned-byte labels: type 0x08, rank 1.</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>
    /// The most elements (bytes) a file may declare: 1 GiB, twenty times Fashion-MNIST's training images and more than
    /// EMNIST's largest split. A header that declares more is rejected before anything is inflated.
    /// </summary>
    public const long MaxBytes = 1L << 30;

    /// <summary>
    /// Reads an images file as a <c>[N, 1, rows, columns]</c> tensor with each byte <c>k</c> as <c>k / 255</c>.
    /// </summary>
    /// <exception cref="FormatException">The file is not an IDX images file of unsigned bytes, or its length differs from its header's.</exception>
    public static Tensor ReadImages(string path)
    {
        using var file = IdxFile.Open(path, 3, "images", MaxBytes);
        var data = file.Read(file.Count);
        var f = new float[data.Length];
        for (int i = 0; i < f.Length; i++) f[i] = data[i] / 255f;
        return Tensor.Own(f, new Shape(file.Dims[0], 1, file.Dims[1], file.Dims[2]));
    }

    /// <summary>Reads a labels file.</summary>
    /// <exception cref="FormatException">The file is not an IDX labels file of unsigned bytes, or its length differs from its header's.</exception>
    public static int[] ReadLabels(string path)
    {
        using var file = IdxFile.Open(path, 1, "labels", MaxBytes);
        return file.Read(file.Count).Select(b => (int)b).ToArray();
    }

    /// <summary>Reads an images file and its labels file as one data set of floats (<c>k / 255</c>).</summary>
    /// <param name="imagesPath">The images file (plain or .gz).</param>
    /// <param name="labelsPath">The labels file (plain or .gz).</param>
    /// <param name="classes">The number of classes (10 for MNIST and Fashion-MNIST).</param>
    /// <param name="limit">Read only the first <paramref name="limit"/> examples (all when null).</param>
    /// <exception cref="FormatException">A file is malformed, or the two files disagree on the number of examples, or a label is not below <paramref name="classes"/>.</exception>
    public static LabeledData Load(string imagesPath, string labelsPath, int classes = 10, int? limit = null) =>
        LoadBytes(imagesPath, labelsPath, classes, limit).ToLabeledData();

    /// <summary>
    /// Reads an images file and its labels file as one data set kept as bytes. Both headers are checked first, then
    /// the labels are read, then the images; with a <paramref name="limit"/>, only the first <paramref name="limit"/>
    /// of each are inflated and kept (the files' lengths are still checked against their headers).
    /// </summary>
    /// <param name="imagesPath">The images file (plain or .gz).</param>
    /// <param name="labelsPath">The labels file (plain or .gz).</param>
    /// <param name="classes">The number of classes (10 for MNIST and Fashion-MNIST).</param>
    /// <param name="limit">Read only the first <paramref name="limit"/> examples (all when null); at least 0.</param>
    /// <exception cref="FormatException">A file is malformed, or the two files disagree on the number of examples, or a label is not below <paramref name="classes"/>.</exception>
    public static ByteImageSet LoadBytes(string imagesPath, string labelsPath, int classes = 10, int? limit = null)
    {
        if (limit < 0) throw new CnnException($"An IDX limit must be at least 0; found {limit}.");
        using var labelsFile = IdxFile.Open(labelsPath, 1, "labels", MaxBytes);
        using var imagesFile = IdxFile.Open(imagesPath, 3, "images", MaxBytes);
        int declared = imagesFile.Dims[0];
        if (labelsFile.Dims[0] != declared)
            throw new FormatException($"'{imagesPath}' holds {declared} images but '{labelsPath}' holds {labelsFile.Dims[0]} labels.");
        int n = Math.Min(declared, limit ?? declared);
        var labels = labelsFile.Read(n);
        int bad = Array.FindIndex(labels, l => l >= classes);
        if (bad >= 0) throw new FormatException($"'{labelsPath}': label {bad} is {labels[bad]}; labels must be in [0, {classes}).");
        var sample = new Shape(1, imagesFile.Dims[1], imagesFile.Dims[2]);
        var pixels = imagesFile.Read((long)n * sample.Size);
        return ByteImageSet.Own(pixels, sample, labels.Select(b => (int)b).ToArray(), classes);
    }

    /// <summary>
    /// Loads the training and test sets from a folder holding the four files under their usual names
    /// (<c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>, <c>t10k-images-idx3-ubyte</c>,
    /// <c>t10k-labels-idx1-ubyte</c>, each possibly with <c>.gz</c>, or with a dot for the hyphen before <c>idx</c>).
    /// </summary>
    /// <param name="directory">The folder.</param>
    /// <param name="classes">The number of classes.</param>
    /// <param name="limit">Read only the first <paramref name="limit"/> examples of each set (all when null).</param>
    /// <returns><see cref="DataSplit.First"/> is the training set, <see cref="DataSplit.Second"/> the test set.</returns>
    /// <exception cref="CnnException">A file is missing (the message names the names tried) or malformed.</exception>
    public static DataSplit LoadDirectory(string directory, int classes = 10, int? limit = null)
    {
        var bytes = LoadDirectoryBytes(directory, classes, limit);
        return new(bytes.Train.ToLabeledData(), bytes.Test.ToLabeledData());
    }

    /// <summary>As <see cref="LoadDirectory"/>, the images kept as bytes.</summary>
    /// <exception cref="CnnException">A file is missing (the message names the names tried) or malformed.</exception>
    public static ByteImageSplit LoadDirectoryBytes(string directory, int classes = 10, int? limit = null) =>
        new(LoadBytes(Find(directory, "train", "images", 3), Find(directory, "train", "labels", 1), classes, limit),
            LoadBytes(Find(directory, "t10k", "images", 3), Find(directory, "t10k", "labels", 1), classes, limit));

    /// <summary>The names under which a folder's file of this set and kind is looked for, in order.</summary>
    internal static string[] FileNames(string prefix, string kind, int rank) =>
        new[] { $"{prefix}-{kind}-idx{rank}-ubyte", $"{prefix}-{kind}.idx{rank}-ubyte" }.SelectMany(n => new[] { n, n + ".gz" }).ToArray();

    /// <summary>The first of <see cref="FileNames"/> present in <paramref name="directory"/>, or null.</summary>
    internal static string? TryFind(string directory, string prefix, string kind, int rank) =>
        FileNames(prefix, kind, rank).Select(n => Path.Combine(directory, n)).FirstOrDefault(File.Exists);

    private static string Find(string directory, string prefix, string kind, int rank) =>
        TryFind(directory, prefix, kind, rank)
        ?? throw new CnnException($"No IDX {kind} file in '{directory}': tried {string.Join(", ", FileNames(prefix, kind, rank))}.");
}
