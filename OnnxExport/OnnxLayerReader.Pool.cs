using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;

namespace Cnn.Onnx;

internal sealed partial class OnnxLayerReader
{
    /// <summary>A pooling node's window, resolved from its attributes (auto_pad included).</summary>
    private sealed record PoolSpec(bool Max, long[] Kernel, long[] Strides, long[] Begin, long[] End, bool OnnxCeil, bool CountPad, long[] Dilations)
    {
        /// <summary>The input elements a window spans along axis <paramref name="i"/>, dilation included.</summary>
        public long Reach(int i) => (Kernel[i] - 1) * Dilations[i] + 1;
    }

    /// <summary>
    /// The layers of <paramref name="node"/>: one, except for a 2-d pooling whose padding no pooling layer reproduces
    /// (asymmetric, SAME, or more than half the window), which is read as an explicit <see cref="Pad2d"/> and the pooling
    /// without padding when that computes the same windows: an undilated maximum (padded with the most negative float, since a padding
    /// value is finite: the two differ only where every value a window sees is -infinity) or an average that counts the
    /// padding (padded with zeros), in floor mode. An average in floor mode with each padding below the window is one
    /// <see cref="AvgPool2d"/>, which takes ONNX's padding as it is.
    /// </summary>
    public IReadOnlyList<LeafItem> ReadLayers(NodeProto node, Shape input)
    {
        if (node.OpType is "MaxPool" or "AveragePool" && input.Rank == 3)
        {
            CheckExtraOutputs(node);
            var p = PoolSpecOf(node, new Attributes(node, Where(node)), input);
            if (p.Kernel.Length == 2 && SingleLayerCeil(p, input).Ceil is null && !p.OnnxCeil && (p.Max || p.CountPad && OnnxPaddedAverage(p) is null)
                && (!p.Max || Enumerable.Range(0, 2).All(i => p.Begin[i] < p.Kernel[i] && p.End[i] < p.Kernel[i] && p.Dilations[i] == 1)))
            {
                int I(long v) => checked((int)v);
                var pad = new Pad2d(I(p.Begin[0]), I(p.End[0]), I(p.Begin[1]), I(p.End[1]), PadMode.Constant, p.Max ? float.MinValue : 0f);
                var padded = OutputShape(pad, node, input);
                var pool = PoolLayer(node, p, new long[2], ceil: false);
                var none = Array.Empty<(string, Tensor)>();
                return new[]
                {
                    new LeafItem(pad, (node.Name.Length > 0 ? node.Name : node.Output[0]) + "/Pad", padded, none, none),
                    new LeafItem(pool, node.Name, OutputShape(pool, node, padded), none, none),
                };
            }
        }
        return new[] { Read(node, input) };
    }

    private LeafLayer Pool(NodeProto node, Attributes a, Shape input)
    {
        var p = PoolSpecOf(node, a, input);
        var (ceil, why) = SingleLayerCeil(p, input);
        if (ceil is bool found) return PoolLayer(node, p, p.Begin, found);
        return OnnxPaddedAverage(p) ?? throw Unsupported(node, why);
    }

    /// <summary>
    /// A 2-d average in floor mode as one <see cref="AvgPool2d"/> with ONNX's padding as it is (ends that differ, beyond half
    /// the window), when each padding is below the window; else null.
    /// </summary>
    private static AvgPool2d? OnnxPaddedAverage(PoolSpec p)
    {
        if (p.Max || p.OnnxCeil || p.Kernel.Length != 2 || !Enumerable.Range(0, 2).All(i => p.Begin[i] < p.Kernel[i] && p.End[i] < p.Kernel[i])) return null;
        int I(long v) => checked((int)v);
        int? End(int i) => p.End[i] == p.Begin[i] ? null : I(p.End[i]);
        return new AvgPool2d(I(p.Kernel[0]), I(p.Kernel[1]), I(p.Strides[0]), I(p.Strides[1]), I(p.Begin[0]), I(p.Begin[1]), false, p.CountPad, End(0), End(1));
    }

