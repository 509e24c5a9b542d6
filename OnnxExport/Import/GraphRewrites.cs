using Cnn.Core;
using Cnn.Onnx.Proto;
using AttributeType = Cnn.Onnx.Proto.AttributeProto.Types.AttributeType;

namespace Cnn.Onnx;

/// <summary>
/// Rewrites of the data-flow nodes that leave what the graph computes unchanged but bring real exporters' graphs
/// into the series-parallel form the walker reads: a Pad of zeros and a Concat of one operand that starts a longer one are left out, and
/// a Concat that repeats another Concat's operands and adds some (DenseNet's <c>torch.cat(features)</c> in every
/// layer) concatenates that Concat's result instead, which turns a dense block into a chain of forks. A spatial
/// ReduceMean or ReduceMax with keepdims 0 (ShuffleNet v2's <c>x.mean([2, 3])</c>) becomes the same reduction with
/// keepdims 1 followed by a Squeeze of the reduced axes.
/// </summary>
internal static class GraphRewrites
{
    /// <summary>Rewrites <paramref name="nodes"/> in place, naming each rewrite in <paramref name="log"/>.</summary>
    public static void Apply(List<NodeProto> nodes, ConstantTable constants, string graphOutput, long opset, List<string> log)
    {
        for (int i = 0; i < nodes.Count; i++)
        {
            var node = nodes[i];
            string? reason = node.OpType switch
            {
                "Pad" when IsZeroPad(node, constants, opset) => "pads nothing",
                "Concat" when node.Input.Count(x => x.Length > 0) == 1 && node.Output.Count == 1 && StartsConcatenation(node, nodes) =>
                    "has one operand, the first of a longer Concat",
                _ => null,
            };
            if (reason is null) continue;
            string from = node.Output[0], to = node.Input[0];
            if (from == graphOutput)
            {
                // The graph's output keeps its name: an identity layer takes the node's place.
                nodes[i] = new NodeProto { Name = node.Name, OpType = "Identity", Input = { to }, Output = { from } };
            }
            else
            {
                foreach (var other in nodes)
                    for (int k = 0; k < other.Input.Count; k++)
                        if (other.Input[k] == from) other.Input[k] = to;
                nodes.RemoveAt(i--);
            }
            log.Add($"node '{node.Name}' ({node.OpType}) {reason}: left out");
        }
        Reassociate(nodes, constants, log);
        KeepReducedAxes(nodes, log);
    }

    /// <summary>
    /// ReduceMean or ReduceMax with keepdims 0 becomes the reduction with keepdims 1, then a Squeeze of the reduced axes
    /// (the same axes, now of size 1), which is what keepdims 0 means on any axes. A reduction without axes (every axis) is
    /// left for the layer reader to refuse with its reason.
    /// </summary>
    private static void KeepReducedAxes(List<NodeProto> nodes, List<string> log)
    {
        for (int i = 0; i < nodes.Count; i++)
        {
            var node = nodes[i];
            if (node.OpType is not ("ReduceMean" or "ReduceMax") || node.Output.Count != 1) continue;
            var keep = node.Attribute.FirstOrDefault(a => a.Name == "keepdims" && a.Type == AttributeType.Int);
            if (keep is null || keep.I != 0) continue;
            // Opset 18 moved the axes from an attribute to a second input; the Squeeze takes them the same way.
            var axes = node.Attribute.FirstOrDefault(a => a.Name == "axes" && a.Type == AttributeType.Ints);
            bool axesInput = node.Input.Count > 1 && node.Input[1].Length > 0;
            if (axes is null && !axesInput) continue;
            string output = node.Output[0], kept = output + "/keepdims";
            keep.I = 1;
            node.Output[0] = kept;
            var squeeze = new NodeProto { Name = (node.Name.Length > 0 ? node.Name : output) + "/Squeeze", OpType = "Squeeze", Input = { kept }, Output = { output } };
            if (axesInput) squeeze.Input.Add(node.Input[1]);
            else squeeze.Attribute.Add(axes!.Clone());
            nodes.Insert(i + 1, squeeze);
            log.Add($"node '{node.Name}' ({node.OpType}) keeps no reduced axes: read as the reduction keeping them, then a Squeeze of those axes");
        }
    }

    /// <summary>
    /// Whether the operand of a one-operand Concat is also the first operand of a longer Concat on the same axis
    /// (torch.cat of a list that grows, as in DenseNet). A one-operand Concat elsewhere is left alone: this project's
    /// exporter writes a FanOut of one branch so, and the walker reads that back as the FanOut.
    /// </summary>
    private static bool StartsConcatenation(NodeProto node, List<NodeProto> nodes)
    {
        long Axis(NodeProto n) => n.Attribute.FirstOrDefault(a => a.Name == "axis")?.I ?? 0;
        return nodes.Any(n => n.OpType == "Concat" && n.Input.Count > 1 && n.Input[0] == node.Input[0] && Axis(n) == Axis(node));
    }

    private static bool IsZeroPad(NodeProto node, ConstantTable constants, long opset)
    {
        string mode = node.Attribute.FirstOrDefault(a => a.Name == "mode")?.S.ToStringUtf8() ?? "constant";
        long[]? pads;
        try
        {
            pads = opset < 11
                ? node.Attribute.FirstOrDefault(a => a.Name == "pads" && a.Type == AttributeType.Ints)?.Ints.ToArray()
                : node.Input.Count > 1 && node.Input[1].Length > 0 && constants.TryGet(node.Input[1], out var p) ? p.Integers : null;
        }
        catch (CnnException)
        {
            // Pads computed from shapes not yet inferred: the node is read (and refused with its reason) in the walk.
            return false;
        }
        bool axes = node.Input.Count > 3 && node.Input[3].Length > 0;
        return pads is not null && pads.All(v => v == 0) && !axes && mode is "constant" or "reflect" or "edge" or "wrap";
    }

    /// <summary>Concat(a, b, ..., y, z) where Concat(a, b, ..., y) = t exists on the same axis becomes Concat(t, z).</summary>
    private static void Reassociate(List<NodeProto> nodes, ConstantTable constants, List<string> log)
    {
        var concats = nodes.Where(n => n.OpType == "Concat" && n.Output.Count == 1 && n.Input.All(x => x.Length > 0 && !constants.Contains(x))).ToList();
        var original = new Dictionary<NodeProto, string[]>(ReferenceEqualityComparer.Instance);
        foreach (var n in concats) original[n] = n.Input.ToArray();
        long Axis(NodeProto n) => n.Attribute.FirstOrDefault(a => a.Name == "axis")?.I ?? 0;
        foreach (var c in concats)
        {
            var inputs = original[c];
            NodeProto? best = null;
            foreach (var p in concats)
            {
                var prefix = original[p];
                if (ReferenceEquals(p, c) || prefix.Length < 2 || prefix.Length >= inputs.Length || Axis(p) != Axis(c)) continue;
                if (!prefix.SequenceEqual(inputs.Take(prefix.Length), StringComparer.Ordinal)) continue;
                if (best is null || original[best].Length < prefix.Length) best = p;
            }
            if (best is null) continue;
            int skipped = original[best].Length;
            c.Input.Clear();
            c.Input.Add(best.Output[0]);
            c.Input.AddRange(inputs.Skip(skipped));
            log.Add($"node '{c.Name}' (Concat): its first {skipped} operands are node '{best.Name}''s, whose result it concatenates instead");
        }
    }
}
