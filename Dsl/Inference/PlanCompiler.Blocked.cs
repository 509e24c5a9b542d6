using Cnn.Core.Kernels;

namespace Cnn.Dsl;

internal sealed partial class PlanCompiler
{
    /// <summary>How many convolutions run on the channel-blocked kernel (<see cref="BlockedConv"/>).</summary>
    public int BlockedConvolutions { get; private set; }

    /// <summary>
    /// The longest channel-blocked region starting at the convolution at <paramref name="i"/> (<see cref="BlockedRegionStep"/>),
    /// or null when there is none: the CPU has neither AVX-512 nor AVX2 with FMA, or the layer at <paramref name="i"/> is not a convolution the
    /// blocked kernel takes. The region goes on through convolutions it takes (with their folded batch normalisation and
    /// ReLU), max pooling, dropout and identity, and residual sums (with the ReLU after them) whose branches it takes whole.
    /// </summary>
    private (Step, int)? Blocked(List<Node> run, int i)
    {
        if (!BlockedConv.Available || BlockedConvPart(run, i) is not { } start) return null;
        var (first, used) = start;
        var steps = new List<BlockedStep> { first };
        int j = i + used;
        while (j < run.Count && BlockedPart(run, j) is { } part)
        {
            steps.Add(part.Item1);
            j += part.Item2;
        }
        var region = new BlockedSerialStep(steps.ToArray());
        foreach (var conv in region.Convolutions())
        {
            Count(conv.Parts);
            BlockedConvolutions++;
        }
        // The first convolution reads the planar copy of the region's input; the others read blocked buffers whose border
        // is the widest padding among them.
        int border = steps.Skip(1).Select(s => s.Border).DefaultIfEmpty(0).Max();
        return (new BlockedRegionStep(region, first.Border, border), j - i);
    }

    /// <summary>The layer at <paramref name="j"/> (with what it absorbs) as a blocked step, and the layers it takes; null when it is not one.</summary>
    private (BlockedStep, int)? BlockedPart(List<Node> run, int j)
    {
        switch (run[j].Layer)
        {
            case Dropout or Identity:
                return (BlockedPassStep.Instance, 1);
            case MaxPool2d { Dilated: false } m:
                return (new BlockedMaxPoolStep(new Window2d(m.KernelH, m.KernelW, m.StrideH, m.StrideW, m.PadH, m.PadW), m.CeilMode), 1);
            case Residual or FanOut { Join: Join.Sum }:
            {
                var branches = new List<BlockedStep>();
                foreach (var child in run[j].Children)
                {
                    if (BlockedBranch(child) is not { } branch) return null;
                    branches.Add(branch);
                }
                // One branch: the ReLU after it would have no sum to join.
                if (branches.Count < 2) return null;
                bool relu = j + 1 < run.Count && run[j + 1].Layer is Relu;
                int used = relu ? 2 : 1;
                // A branch ending in a convolution without an activation of its own adds the other as it writes.
                var body = branches[0] is BlockedSerialStep serial ? serial.Steps.ToArray() : new[] { branches[0] };
                if (branches.Count == 2 && body[^1] is BlockedConvStep { Parts.Activation: FusedActivation.None } last)
                    return (new BlockedResidualStep(body[..^1], last, branches[1], relu), used);
                return (new BlockedSumStep(branches.ToArray(), relu), used);
            }
            default:
                return BlockedConvPart(run, j) is { } conv ? conv : null;
        }
    }

    /// <summary>A branch of a sum as one blocked step, when every layer of it has one.</summary>
    private BlockedStep? BlockedBranch(Node node)
    {
        var run = new List<Node>();
        Unnest(node, run);
        var steps = new List<BlockedStep>();
        for (int j = 0; j < run.Count;)
        {
            if (BlockedPart(run, j) is not { } part) return null;
            steps.Add(part.Item1);
            j += part.Item2;
        }
        return steps.Count == 0 ? BlockedPassStep.Instance : new BlockedSerialStep(steps.ToArray());
    }

    /// <summary>The convolution at <paramref name="j"/> with its folded batch normalisation and ReLU, when the blocked kernel takes it.</summary>
    private (BlockedConvStep, int)? BlockedConvPart(List<Node> run, int j)
    {
        // The window first: the fold of a batch normalisation that follows is made only for a convolution the kernel takes
        // (the plan's other path makes its own).
        if (run[j].Layer is not Conv2d conv || Apply.ConvolutionSpec(conv).Geometry is not { } geometry || !BlockedConv.Covers(geometry, conv.Filters)
            || Parts(run, j) is not { } parts || parts.Activation is not (FusedActivation.None or FusedActivation.Relu))
            return null;
        return (new BlockedConvStep(parts.Weight.Shape[0], geometry, ChannelTileConv.Pack(parts.Weight.Span, parts.Bias, conv.Filters), parts), parts.Used);
    }
}
