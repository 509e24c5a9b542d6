using System.Text;
using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>One row of a network summary.</summary>
/// <param name="Path">The layer's path.</param>
/// <param name="Type">The layer's type name.</param>
/// <param name="OutputShape">Per-sample output shape (batch omitted).</param>
/// <param name="Parameters">Scalar parameters the layer owns.</param>
/// <param name="MultiplyAdds">Multiply-accumulate operations per sample in the forward pass.</param>
public sealed record SummaryRow(string Path, string Type, Shape OutputShape, long Parameters, long MultiplyAdds);

/// <summary>The summary interpreter: a Keras-style table of a network's leaves, computed from shapes alone.</summary>
public static class Summary
{
    /// <summary>One row per leaf layer, in execution order.</summary>
    public static IReadOnlyList<SummaryRow> Rows(Network network) =>
        network.RootNode.Leaves().Select(n => new SummaryRow(
            n.Path, n.Layer.GetType().Name, n.Output,
            n.ParameterSpecs().Sum(s => (long)s.Spec.Shape.Size),
            MultiplyAdds(n))).ToArray();

    /// <summary>The total number of scalar parameters.</summary>
    public static long ParameterCount(Network network) => Rows(network).Sum(r => r.Parameters);

    /// <summary>The table as text, with totals.</summary>
    public static string Format(Network network)
    {
        var rows = Rows(network);
        var sb = new StringBuilder();
        string Line(string a, string b, string c, string d, string e) => $"{a,-22} {b,-12} {c,-18} {d,12} {e,14}";
        var rule = new string('-', 82);
        sb.AppendLine(Line("Layer (path)", "Type", "Output shape", "Param #", "MACs/sample"));
        sb.AppendLine(rule);
        sb.AppendLine(Line("input", "Input", "(N, " + string.Join(", ", network.InputShape) + ")", "0", "0"));
        foreach (var r in rows)
            sb.AppendLine(Line(r.Path, r.Type, "(N, " + string.Join(", ", r.OutputShape) + ")", r.Parameters.ToString("N0"), r.MultiplyAdds.ToString("N0")));
        sb.AppendLine(rule);
        sb.AppendLine($"Total params: {rows.Sum(r => r.Parameters):N0} (trainable {rows.Sum(r => r.Parameters):N0}, non-trainable 0)");
        sb.AppendLine($"Forward MACs per sample: {rows.Sum(r => r.MultiplyAdds):N0}");
        return sb.ToString();
    }

    private static long MultiplyAdds(Node n) => n.Layer switch
    {
        Conv2d c => (long)n.Output.Size * n.Input[0] * c.KernelH * c.KernelW,
        Dense => (long)n.Output.Size * n.Input.Size,
        _ => 0,
    };
}
