using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>
/// One node of a compiled inference plan, for any input shape: immutable, shared by every caller. A caller binds it to
/// the input shape it sees (<see cref="Bind"/>), once, and runs the bound step on every call of that shape.
/// </summary>
internal abstract class Step
{
    /// <summary>
    /// This step bound to inputs of shape <paramref name="input"/>: its output tensor, the kernels' sizes and parallel bodies
    /// made once.
    /// </summary>
    /// <param name="input">The input's shape (batch first).</param>
    /// <param name="fixedInput">The tensor every call will pass (the step before's own output), or null when it changes.</param>
    /// <exception cref="ShapeException">The shape does not fit the step (shape inference rules this out for a network's own input).</exception>
    public abstract BoundStep Bind(Shape input, Tensor? fixedInput);
}

/// <summary>Steps one after the other.</summary>
internal sealed class SerialStep(Step[] steps) : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput)
    {
        var bound = new BoundStep[steps.Length];
        for (int i = 0; i < steps.Length; i++)
        {
            bound[i] = steps[i].Bind(input, fixedInput);
            (input, fixedInput) = (bound[i].Output, bound[i].Fixed);
        }
        return new Bound(bound);
    }

    private sealed class Bound(BoundStep[] steps) : BoundStep(steps[^1].Output, steps[^1].Fixed)
    {
        public override Tensor Run(Tensor x)
        {
            foreach (var step in steps) x = step.Run(x);
            return x;
        }
    }
}

/// <summary>Branches fed by the same input, summed in order (as <see cref="Apply"/> sums them), concatenated along channels, or multiplied.</summary>
internal sealed class JoinStep(Step[] branches, Join join) : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput)
    {
        var bound = branches.Select(b => b.Bind(input, fixedInput)).ToArray();
        return join switch
        {
            Join.Concat => new Concat(bound),
            // A product join has exactly two branches, which broadcast (a squeeze-and-excitation gate over the image).
            Join.Product => new Product(bound[0], bound[1]),
            _ when bound.Length == 1 => bound[0],
            _ => new Sum(bound),
        };
    }

    /// <summary>((b0 + b1) + b2) + ..., as <see cref="TensorOps.Add"/> adds them pairwise (the same element sums).</summary>
    private sealed class Sum : WritingStep
    {
        private readonly BoundStep[] _branches;

        public Sum(BoundStep[] branches) : base(branches[0].Output)
        {
            foreach (var b in branches)
                if (b.Output != Output) throw new ShapeException($"Add: expected two tensors of the same shape; found {Output} and {b.Output}.");
            _branches = branches;
        }

        protected override void Write(Tensor x, float[] y)
        {
            var first = _branches[0].Run(x);
            TensorPrimitives.Add(first.Span, _branches[1].Run(x).Span, y);
            for (int i = 2; i < _branches.Length; i++) TensorPrimitives.Add(y, _branches[i].Run(x).Span, y);
        }
    }

    private sealed class Concat(BoundStep[] branches) : WritingStep(TensorOps.ConcatShape(branches, static b => b.Output))
    {
        private readonly Tensor[] _parts = new Tensor[branches.Length];

        protected override void Write(Tensor x, float[] y)
        {
            for (int i = 0; i < _parts.Length; i++) _parts[i] = branches[i].Run(x);
            TensorOps.ConcatChannels(_parts, Output, y);
            // Not kept past the call: a part may be the caller's input.
            Array.Clear(_parts);
        }
    }

    private sealed class Product : WritingStep
    {
        private readonly BoundStep _a, _b;
        private readonly BroadcastKernel.Plan _plan;

        public Product(BoundStep a, BoundStep b) : this(a, b, new BroadcastKernel.Plan(a.Output, b.Output)) { }

        private Product(BoundStep a, BoundStep b, BroadcastKernel.Plan plan) : base(plan.OutputShape) => (_a, _b, _plan) = (a, b, plan);

        protected override void Write(Tensor x, float[] y)
        {
            var a = _a.Run(x);
            _plan.Run(BinaryOp.Multiply, a.Span, _b.Run(x).Span, y);
        }
    }
}
