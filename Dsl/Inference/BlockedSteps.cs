using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>
/// A step of a channel-blocked region (<see cref="BlockedRegionStep"/>): it reads and writes buffers laid out as
/// <see cref="BlockedPlane"/>s with zero borders, made once per bound plan.
/// </summary>
internal abstract class BlockedStep
{
    /// <summary>The zero border its blocked input needs (a convolution's widest padding; the widest of its parts').</summary>
    public abstract int Border { get; }

    /// <summary>Bound to <paramref name="input"/>, its own output buffers with a border of <paramref name="border"/>.</summary>
    public abstract BoundBlocked Bind(BlockedPlane input, int border);

    /// <summary>The convolutions in it, in order.</summary>
    public virtual IEnumerable<BlockedConvStep> Convolutions() => [];
}

/// <summary>A blocked step bound to one input layout.</summary>
internal abstract class BoundBlocked(BlockedPlane output)
{
    public BlockedPlane Output { get; } = output;

    /// <summary>Runs the step on <paramref name="x"/> (laid out as it was bound for) and returns its output buffer.</summary>
    public abstract float[] Run(float[] x);
}

/// <summary>
/// A run of layers on channel-blocked buffers: the network's NCHW input copied once into a bordered planar buffer (the
/// first convolution reads it as it lies), then every step on blocked buffers, and the last one's output copied back to
/// NCHW for the layers after the region.
/// </summary>
internal sealed class BlockedRegionStep(BlockedSerialStep region, int inputBorder, int border) : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput)
    {
        var planar = new BlockedPlane(input[0], input[1], input[2], input[3], inputBorder, Blocked: false);
        return new Bound(planar, region.Bind(planar, border));
    }

    private sealed class Bound(BlockedPlane planar, BoundBlocked region) : WritingStep(region.Output.Shape)
    {
        private readonly float[] _planar = new float[planar.Length];

        protected override void Write(Tensor x, float[] y)
        {
            BlockedOps.ToPlanar(x.Span, planar, _planar);
            BlockedOps.ToNchw(region.Run(_planar), region.Output, y);
        }
    }
}

/// <summary>Blocked steps one after the other.</summary>
internal sealed class BlockedSerialStep(BlockedStep[] steps) : BlockedStep
{
    public IReadOnlyList<BlockedStep> Steps => steps;

    public override int Border => steps.Max(s => s.Border);

    public override IEnumerable<BlockedConvStep> Convolutions() => steps.SelectMany(s => s.Convolutions());

    public override BoundBlocked Bind(BlockedPlane input, int border)
    {
        var bound = new BoundBlocked[steps.Length];
        for (int i = 0; i < steps.Length; i++)
        {
            bound[i] = steps[i].Bind(input, border);
            input = bound[i].Output;
        }
        return new Bound(bound);
    }

    private sealed class Bound(BoundBlocked[] steps) : BoundBlocked(steps[^1].Output)
    {
        public override float[] Run(float[] x)
        {
            foreach (var step in steps) x = step.Run(x);
            return x;
        }
    }
}

/// <summary>A convolution on <see cref="BlockedConv"/>, its batch normalisation folded and its ReLU fused (<paramref name="parts"/>).</summary>
internal sealed class BlockedConvStep(int filters, ConvGeometry geometry, (float[] Weights, float[]? Bias) packed, PlanCompiler.FusedParts parts)
    : BlockedStep
{
    /// <summary>What the convolution folded and fused, for the compiler's counts.</summary>
    public PlanCompiler.FusedParts Parts => parts;

    public override int Border => Math.Max(geometry.PadBegin.Max(), geometry.PadEnd.Max());

    public override IEnumerable<BlockedConvStep> Convolutions() => [this];

    public override BoundBlocked Bind(BlockedPlane input, int border) => Bind(input, border, parts.Activation == FusedActivation.Relu);

    /// <summary>Bound with a ReLU of <paramref name="relu"/>: a residual's last convolution takes the one after the sum.</summary>
    public Bound Bind(BlockedPlane input, int border, bool relu)
    {
        var conv = new BlockedConv(input, geometry, packed, filters, relu, border);
        return new Bound(conv, new float[conv.Output.Length]);
    }

    public sealed class Bound(BlockedConv conv, float[] y) : BoundBlocked(conv.Output)
    {
        public override float[] Run(float[] x) => Run(x, null);

        /// <summary>The convolution of <paramref name="x"/>, plus <paramref name="residual"/> when given (before the ReLU).</summary>
        public float[] Run(float[] x, float[]? residual)
        {
            conv.Run(x, y, residual);
            return y;
        }
    }
}

/// <summary>2-d max pooling on blocked buffers (<see cref="BlockedOps.MaxPool"/>), split by channel blocks between the workers.</summary>
internal sealed class BlockedMaxPoolStep(Window2d window, bool ceilMode) : BlockedStep
{
    public override int Border => 0;

