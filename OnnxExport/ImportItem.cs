using Cnn.Core;
using Cnn.Dsl;

namespace Cnn.Onnx;

/// <summary>A piece of an imported graph: a leaf layer or a join of branches, with the name of its (first) node and its per-sample output shape.</summary>
internal abstract record ImportItem(string NodeName, Shape Output);

/// <summary>One leaf layer read from one ONNX node (or a few), with its parameters and state by local name.</summary>
internal sealed record LeafItem(LeafLayer Layer, string NodeName, Shape Output,
    IReadOnlyList<(string Local, Tensor Value)> Parameters, IReadOnlyList<(string Local, Tensor Value)> State) : ImportItem(NodeName, Output);

/// <summary>
/// Branches from one value that meet in a Sum, Concat (a <see cref="FanOut"/>) or Add (a <see cref="Residual"/>: the first
/// branch is the block, the second the shortcut, null for the identity).
/// </summary>
internal sealed record JoinItem(string Op, string NodeName, Shape Output, IReadOnlyList<IReadOnlyList<ImportItem>> Branches, IReadOnlyList<ImportItem>? Shortcut)
    : ImportItem(NodeName, Output);
