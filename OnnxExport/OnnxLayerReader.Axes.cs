using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Onnx;

internal sealed partial class OnnxLayerReader
{
    /// <summary>
    /// Squeeze and Unsqueeze of axes other than the batch axis: a <see cref="Reshape"/> of the sample (a <see cref="Flatten"/>
    /// where a Squeeze leaves only the channels). The axes are an
    /// input from opset 13 on and an attribute before.
    /// </summary>
    private LeafLayer SqueezeOrUnsqueeze(NodeProto node, Attributes a, Shape input)
    {
        a.Allow("axes");
        bool squeeze = node.OpType == "Squeeze";
        long[]? axes = HasInput(node, 1) ? Constant(node, 1, "axes").Integers : a.Ints("axes");
        if (axes is null)
            throw squeeze
                ? Unsupported(node, "no axes, which squeezes every axis of size 1, the batch axis too when a batch has one sample")
                : new FormatException($"{Where(node)} has no axes.");
        int rank = input.Rank + 1 + (squeeze ? 0 : axes.Length);
        var resolved = axes.Select(x => x < 0 ? x + rank : x).ToHashSet();
        if (resolved.Count != axes.Length || resolved.Any(x => x < 0 || x >= rank))
            throw new FormatException($"{Where(node)}: axes [{string.Join(", ", axes)}] repeat an axis or fall outside the {rank} axes of its {(squeeze ? "input" : "output")}.");
        if (resolved.Contains(0)) throw Unsupported(node, $"axes [{string.Join(", ", axes)}], which include the batch axis 0");
        var dims = new List<int>();
        if (squeeze)
        {
            for (int i = 1; i < rank; i++)
                if (!resolved.Contains(i)) dims.Add(input[i - 1]);
                else if (input[i - 1] != 1)
                    throw new FormatException($"{Where(node)}: axis {i} of input [N, {string.Join(", ", input)}] has size {input[i - 1]}; Squeeze removes axes of size 1.");
        }
        else
        {
            int next = 0;
            for (int i = 1; i < rank; i++) dims.Add(resolved.Contains(i) ? 1 : input[next++]);
        }
        // Squeezing every axis after the channels (a spatial reduction that keeps no axes) is what Flatten computes, and reads as one.
        return squeeze && dims.Count == 1 ? new Flatten() : new Reshape(new Shape(dims.ToArray()));
    }

    /// <summary>Transpose outside a channel shuffle: a permutation that keeps the batch axis first is <see cref="Permute"/> (the identity, <see cref="Identity"/>).</summary>
    private LeafLayer Transpose(NodeProto node, Attributes a, Shape input)
    {
        a.Allow("perm");
        int rank = input.Rank + 1;
        // Without perm, Transpose reverses the axes.
        var perm = a.Ints("perm") ?? Enumerable.Range(0, rank).Reverse().Select(i => (long)i).ToArray();
        if (perm.Length != rank || perm.Order().Where((p, i) => p != i).Any())
            throw new FormatException($"{Where(node)}: perm [{string.Join(", ", perm)}] is not a permutation of the {rank} axes of input [N, {string.Join(", ", input)}].");
        if (perm[0] != 0) throw Unsupported(node, $"perm [{string.Join(", ", perm)}], which moves the batch axis 0");
        // A permutation of the sample's axes alone (the batch first) is Permute; the identity is Identity.
        return perm.Where((p, i) => p != i).Any() ? new Permute(perm.Skip(1).Select(p => checked((int)p - 1)).ToArray()) : new Identity();
    }
}