    private PoolSpec PoolSpecOf(NodeProto node, Attributes a, Shape input)
    {
        bool max = node.OpType == "MaxPool";
        if (max) a.Allow("kernel_shape", "strides", "pads", "dilations", "ceil_mode", "storage_order", "auto_pad");
        else a.Allow("kernel_shape", "strides", "pads", "dilations", "ceil_mode", "count_include_pad", "auto_pad");
        var kernel = a.Ints("kernel_shape") ?? throw new Cnn.Core.FormatException($"{Where(node)} has no kernel_shape.");
        int spatial = kernel.Length;
        if (spatial is < 1 or > 3) throw Unsupported(node, $"a {spatial}-d window; 1-d, 2-d and 3-d pooling are supported");
        CheckRank(node, input, spatial + 1);
        var strides = a.Ints("strides") ?? Ones(spatial);
        var dilations = a.Ints("dilations") ?? Ones(spatial);
        CheckLength(node, "strides", strides, spatial);
        CheckLength(node, "dilations", dilations, spatial);
        if (dilations.Any(d => d != 1) && !(max && spatial == 2))
            throw Unsupported(node, $"a dilated window [{string.Join(", ", dilations)}] of a {spatial}-d {(max ? "maximum" : "average")}; only 2-d max pooling (MaxPool2d) is dilated, as in PyTorch");
        var (pads, ends) = Padding(node, a, input, kernel, strides, dilations);
        return new PoolSpec(max, kernel, strides, pads, ends, a.Int("ceil_mode", 0) != 0, !max && a.Int("count_include_pad", 0) != 0, dilations);
    }

    /// <summary>The ceil mode with which one pooling layer padding both sides by the leading padding has ONNX's windows (and divisors), or why none has.</summary>
    private static (bool? Ceil, string Why) SingleLayerCeil(PoolSpec p, Shape input)
    {
        int spatial = p.Kernel.Length;
        for (int i = 0; i < spatial; i++)
            if (2 * p.Begin[i] > p.Kernel[i])
                return (null, $"padding {p.Begin[i]} larger than half the window {p.Kernel[i]}; pooling layers allow at most half (an average in floor mode, any padding below the window)");
        // A dilated window (a maximum: no divisors) is in floor mode; its windows span the dilated reach.
        bool dilated = p.Dilations.Any(d => d != 1);
        foreach (bool candidate in spatial == 2 && !dilated ? new[] { p.OnnxCeil, !p.OnnxCeil } : new[] { false })
            if (Enumerable.Range(0, spatial).All(i => PoolWindows.Same(input[i + 1], p.Reach(i), p.Strides[i], p.Begin[i], candidate, p.End[i], p.OnnxCeil, p.CountPad)))
                return (candidate, "");
        return (null,
            $"padding [{string.Join(", ", p.Begin.Concat(p.End))}] with ceil_mode {(p.OnnxCeil ? 1 : 0)} on input [N, {string.Join(", ", input)}], whose windows no layer " +
            "reproduces (layers pad both sides equally, and in ceil mode drop a last window that starts in the padding; an explicit Pad2d before the pooling " +
            "serves a maximum or an average that counts the padding, and AvgPool2d's own padding an average in floor mode with each padding below the window)");
    }

    private LeafLayer PoolLayer(NodeProto node, PoolSpec p, long[] pads, bool ceil)
    {
        int I(long v) => checked((int)v);
        var (kernel, strides) = (p.Kernel, p.Strides);
        if (kernel.Length == 2)
            return p.Max
                ? new MaxPool2d(I(kernel[0]), I(kernel[1]), I(strides[0]), I(strides[1]), I(pads[0]), I(pads[1]), ceil, I(p.Dilations[0]), I(p.Dilations[1]))
                : new AvgPool2d(I(kernel[0]), I(kernel[1]), I(strides[0]), I(strides[1]), I(pads[0]), I(pads[1]), ceil, p.CountPad);
        if (kernel.Distinct().Count() != 1 || strides.Distinct().Count() != 1 || pads.Distinct().Count() != 1)
            throw Unsupported(node, "1-d or 3-d pooling with sizes that differ per axis; PoolNd has one kernel size, stride and padding");
        // Counting padding means nothing to a maximum: it keeps the record's default.
        return new PoolNd(p.Max ? PoolOp.Max : PoolOp.Average, I(kernel[0]), I(strides[0]), I(pads[0]), p.Max || p.CountPad);
    }
}
