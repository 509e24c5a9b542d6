using System.Globalization;
using System.Text;
using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>One row of a network summary.</summary>
/// <param name="Path">The layer's path.</param>
/// <param name="Type">The layer's type name.</param>
/// <param name="OutputShape">Per-sample output shape (batch omitted).</param>
/// <param name="Parameters">Scalars the layer owns, as Keras counts them: parameters and state (batch norm: 4 per channel).</param>
/// <param name="Trainable">Scalars that train: parameters outside a <see cref="Freeze"/> (state never trains).</param>
/// <param name="MultiplyAdds">Multiply-accumulate operations per sample in the forward pass.</param>
public sealed record SummaryRow(string Path, string Type, Shape OutputShape, long Parameters, long Trainable, long MultiplyAdds);

/// <summary>The totals of a summary.</summary>
/// <param name="Parameters">All scalars: parameters and state.</param>
/// <param name="Trainable">Parameters that train.</param>
/// <param name="NonTrainable">Frozen parameters and state (batch-norm running statistics).</param>
/// <param name="MultiplyAdds">Forward multiply-accumulates per sample.</param>
/// <param name="ActivationBytes">Bytes of float32 activations one sample produces in a forward pass (what training keeps for backward).</param>
public sealed record SummaryTotals(long Parameters, long Trainable, long NonTrainable, long MultiplyAdds, long ActivationBytes);

/// <summary>The summary interpreter: a Keras-style table of a network's leaves, computed from shapes alone.</summary>
public static class Summary
{
    /// <summary>One row per leaf layer, in execution order.</summary>
    public static IReadOnlyList<SummaryRow> Rows(Network network) =>
        network.RootNode.Leaves().Select(n =>
        {
            long parameters = n.ParameterSpecs().Sum(s => (long)s.Spec.Shape.Size);
            long state = n.StateSpecs().Sum(s => (long)s.Spec.Shape.Size);
            return new SummaryRow(n.Path, n.Layer.GetType().Name, n.Output, parameters + state, n.Frozen ? 0 : parameters, MultiplyAdds(n));
        }).ToArray();

    /// <summary>The totals.</summary>
    public static SummaryTotals Totals(Network network)
    {
        var rows = Rows(network);
        long all = rows.Sum(r => r.Parameters), trainable = rows.Sum(r => r.Trainable);
        return new SummaryTotals(all, trainable, all - trainable, rows.Sum(r => r.MultiplyAdds), 4L * rows.Sum(r => (long)r.OutputShape.Size));
    }

    /// <summary>The total number of scalars as Keras counts them (parameters and state).</summary>
    public static long ParameterCount(Network network) => Totals(network).Parameters;

    /// <summary>The table as text, with totals.</summary>
    public static string Format(Network network)
    {
        var rows = Rows(network);
        var t = Totals(network);
        int pathWidth = Math.Max(22, rows.Max(r => r.Path.Length) + 1);
        var sb = new StringBuilder();
        string Line(string a, string b, string c, string d, string e) => $"{a.PadRight(pathWidth)} {b,-16} {c,-20} {d,12} {e,15}";
        var rule = new string('-', pathWidth + 67);
        sb.AppendLine(Line("Layer (path)", "Type", "Output shape", "Param #", "MACs/sample"));
        sb.AppendLine(rule);
        sb.AppendLine(Line("input", "Input", ShapeText(network.InputShape), "0", "0"));
        foreach (var r in rows)
            sb.AppendLine(Line(r.Path, r.Type, ShapeText(r.OutputShape),
                r.Parameters.ToString("N0", CultureInfo.InvariantCulture) + (r.Trainable == r.Parameters ? "" : "*"), r.MultiplyAdds.ToString("N0", CultureInfo.InvariantCulture)));
        sb.AppendLine(rule);
        sb.AppendLine($"Total params: {t.Parameters.ToString("N0", CultureInfo.InvariantCulture)}");
        sb.AppendLine($"Trainable params: {t.Trainable.ToString("N0", CultureInfo.InvariantCulture)}");
        sb.AppendLine($"Non-trainable params: {t.NonTrainable.ToString("N0", CultureInfo.InvariantCulture)}{(t.NonTrainable > 0 ? " (frozen parameters and batch-norm statistics; rows marked *)" : "")}");
        sb.AppendLine(FormattableString.Invariant($"Forward MACs per sample: {t.MultiplyAdds:N0} ({2.0 * t.MultiplyAdds / 1e6:F1} MFLOP)"));
        sb.AppendLine(FormattableString.Invariant($"Activations per sample: {t.ActivationBytes / 1024.0:N1} KiB; parameters: {4.0 * t.Parameters / (1024 * 1024):N2} MiB"));
        return sb.ToString();
    }

    /// <summary>A per-sample shape with the batch shown as None, as Keras prints it.</summary>
    private static string ShapeText(Shape perSample) => "(None, " + string.Join(", ", perSample) + ")";

    private static long MultiplyAdds(Node n) => n.Layer switch
    {
        // Each output of a convolution (each input of a transposed one) meets a kernel over its group's channels.
        ConvolutionLayer c when c.Spec() is { Transposed: false } s => (long)n.Output.Size * (n.Input[0] / s.Geometry.Groups) * s.Geometry.KernelSize,
        ConvolutionLayer c when c.Spec() is { Transposed: true } s => (long)n.Input.Size * (s.Filters / s.Geometry.Groups) * s.Geometry.KernelSize,
        Dense => (long)n.Output.Size * n.Input.Size,
        _ => 0,
    };
}
