namespace Cnn.Onnx;

/// <summary>The predicted class of one sample, with the probability of every class.</summary>
/// <param name="Class">The most probable class (the first one on ties).</param>
/// <param name="Probability">Its probability.</param>
/// <param name="Probabilities">The probability of each class, in class order; they sum to 1.</param>
public sealed record Prediction(int Class, float Probability, IReadOnlyList<float> Probabilities);
