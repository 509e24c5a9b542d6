namespace Cnn.Dsl;

/// <summary>The surgery <see cref="Transfer.Prepare"/> does for fine-tuning.</summary>
/// <param name="Freeze">Paths of the nodes to freeze (or <see cref="Transfer.AllButHead"/>); null or empty freezes nothing.</param>
/// <param name="NewHeadClasses">When set, the head is replaced by one of this many classes.</param>
/// <param name="HeadPath">The head's path; null finds it (<see cref="Transfer.FindHead"/>).</param>
/// <param name="Seed">Seeds the new head's initialisation.</param>
public sealed record TransferOptions(IReadOnlyList<string>? Freeze = null, int? NewHeadClasses = null, string? HeadPath = null, int Seed = 1)
{
    /// <summary>What a new head does to the auxiliary heads (<see cref="AuxiliaryHeadChoice"/>; their classifiers are replaced by default).</summary>
    public AuxiliaryHeadChoice AuxiliaryHeads { get; init; }
}
