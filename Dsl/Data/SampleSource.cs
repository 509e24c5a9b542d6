using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>Where a batch's examples come from: floats already made, or bytes to convert.</summary>
internal abstract class SampleSource
{
    public abstract int Count { get; }

    public abstract Shape SampleShape { get; }

    public abstract int Classes { get; }

    public abstract int Label(int row);

    /// <summary>Writes example <paramref name="row"/> as floats into <paramref name="destination"/> (one sample's size).</summary>
    public abstract void Write(int row, Span<float> destination);

    public static SampleSource Of(LabeledData data) => new Floats(data);

    public static SampleSource Of(ByteImageSet data) => new Bytes(data);

    private sealed class Floats(LabeledData data) : SampleSource
    {
        private readonly int _size = data.Images.Shape.DropBatch().Size;

        public override int Count => data.Count;

        public override Shape SampleShape => data.Images.Shape.DropBatch();

        public override int Classes => data.Classes;

        public override int Label(int row) => data.Labels[row];

        public override void Write(int row, Span<float> destination) => data.Images.Span.Slice(row * _size, _size).CopyTo(destination);
    }

    private sealed class Bytes(ByteImageSet data) : SampleSource
    {
        public override int Count => data.Count;

        public override Shape SampleShape => data.SampleShape;

        public override int Classes => data.Classes;

        public override int Label(int row) => data.Label(row);

        public override void Write(int row, Span<float> destination)
        {
            var src = data.Sample(row);
            for (int i = 0; i < src.Length; i++) destination[i] = src[i] / 255f;
        }
    }
}
