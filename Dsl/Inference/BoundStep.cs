using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// A step bound to one input shape: what it outputs, and the work per call. A bound plan belongs to one caller at a time
/// (its steps keep the call in progress in fields).
/// </summary>
internal abstract class BoundStep(Shape output, Tensor? fixedOutput)
{
    /// <summary>The output's shape.</summary>
    public Shape Output { get; } = output;

    /// <summary>
    /// The tensor every call returns (its array rewritten by each call), or null when the output is not the step's own: its
    /// input passed through, or what a fallback step made.
    /// </summary>
    public Tensor? Fixed { get; } = fixedOutput;

    public abstract Tensor Run(Tensor x);
}

/// <summary>A bound step that writes its output into an array of its own, made once with the output's tensor.</summary>
internal abstract class WritingStep : BoundStep
{
    private readonly float[] _y;

    protected WritingStep(Shape output) : this(new float[output.Size], output) { }

    private WritingStep(float[] y, Shape output) : base(output, Tensor.Own(y, output)) => _y = y;

    public sealed override Tensor Run(Tensor x)
    {
        Write(x, _y);
        return Fixed!;
    }

    /// <summary>Writes every element of the output <paramref name="y"/>.</summary>
    protected abstract void Write(Tensor x, float[] y);
}
