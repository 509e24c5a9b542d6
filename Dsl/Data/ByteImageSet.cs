using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// An immutable set of labelled 8-bit images kept as bytes, one byte per pixel (a quarter of the memory of
/// <see cref="LabeledData"/>'s floats: Fashion-MNIST's 60,000 training images take 47 MB). Training reads it
/// through a batch pipeline (<see cref="PipelineOptions"/>) that converts each batch to floats, <c>k / 255</c>, as
/// it is needed.
/// </summary>
/// <remarks>
/// The pixel <c>k</c> is the float <c>k / 255f</c>, the same value <see cref="Idx.ReadImages"/> gives, so training on
/// a <see cref="ByteImageSet"/> or on its <see cref="ToLabeledData"/> gives the same batches.
/// </remarks>
public sealed class ByteImageSet
{
    private readonly byte[] _pixels;
    private readonly int[] _labels;

    /// <summary>Creates a set from a copy of <paramref name="pixels"/> and <paramref name="labels"/>.</summary>
    /// <param name="pixels">The images one after another, each laid out as <paramref name="sampleShape"/> (row-major).</param>
    /// <param name="sampleShape">One image's shape, for example <c>[1, 28, 28]</c>.</param>
    /// <param name="labels">One label per image, each in <c>[0, classes)</c>.</param>
    /// <param name="classes">The number of classes; at least 1.</param>
    /// <exception cref="CnnException">The pixels are not labels.Count images of that shape, or a label or the class count is out of range.</exception>
    public ByteImageSet(ReadOnlySpan<byte> pixels, Shape sampleShape, IReadOnlyList<int> labels, int classes)
        : this(pixels.ToArray(), sampleShape, (labels ?? throw new ArgumentNullException(nameof(labels))).ToArray(), classes)
    {
    }

    private ByteImageSet(byte[] pixels, Shape sampleShape, int[] labels, int classes)
    {
        if (classes < 1) throw new CnnException($"A labelled data set needs at least 1 class; found Classes = {classes}.");
        if (sampleShape.Rank == 0 || sampleShape.Size == 0)
            throw new CnnException($"The images of a byte image set need a shape of at least one element; found {sampleShape}.");
        if ((long)labels.Length * sampleShape.Size != pixels.Length)
            throw new CnnException(
                $"A byte image set of {labels.Length} labels and images of shape {sampleShape} needs {(long)labels.Length * sampleShape.Size} bytes; found {pixels.Length}.");
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classes)
                throw new CnnException($"Label at row {i} is {labels[i]}; labels must be in [0, {classes}).");
        (_pixels, _labels, SampleShape, Classes) = (pixels, labels, sampleShape, classes);
        Labels = Array.AsReadOnly(labels);
    }

    /// <summary>Takes ownership of arrays the caller made and will not keep (no copy).</summary>
    internal static ByteImageSet Own(byte[] pixels, Shape sampleShape, int[] labels, int classes) => new(pixels, sampleShape, labels, classes);

    /// <summary>One image's shape.</summary>
    public Shape SampleShape { get; }

    /// <summary>The number of classes.</summary>
    public int Classes { get; }

    /// <summary>The label of each image; read-only.</summary>
    public IReadOnlyList<int> Labels { get; }

    /// <summary>The number of images.</summary>
    public int Count => _labels.Length;

    /// <summary>The shape of all the images as a tensor, <c>[Count, ...SampleShape]</c>.</summary>
    public Shape Shape => SampleShape.PrependBatch(Count);

    /// <summary>All the pixels, image after image.</summary>
    public ReadOnlySpan<byte> Pixels => _pixels;

    /// <summary>The pixels of image <paramref name="row"/>.</summary>
    public ReadOnlySpan<byte> Sample(int row) => _pixels.AsSpan(checked(row * SampleShape.Size), SampleShape.Size);

    /// <summary>The label of image <paramref name="row"/>, without a bounds-checked list in between.</summary>
    internal int Label(int row) => _labels[row];

    /// <summary>The images as floats, <c>k / 255</c>, with their labels: four times the memory.</summary>
    public LabeledData ToLabeledData()
    {
        var f = new float[_pixels.Length];
        for (int i = 0; i < f.Length; i++) f[i] = _pixels[i] / 255f;
        return new LabeledData(Tensor.Own(f, Shape), _labels, Classes);
    }

    /// <summary>The <paramref name="count"/> images from <paramref name="start"/>, copied.</summary>
    /// <exception cref="CnnException">The range is not inside <c>[0, Count]</c>.</exception>
    public ByteImageSet Batch(int start, int count)
    {
        if (start < 0 || count < 0 || start > Count - count)
            throw new CnnException($"Batch [{start}, {(long)start + count}) (start {start}, count {count}) is outside the data set's {Count} examples.");
        int size = SampleShape.Size;
        return new ByteImageSet(_pixels.AsSpan(start * size, count * size).ToArray(), SampleShape, _labels.AsSpan(start, count).ToArray(), Classes);
    }

    /// <summary>
    /// The per-channel mean and standard deviation of the images as floats, equal to
    /// <c>Normalization.Fit(ToLabeledData().Images)</c> without making the floats.
    /// </summary>
    /// <exception cref="CnnException">The set is empty or its images have no channel axis (rank below 1).</exception>
    public Normalization FitNormalization()
    {
        int c = SampleShape[0], inner = SampleShape.Size / c, n = Count;
        if (n == 0) throw new CnnException($"Cannot fit a normalisation to an empty set of images ({Shape}).");
        var mean = new float[c];
        var std = new float[c];
        for (int ch = 0; ch < c; ch++)
        {
            // The same sums in the same order as Normalization.Fit over k / 255f, so the figures are equal to the bit.
            double sum = 0;
            for (int i = 0; i < n; i++) foreach (var b in _pixels.AsSpan((i * c + ch) * inner, inner)) sum += b / 255f;
            double m = sum / ((double)n * inner), sq = 0;
            for (int i = 0; i < n; i++) foreach (var b in _pixels.AsSpan((i * c + ch) * inner, inner)) { float v = b / 255f; sq += (v - m) * (v - m); }
            mean[ch] = (float)m;
            std[ch] = (float)Math.Sqrt(sq / ((double)n * inner));
        }
        return new Normalization(mean, std);
    }

    /// <inheritdoc />
    public override string ToString() => $"ByteImageSet({Count} examples, images {SampleShape}, {Classes} classes)";
}

/// <summary>A training set and a test set of byte images, as a data set ships them.</summary>
/// <param name="Train">The training set.</param>
/// <param name="Test">The test set.</param>
public sealed record ByteImageSplit(ByteImageSet Train, ByteImageSet Test);
