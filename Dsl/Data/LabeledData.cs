using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// An immutable set of labelled examples: a tensor whose first axis is the example (for images
/// <c>[N, C, H, W]</c>) and one class label in <c>[0, Classes)</c> for each example.
/// </summary>
/// <remarks>
/// The constructor copies the labels, and <see cref="Tensor"/> is itself immutable, so nothing the caller
/// does afterwards changes an instance. Every method returns a new instance and leaves this one as it is.
/// </remarks>
public sealed class LabeledData
{
    private readonly int[] _labels;

    /// <summary>Creates a data set after checking that the images and labels fit together.</summary>
    /// <param name="images">The examples, first axis = example; rank at least 1.</param>
    /// <param name="labels">One label per example (copied).</param>
    /// <param name="classes">The number of classes; at least 1.</param>
    /// <exception cref="CnnException">
    /// <paramref name="classes"/> is below 1, the number of labels differs from the images' first axis, or a
    /// label is outside <c>[0, classes)</c> (the message names the row and the value).
    /// </exception>
    public LabeledData(Tensor images, IReadOnlyList<int> labels, int classes)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (classes < 1)
            throw new CnnException($"A labelled data set needs at least 1 class; found Classes = {classes}.");
        if (images.Shape.Rank == 0)
            throw new CnnException("The images of a labelled data set need a first (example) axis; found a tensor of rank 0.");
        if (images.Shape[0] != labels.Count)
            throw new CnnException(
                $"A labelled data set needs one label per image: the images (shape {images.Shape}) hold {images.Shape[0]} " +
                $"examples, but {labels.Count} labels were given.");
        var copy = new int[labels.Count];
        for (int i = 0; i < copy.Length; i++)
        {
            int label = labels[i];
            if ((uint)label >= (uint)classes)
                throw new CnnException($"Label at row {i} is {label}; labels must be in [0, {classes}).");
            copy[i] = label;
        }
        Images = images;
        _labels = copy;
        Labels = Array.AsReadOnly(copy);
        Classes = classes;
    }

    /// <summary>The examples; the first axis is the example.</summary>
    public Tensor Images { get; }

    /// <summary>The label of each example, each in <c>[0, Classes)</c>; read-only.</summary>
    public IReadOnlyList<int> Labels { get; }

    /// <summary>The number of classes.</summary>
    public int Classes { get; }

    /// <summary>The number of examples.</summary>
    public int Count => _labels.Length;

    /// <summary>
    /// Shuffles the examples deterministically and splits them: the first <paramref name="firstCount"/>
    /// shuffled examples go to <see cref="DataSplit.First"/>, the rest to <see cref="DataSplit.Second"/>.
    /// </summary>
    /// <remarks>
    /// The shuffle is a Fisher–Yates (for <c>i</c> from <c>Count - 1</c> down to 1, swap <c>i</c> with
    /// <c>new Random(seed).Next(i + 1)</c>) over the row indices. A seeded <see cref="Random"/> uses the same
    /// algorithm on every .NET version, so the same seed gives the same split everywhere. The two parts are
    /// disjoint and together hold every example once.
    /// </remarks>
    /// <param name="firstCount">How many examples go to the first part; in <c>[0, Count]</c>.</param>
    /// <param name="seed">The shuffle's seed.</param>
    /// <exception cref="CnnException"><paramref name="firstCount"/> is outside <c>[0, Count]</c>.</exception>
    public DataSplit Split(int firstCount, int seed)
    {
        if (firstCount < 0 || firstCount > Count)
            throw new CnnException($"Split needs a first part of 0 to {Count} examples (the data set's size); found {firstCount}.");
        var order = ShuffledRows(Count, seed);
        return new DataSplit(TakeRows(order.AsSpan(0, firstCount)), TakeRows(order.AsSpan(firstCount)));
    }

    /// <summary>
    /// The examples at <paramref name="rows"/>, in that order (a row may appear more than once), copied.
    /// </summary>
    /// <exception cref="CnnException">A row index is outside <c>[0, Count)</c> (the message names its position and value).</exception>
    public LabeledData Take(IReadOnlyList<int> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var r = new int[rows.Count];
        for (int i = 0; i < r.Length; i++) r[i] = rows[i];
        return TakeRows(r);
    }

    /// <summary>
    /// The <paramref name="count"/> consecutive examples starting at <paramref name="start"/> (a mini-batch),
    /// copied.
    /// </summary>
    /// <exception cref="CnnException">The range <c>[start, start + count)</c> is not inside <c>[0, Count]</c>.</exception>
    public LabeledData Batch(int start, int count)
    {
        if (start < 0 || count < 0 || start > Count - count)
            throw new CnnException(
                $"Batch [{start}, {(long)start + count}) (start {start}, count {count}) is outside the data set's {Count} examples.");
        return new LabeledData(Images.Slice(start, count), new ArraySegment<int>(_labels, start, count), Classes);
    }

    /// <inheritdoc />
    public override string ToString() => $"LabeledData({Count} examples, images {Images.Shape}, {Classes} classes)";

    private LabeledData TakeRows(ReadOnlySpan<int> rows)
    {
        var labels = new int[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            int r = rows[i];
            if ((uint)r >= (uint)Count)
                throw new CnnException($"Row index at position {i} is {r}; rows must be in [0, {Count}).");
            labels[i] = _labels[r];
        }
        return new LabeledData(Images.Gather(rows), labels, Classes);
    }

    internal static int[] ShuffledRows(int n, int seed)
    {
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        var rng = new Random(seed);
        for (int i = n - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}

/// <summary>The two parts of a <see cref="LabeledData.Split"/>: disjoint, together the whole data set.</summary>
/// <param name="First">The first part (the requested number of shuffled examples).</param>
/// <param name="Second">The rest.</param>
public sealed record DataSplit(LabeledData First, LabeledData Second);
