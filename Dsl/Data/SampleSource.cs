using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>Where a batch's examples come from: floats already made, or bytes to convert; with labels or float targets.</summary>
internal abstract class SampleSource
{
    /// <summary>The shape of one example's float target, or null when the examples have class labels.</summary>
    public virtual Shape? TargetShape => null;

    /// <summary>Writes the float target of example <paramref name="row"/> (one target's size); only when <see cref="TargetShape"/> is set.</summary>
    public virtual void WriteTarget(int row, Span<float> destination) => throw new InvalidOperationException("The examples have class labels, not float targets.");

    public abstract int Count { get; }

    public abstract Shape SampleShape { get; }

    public abstract int Classes { get; }

    public abstract int Label(int row);

    /// <summary>Writes example <paramref name="row"/> as floats into <paramref name="destination"/> (one sample's size).</summary>
    public abstract void Write(int row, Span<float> destination);

    public static SampleSource Of(LabeledData data) => new Floats(data);

    public static SampleSource Of(ByteImageSet data) => new Bytes(data);

    public static SampleSource Of(TargetData data) => new FloatTargets(data);

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

    private sealed class FloatTargets(TargetData data) : SampleSource
    {
        private readonly int _size = data.Images.Shape.DropBatch().Size, _targetSize = data.TargetShape.Size;

        public override int Count => data.Count;

        public override Shape SampleShape => data.Images.Shape.DropBatch();

        public override int Classes => 0;

        public override Shape? TargetShape => data.TargetShape;

        public override int Label(int row) => throw new InvalidOperationException("The examples have float targets, not class labels.");

        public override void Write(int row, Span<float> destination) => data.Images.Span.Slice(row * _size, _size).CopyTo(destination);

        public override void WriteTarget(int row, Span<float> destination) => data.Targets.Span.Slice(row * _targetSize, _targetSize).CopyTo(destination);
    }
}
