namespace Cnn.Onnx;

/// <summary>
/// What the importer did besides reading one node as one layer, so that a user can see how an exporter's graph
/// became the tree: aliases it resolved, weights several layers share, nodes it evaluated as constants, and nodes
/// it folded into a neighbour or left out because they compute nothing.
/// </summary>
/// <param name="Aliases">Each value that an <c>Identity</c> node defined as another constant (torch.onnx aliases equal initializers so), with the initializer it names.</param>
/// <param name="SharedWeights">Each initializer that several layers read, with the layer parameters (<c>path/name</c>) that each got a copy of it.</param>
/// <param name="FoldedNodes">The nodes evaluated before the graph runs (shape subgraphs, constant arithmetic), as <c>name (Op)</c>.</param>
/// <param name="Rewrites">Nodes removed or merged into a neighbour (a zero Pad, a Concat of one operand, an Add folded into a bias), one sentence each.</param>
public sealed record ImportReport(
    IReadOnlyDictionary<string, string> Aliases,
    IReadOnlyDictionary<string, IReadOnlyList<string>> SharedWeights,
    IReadOnlyList<string> FoldedNodes,
    IReadOnlyList<string> Rewrites)
{
    /// <summary>A report of nothing.</summary>
    public static ImportReport Empty { get; } = new(
        new Dictionary<string, string>(), new Dictionary<string, IReadOnlyList<string>>(), Array.Empty<string>(), Array.Empty<string>());
}
