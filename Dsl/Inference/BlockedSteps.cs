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

    /// <summary>Runs the step on <paramref name="x"/> (laid out as it was bound for), its work split between the workers, and returns its output buffer.</summary>
    public abstract float[] Run(float[] x);

    /// <summary>
    /// Runs the step on images <c>[n0, n1)</c> of <paramref name="x"/> alone, on the calling thread (several threads at once
    /// on other images), and returns its output buffer, whose other images it leaves as they are.
    /// </summary>
    public abstract float[] Run(float[] x, int n0, int n1);
}

/// <summary>
/// A run of layers on channel-blocked buffers: the network's NCHW input copied once into a bordered planar buffer (the
/// first convolution reads it as it lies), then every step on blocked buffers, and the last one's output copied back to
/// NCHW for the layers after the region.
/// </summary>
/// <remarks>
/// A batch of at least two images per worker runs image by image: each thread takes the next image through the whole
/// region, so that its activations stay in the core's L2 from layer to layer (keras-cifar's at batch 64 are 8-10 MB a
/// layer, which a layer-by-layer pass writes to memory and reads back). A smaller batch runs layer by layer, each layer's
/// work split between the workers. Either way each output is computed by one thread in one order: the same bits.
/// </remarks>
internal sealed class BlockedRegionStep(BlockedSerialStep region, int inputBorder, int border) : Step
{
    public override BoundStep Bind(Shape input, Tensor? fixedInput)
    {
        var planar = new BlockedPlane(input[0], input[1], input[2], input[3], inputBorder, Blocked: false);
        return new Bound(planar, region.Bind(planar, border));
    }

    private sealed class Bound : WritingStep
    {
        private readonly BlockedPlane _plane;
        private readonly BoundBlocked _region;
        private readonly float[] _planar;
        private readonly Action<int, int, int> _images;

        // The call in progress.
        private Tensor? _x;
        private float[]? _y;

        public Bound(BlockedPlane planar, BoundBlocked region) : base(region.Output.Shape)
        {
            (_plane, _region, _planar) = (planar, region, new float[planar.Length]);
            _images = (_, n0, n1) => Images(_x!, _y!, n0, n1);
        }

        protected override void Write(Tensor x, float[] y)
        {
            int n = _plane.N;
            if (n < 2 * BatchParallel.Workers)
            {
                BlockedOps.ToPlanar(x.Span, _plane, _planar, 0, n);
                BlockedOps.ToNchw(_region.Run(_planar), _region.Output, y, 0, n);
                return;
            }
            (_x, _y) = (x, y);
            try { BatchParallel.For(n, n, _images); }
            finally { (_x, _y) = (null, null); }
        }

        private void Images(Tensor x, float[] y, int n0, int n1)
        {
            BlockedOps.ToPlanar(x.Span, _plane, _planar, n0, n1);
            BlockedOps.ToNchw(_region.Run(_planar, n0, n1), _region.Output, y, n0, n1);
        }
    }
}

/// <summary>Blocked steps one after the other.</summary>
internal sealed class BlockedSerialStep(BlockedStep[] steps) : BlockedStep
{
    public IReadOnlyList<BlockedStep> Steps => steps;

    public override int Border => steps.Max(s => s.Border);

    public override IEnumerable<BlockedConvStep> Convolutions() => steps.SelectMany(s => s.Convolutions());

    public override BoundBlocked Bind(BlockedPlane input, int border) => new Bound(BindChain(steps, input, border).Steps);

    /// <summary>
    /// <paramref name="steps"/> bound one after the other, the first to <paramref name="input"/>, each next one to the output
    /// of the one before; and the last one's output (<paramref name="input"/> where there are no steps).
    /// </summary>
    public static (BoundBlocked[] Steps, BlockedPlane Output) BindChain(BlockedStep[] steps, BlockedPlane input, int border)
    {
        var bound = new BoundBlocked[steps.Length];
        for (int i = 0; i < steps.Length; i++)
        {
            bound[i] = steps[i].Bind(input, border);
            input = bound[i].Output;
        }
        return (bound, input);
    }

    private sealed class Bound(BoundBlocked[] steps) : BoundBlocked(steps[^1].Output)
    {
        public override float[] Run(float[] x)
        {
            foreach (var step in steps) x = step.Run(x);
            return x;
        }

        public override float[] Run(float[] x, int n0, int n1)
        {
            foreach (var step in steps) x = step.Run(x, n0, n1);
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

        public override float[] Run(float[] x, int n0, int n1) => Run(x, null, n0, n1);

        /// <summary>The convolution of <paramref name="x"/>, plus <paramref name="residual"/> when given (before the ReLU).</summary>
        public float[] Run(float[] x, float[]? residual)
        {
            conv.Run(x, y, residual);
            return y;
        }

        /// <summary>Images <c>[n0, n1)</c> of <see cref="Run(float[], float[])"/> on the calling thread.</summary>
        public float[] Run(float[] x, float[]? residual, int n0, int n1)
        {
            conv.RunImages(x, y, residual, n0, n1);
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

        public override float[] Run(float[] x, int n0, int n1)
        {
            int blocks = _input.C / BlockedPlane.Lanes;
            BlockedOps.MaxPool(x, _input, _window, _y, Output, n0 * blocks, n1 * blocks);
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
            return _y;
        }

        public override float[] Run(float[] x, int n0, int n1)
        {
            int stride = Output.ImageStride, start = n0 * stride, length = (n1 - n0) * stride;
            var first = branches[0].Run(x, n0, n1).AsSpan(start, length);
            var y = _y.AsSpan(start, length);
            for (int i = 1; i < branches.Length; i++)
                BlockedOps.Sum(i == 1 ? first : y, branches[i].Run(x, n0, n1).AsSpan(start, length), y, relu && i == branches.Length - 1);
            return _y;
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
        var (bodyBound, plane) = BlockedSerialStep.BindChain(body, input, border);
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

        public override float[] Run(float[] x, int n0, int n1)
        {
            var s = shortcut.Run(x, n0, n1);
            var h = x;
            foreach (var step in body) h = step.Run(h, n0, n1);
            return last.Run(h, s, n0, n1);
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

        public override float[] Run(float[] x, int n0, int n1) => x;
    }
}
