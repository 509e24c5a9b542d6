namespace Cnn.Dsl;

/// <summary>
/// A network after surgery for transfer learning (<see cref="Transfer"/>), with the parameters and state it starts from:
/// every kept tensor is the very tensor it was (bitwise the same), a new head's parameters come from the initialiser.
/// </summary>
/// <param name="Network">The new network (frozen subtrees wrapped in <see cref="Freeze"/>, the head replaced).</param>
/// <param name="Parameters">Its parameters.</param>
/// <param name="State">Its state (batch-norm running statistics); empty when it has none.</param>
/// <param name="HeadPath">The path of the replaced head; null when the head was kept.</param>
public sealed record TransferModel(Network Network, Parameters Parameters, Parameters State, string? HeadPath)
{
    /// <summary>The network, parameters and state as a <see cref="Dsl.Model"/>, to train, save and export.</summary>
    public Model Model => new(Network, Parameters, State);
}
