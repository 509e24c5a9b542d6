using Cnn.Dsl;

namespace Cnn.Interop.LibTorch;

/// <summary>Weights read from a TorchSharp module or file, in the DSL's terms.</summary>
/// <param name="Parameters">The parameters by path (<c>conv1/weight</c>).</param>
/// <param name="State">The batch-norm running statistics by path (<c>bn1/running_mean</c>); empty when the network has none.</param>
public sealed record TorchWeights(Parameters Parameters, Parameters State);
