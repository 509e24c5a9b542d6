using Cnn.Onnx.Proto;

namespace Cnn.Onnx;

/// <summary>
/// Finds the decompositions of activations that ONNX has no single operation for (or had none before some opset) and
/// replaces each with one node of <see cref="Domain"/>, which <see cref="OnnxLayerReader"/> reads as one layer: SiLU as
/// <c>Mul(x, Sigmoid(x))</c>; hard swish before opset 14 as <c>Mul(x, HardSigmoid(x))</c> with PyTorch's alpha 1/6 and beta
/// 1/2; exact GELU before opset 20 as PyTorch's exporter and ours write it, <c>Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)</c>
/// (the operands of Mul and Add in either order). A pattern is fused only when its inner values are read by nothing else,
/// so nothing outside it is lost.
/// </summary>
/// <remarks>
/// The fused node takes the name of the pattern's first node, which the exporter names after the layer's path; its one
/// input is <c>x</c> and its output the pattern's last. The domain is this project's own, so a model cannot bring such
/// nodes in: the importer refuses foreign domains before this pass runs.
/// </remarks>
internal static class OnnxActivationFusion
{
    /// <summary>The domain of the fused nodes.</summary>
    public const string Domain = "cnn.dsl.fused";

    /// <summary>The operation names of the fused nodes.</summary>
    public const string Silu = "Silu", HardSwish = "HardSwish", Gelu = "Gelu";

    /// <summary>The nodes with every recognised decomposition replaced by one fused node, in the original order otherwise.</summary>
    public static NodeProto[] Fuse(NodeProto[] nodes, IReadOnlyDictionary<string, OnnxConstant> constants)
    {
        var readers = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Length; i++)
            foreach (var x in nodes[i].Input.Where(x => x.Length > 0))
            {
                if (!readers.TryGetValue(x, out var list)) readers[x] = list = new List<int>();
                list.Add(i);
            }
        var removed = new HashSet<int>();
        var replacement = new Dictionary<int, NodeProto>();

        // The one node that reads value v (and reads it once), if v has exactly one reader.
        int? Only(string v) => readers.TryGetValue(v, out var list) && list.Count == 1 ? list[0] : null;
        bool Is(int n, string op) => nodes[n].OpType == op && nodes[n].Domain is "" or "ai.onnx" && !removed.Contains(n) && !replacement.ContainsKey(n) && nodes[n].Output.Count == 1;
        bool Scalar(string name, float value, float tolerance) =>
            constants.TryGetValue(name, out var c) && c.Floats is { Length: 1 } f && MathF.Abs(f[0] - value) <= tolerance;
        // The other operand of a two-input node, when one operand is `known`.
        string? Other(int n, string known) => nodes[n].Input is { Count: 2 } i ? i[0] == known ? i[1] : i[1] == known ? i[0] : null : null;

        for (int g = 0; g < nodes.Length; g++)
        {
            var gate = nodes[g];
            if (gate.Input.Count == 0 || removed.Contains(g)) continue;
            string x = gate.Input[0];
            if ((Is(g, "Sigmoid") || (Is(g, "HardSigmoid") && IsPyTorchHardSigmoid(gate))) && Only(gate.Output[0]) is int mul
                && Is(mul, "Mul") && Other(mul, gate.Output[0]) == x)
            {
                Replace(g, new[] { mul }, gate.OpType == "Sigmoid" ? Silu : HardSwish, x, nodes[mul].Output[0]);
                continue;
            }
            if (Is(g, "Div") && gate.Input.Count == 2 && Scalar(gate.Input[1], MathF.Sqrt(2f), 1e-6f)
                && Only(gate.Output[0]) is int erf && Is(erf, "Erf")
                && Only(nodes[erf].Output[0]) is int add && Is(add, "Add") && Other(add, nodes[erf].Output[0]) is { } one && Scalar(one, 1f, 0f)
                && Only(nodes[add].Output[0]) is int times && Is(times, "Mul") && Other(times, nodes[add].Output[0]) == x
                && Only(nodes[times].Output[0]) is int half && Is(half, "Mul") && Other(half, nodes[times].Output[0]) is { } h && Scalar(h, 0.5f, 0f))
                Replace(g, new[] { erf, add, times, half }, Gelu, x, nodes[half].Output[0]);
        }
        return nodes.Select((n, i) => replacement.TryGetValue(i, out var r) ? r : removed.Contains(i) ? null : n).OfType<NodeProto>().ToArray();

        void Replace(int first, int[] rest, string op, string input, string output)
        {
            var fused = new NodeProto { Name = nodes[first].Name, OpType = op, Domain = Domain };
            fused.Input.Add(input);
            fused.Output.Add(output);
            // The last node's place keeps the order topological: every input of the pattern is computed before it.
            replacement[rest[^1]] = fused;
            removed.Add(first);
            foreach (var n in rest[..^1]) removed.Add(n);
        }
    }

    /// <summary>HardSigmoid with alpha 1/6 and beta 1/2 (to float rounding): PyTorch's, the gate of hard swish.</summary>
    private static bool IsPyTorchHardSigmoid(NodeProto node)
    {
        float alpha = 0.2f, beta = 0.5f;
        foreach (var a in node.Attribute)
        {
            if (a.Type != AttributeProto.Types.AttributeType.Float) return false;
            if (a.Name == "alpha") alpha = a.F;
            else if (a.Name == "beta") beta = a.F;
            else return false;
        }
        return MathF.Abs(alpha - 1f / 6f) <= 1e-7f && beta == 0.5f;
    }
}