    public override BoundBlocked Bind(BlockedPlane input, int border)
    {
        var (h, w) = PoolingSize.Output2d(window, input.Shape, ceilMode, "MaxPool2d");
        return new Bound(input, input with { H = h, W = w, Border = border }, window);
    }

    private sealed class Bound : BoundBlocked
    {
        private readonly BlockedPlane _input;
        private readonly Window2d _window;
        private readonly float[] _y;
        private readonly Action<int, int, int> _body;
        private float[]? _x;

        public Bound(BlockedPlane input, BlockedPlane output, Window2d window) : base(output)
        {
            (_input, _window, _y) = (input, window, new float[output.Length]);
            _body = (_, start, end) => BlockedOps.MaxPool(_x!, _input, _window, _y, Output, start, end);
        }

        public override float[] Run(float[] x)
        {
            _x = x;
            int blocks = _input.N * _input.C / BlockedPlane.Lanes;
            BatchParallel.For(blocks, _body);
            _x = null;
            return _y;
        }
    }
}

/// <summary>Branches fed by the same blocked input, summed in order (then ReLU when the layer after the sum is one).</summary>
internal sealed class BlockedSumStep(BlockedStep[] branches, bool relu) : BlockedStep
{
    public override int Border => branches.Max(b => b.Border);

    public override IEnumerable<BlockedConvStep> Convolutions() => branches.SelectMany(b => b.Convolutions());

    public override BoundBlocked Bind(BlockedPlane input, int border)
    {
        var bound = branches.Select(b => b.Bind(input, border)).ToArray();
        foreach (var b in bound)
            if (b.Output != bound[0].Output)
                throw new ShapeException($"Add: expected branches of the same shape; found {bound[0].Output.Shape} and {b.Output.Shape}.");
        return new Bound(bound, relu);
    }

    private sealed class Bound(BoundBlocked[] branches, bool relu) : BoundBlocked(branches[0].Output)
    {
        private readonly float[] _y = new float[branches[0].Output.Length];

        public override float[] Run(float[] x)
        {
            var first = branches[0].Run(x);
            for (int i = 1; i < branches.Length; i++)
                BlockedOps.Sum(i == 1 ? first : _y, branches[i].Run(x), _y, relu && i == branches.Length - 1);
            return branches.Length == 1 ? first : _y;
        }
    }
}

/// <summary>
/// A residual block whose branch ends in a convolution without its own activation: the shortcut runs first, then the
/// branch, whose last convolution adds the shortcut and applies the ReLU after the sum as it writes its output
/// (<c>relu((conv + bias) + shortcut)</c>, the operations of the convolution, the sum and the ReLU layer, in their order),
/// so the sum takes no pass of its own.
/// </summary>
internal sealed class BlockedResidualStep(BlockedStep[] body, BlockedConvStep last, BlockedStep shortcut, bool relu) : BlockedStep
{
    public override int Border => Math.Max(Math.Max(last.Border, shortcut.Border), body.Select(b => b.Border).DefaultIfEmpty(0).Max());

    public override IEnumerable<BlockedConvStep> Convolutions() => body.SelectMany(b => b.Convolutions()).Append(last).Concat(shortcut.Convolutions());

    public override BoundBlocked Bind(BlockedPlane input, int border)
    {
        var bodyBound = new BoundBlocked[body.Length];
        var plane = input;
        for (int i = 0; i < body.Length; i++)
        {
            bodyBound[i] = body[i].Bind(plane, border);
            plane = bodyBound[i].Output;
        }
        var lastBound = last.Bind(plane, border, relu);
        var shortcutBound = shortcut.Bind(input, border);
        if (shortcutBound.Output != lastBound.Output)
            throw new ShapeException($"Add: expected branches of the same shape; found {lastBound.Output.Shape} and {shortcutBound.Output.Shape}.");
        return new Bound(bodyBound, lastBound, shortcutBound);
    }

    private sealed class Bound(BoundBlocked[] body, BlockedConvStep.Bound last, BoundBlocked shortcut) : BoundBlocked(last.Output)
    {
        public override float[] Run(float[] x)
        {
            var s = shortcut.Run(x);
            var h = x;
            foreach (var step in body) h = step.Run(h);
            return last.Run(h, s);
        }
    }
}

/// <summary>A layer that is the identity in inference (dropout, identity).</summary>
internal sealed class BlockedPassStep : BlockedStep
{
    public static readonly BlockedPassStep Instance = new();

    public override int Border => 0;

    public override BoundBlocked Bind(BlockedPlane input, int border) => new Bound(input);

    private sealed class Bound(BlockedPlane input) : BoundBlocked(input)
    {
        public override float[] Run(float[] x) => x;
    }
}
