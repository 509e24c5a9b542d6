using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>A convolution with its weights packed once (batch normalisation and an activation possibly folded in).</summary>
internal sealed class ConvStep(PackedConvolution conv) : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput) => new Bound(conv, conv.Bind(input));

    private sealed class Bound(PackedConvolution conv, ConvForward call) : WritingStep(call.OutputShape)
    {
        protected override void Write(Tensor x, float[] y) => conv.Forward(call, x, y);
    }
}

/// <summary>An affine layer with its weights packed once (batch normalisation and an activation possibly folded in).</summary>
internal sealed class DenseStep(PackedDense dense) : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput) => new Bound(dense, dense.OutputShape(input));

    private sealed class Bound(PackedDense dense, Shape output) : WritingStep(output)
    {
        protected override void Write(Tensor x, float[] y) => dense.Forward(Output[0], x.Span, y);
    }
}

/// <summary><c>y = f(x)</c> element by element, by the layer's kernel (an activation).</summary>
/// <param name="map">Writes every element of its second argument from its first.</param>
internal sealed class MapStep(MapStep.Map map) : Step
{
    /// <summary>An element-wise kernel into a given span.</summary>
    public delegate void Map(ReadOnlySpan<float> x, Span<float> y);

    public override BoundStep Bind(Shape input, Tensor? fixedInput) => new Bound(map, input);

    private sealed class Bound(Map map, Shape shape) : WritingStep(shape)
    {
        protected override void Write(Tensor x, float[] y) => map(x.Span, y);
    }
}

/// <summary>2-d max pooling, the values alone (<see cref="MaxPool2dKernel.ForwardValues"/>).</summary>
internal sealed class MaxPoolStep(Window2d window, bool ceilMode) : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput) => new Bound(new MaxPool2dKernel.Call(input, window, ceilMode));

    private sealed class Bound(MaxPool2dKernel.Call call) : WritingStep(call.OutputShape)
    {
        // The general kernel records each window's winner; the bound step keeps that scratch too.
        private readonly int[]? _winners = call.Pairs ? null : new int[call.OutputShape.Size];

        protected override void Write(Tensor x, float[] y) => call.RunValues(x, y, _winners);
    }
}

/// <summary>2-d average pooling (<see cref="AvgPool2dKernel.Forward(Tensor, Window2d, bool, bool)"/>), with ONNX's bottom and right padding where given.</summary>
internal sealed class AvgPoolStep(Window2d window, (int H, int W)? bottomRight, bool ceilMode, bool countIncludePad) : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput) =>
        new Bound(new AvgPool2dKernel.Call(input, window, bottomRight, ceilMode, countIncludePad));

    private sealed class Bound(AvgPool2dKernel.Call call) : WritingStep(call.OutputShape)
    {
        protected override void Write(Tensor x, float[] y) => call.Run(x, y);
    }
}

/// <summary>Global average pooling (<see cref="GlobalPoolKernel.AverageForward"/>).</summary>
internal sealed class GlobalAveragePoolStep : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput)
    {
        var output = GlobalPoolKernel.AverageOutputShape(input);
        return new Bound(output, input.Size / output.Size);
    }

    private sealed class Bound(Shape output, int spatial) : WritingStep(output)
    {
        protected override void Write(Tensor x, float[] y) => GlobalPoolKernel.Average(x.Span, spatial, y);
    }
}

/// <summary>
/// Flatten or reshape to <c>[N, ...sample]</c>: a view of the step before's own output, made once; of the network's input
/// (which changes from call to call), a copy into an array of its own, so that no call allocates a view.
/// </summary>
internal sealed class ReshapeStep(Shape sample) : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput)
    {
        var output = sample.PrependBatch(input[0]);
        if (output.Size != input.Size)
            throw new ShapeException($"Reshape: cannot reshape {input} ({input.Size} elements) to {output} ({output.Size} elements).");
        return fixedInput is null ? new Copy(output) : new View(fixedInput.Reshape(output));
    }

    private sealed class View(Tensor view) : BoundStep(view.Shape, view)
    {
        public override Tensor Run(Tensor x) => Fixed!;
    }

    private sealed class Copy(Shape output) : WritingStep(output)
    {
        protected override void Write(Tensor x, float[] y) => x.Span.CopyTo(y);
    }
}

/// <summary>A layer that is the identity in inference (dropout, identity, an auxiliary head).</summary>
internal sealed class PassStep : Step
{
    public static readonly PassStep Instance = new();

    public override BoundStep Bind(Shape input, Tensor? fixedInput) => new Bound(input, fixedInput);

    private sealed class Bound(Shape shape, Tensor? fixedInput) : BoundStep(shape, fixedInput)
    {
        public override Tensor Run(Tensor x) => x;
    }
}

/// <summary>
/// A leaf the compiler does not specialise, run by <see cref="Apply"/>'s rule for it: its output and its interpreter's
/// bookkeeping are allocated on every call (its output from the caller's arena).
/// </summary>
internal sealed class FallbackStep(Node leaf, Parameters parameters, Parameters state) : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput) => new Bound(leaf, parameters, state, leaf.Output.PrependBatch(input[0]));

    private sealed class Bound(Node leaf, Parameters parameters, Parameters state, Shape output) : BoundStep(output, null)
    {
        public override Tensor Run(Tensor x) => Apply.EvalLeaf(leaf, parameters, state, x);
    }
}
