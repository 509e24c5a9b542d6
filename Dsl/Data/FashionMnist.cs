using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 70,000 grey 28x28 pictures of clothing in 10 classes, 60,000 for
/// training and 10,000 for testing, read from the four standard IDX files that Debian's package
/// <c>dataset-fashion-mnist</c> installs in <see cref="DefaultDirectory"/>, or from a folder the caller names.
/// </summary>
/// <remarks>The images are kept as bytes (47 MB for the training set); train on them with a batch pipeline.</remarks>
public static class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> puts the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The command that installs the files on Debian and Ubuntu.</summary>
    public const string InstallCommand = "apt-get install dataset-fashion-mnist";

    /// <summary>The number of training images.</summary>
    public const int TrainCount = 60_000;

    /// <summary>The number of test images.</summary>
    public const int TestCount = 10_000;

    /// <summary>The number of classes.</summary>
    public const int Classes = 10;

    /// <summary>The name of each class, in label order: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = Array.AsReadOnly(new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    });

    /// <summary>
    /// Loads the training and test sets, images <c>[1, 28, 28]</c> as bytes, labels 0–9 (<see cref="ClassNames"/>).
    /// </summary>
    /// <param name="directory">The folder holding the IDX files (plain or .gz); <see cref="DefaultDirectory"/> if null.</param>
    /// <param name="limit">Read only the first <paramref name="limit"/> examples of each set (all when null).</param>
    /// <exception cref="CnnException">A file is missing (the message says how to install the package) or cannot be read.</exception>
    /// <exception cref="Core.FormatException">A file is malformed.</exception>
    public static ByteImageSplit Load(string? directory = null, int? limit = null)
    {
        var dir = directory ?? DefaultDirectory;
        var wanted = new[] { ("train", "images", 3), ("train", "labels", 1), ("t10k", "images", 3), ("t10k", "labels", 1) };
        var missing = wanted.Where(w => Idx.TryFind(dir, w.Item1, w.Item2, w.Item3) is null).Select(w => Idx.FileNames(w.Item1, w.Item2, w.Item3)[1]).ToList();
        if (missing.Count > 0)
            throw new CnnException(
                $"Fashion-MNIST is not in '{dir}': {string.Join(", ", missing)} (or the same without .gz) {(missing.Count == 1 ? "is" : "are")} missing. " +
                $"On Debian or Ubuntu, install the data set with `sudo {InstallCommand}` (30 MB; it puts the four IDX files in {DefaultDirectory}), " +
                "or name a folder that holds train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.");
        var split = Idx.LoadDirectoryBytes(dir, Classes, limit);
        if (split.Train.SampleShape != new Shape(1, 28, 28) || split.Test.SampleShape != new Shape(1, 28, 28))
            throw new Core.FormatException($"Fashion-MNIST's images are 28x28; the files in '{dir}' hold {split.Train.SampleShape} and {split.Test.SampleShape}.");
        return split;
    }
}
