using Cnn.Dsl;

namespace Cnn.Onnx;

/// <summary>An ONNX model read back into the DSL: the network, its parameters and state, and the model's metadata.</summary>
/// <param name="Network">The layer tree with the model's input shape (per sample, without the batch axis).</param>
/// <param name="Parameters">A tensor for every parameter path of the network.</param>
/// <param name="State">The batch-norm running statistics, by path; empty when the network has none.</param>
/// <param name="Metadata">The model's <c>metadata_props</c>.</param>
public sealed record ImportedModel(Network Network, Parameters Parameters, Parameters State, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>Aliases, shared weights, folded constants and rewritten nodes met on the way.</summary>
    public ImportReport Report { get; init; } = ImportReport.Empty;
}
