namespace Cnn.Onnx;

/// <summary>What a classifier model's output rows hold, so that <see cref="OnnxPredictor.Predict"/> can turn them into probabilities.</summary>
public enum OutputKind
{
    /// <summary>
    /// Decide per row: a row of non-negative numbers that sum to 1 (within 1e-4) is taken as probabilities, any other
    /// row as logits. Log-probabilities (a LogSoftmax output) come out right either way, since softmax maps them to
    /// the probabilities they are the logarithms of.
    /// </summary>
    Auto,

    /// <summary>Unnormalised scores (or log-probabilities): softmax gives the probabilities.</summary>
    Logits,

    /// <summary>Probabilities already (the model ends in Softmax): used as they are.</summary>
    Probabilities,
}
