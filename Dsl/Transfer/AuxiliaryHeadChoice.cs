namespace Cnn.Dsl;

/// <summary>
/// What <see cref="Transfer.ReplaceHead"/> does with a network's auxiliary heads (<see cref="AuxiliaryHead"/>, GoogLeNet's
/// <c>aux1</c> and <c>aux2</c>) when it gives the main head a new class count. An auxiliary head's loss scores the same
/// labels as the main head, so it must give the same number of classes: it cannot keep the old count.
/// </summary>
public enum AuxiliaryHeadChoice
{
    /// <summary>
    /// Each auxiliary head's classifier (its last layer with parameters, a Dense or a 1x1 Conv2d) is replaced by one of
    /// the new class count, freshly initialised; the rest of the head keeps its weights and keeps training beside the
    /// main head, as torchvision's GoogLeNet and Inception v3 are fine-tuned (<c>aux1.fc2</c>, <c>AuxLogits.fc</c>).
    /// </summary>
    Replace,

    /// <summary>The auxiliary heads are removed with their parameters: training scores the main head alone.</summary>
    Drop,

    /// <summary>The auxiliary heads stay as they are; only possible when the class count does not change.</summary>
    Keep,
}
