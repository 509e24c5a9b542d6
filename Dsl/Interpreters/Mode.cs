namespace Cnn.Dsl;

/// <summary>Whether <see cref="Apply"/> runs for training (dropout active, batch statistics) or for inference.</summary>
public enum Mode
{
    /// <summary>Inference: deterministic, running statistics.</summary>
    Eval,
    /// <summary>Training: stochastic layers active, batch statistics.</summary>
    Train,
}
