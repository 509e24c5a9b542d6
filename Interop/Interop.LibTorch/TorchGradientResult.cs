using Cnn.Core;
using Cnn.Dsl;

namespace Cnn.Interop.LibTorch;

/// <summary>The loss of a batch, the network's output and the gradients, all computed by LibTorch's autograd.</summary>
/// <param name="Loss">The softmax cross-entropy averaged over the batch (PyTorch's <c>reduction='mean'</c>).</param>
/// <param name="Output">The network's output (logits) <c>[N, classes]</c>.</param>
/// <param name="Gradients">dLoss/dParameter for every trainable parameter (not under a <see cref="Freeze"/>), by the same paths as the parameters.</param>
/// <param name="InputGradient">dLoss/dInput, the input's shape.</param>
public sealed record TorchGradientResult(float Loss, Tensor Output, Parameters Gradients, Tensor InputGradient);
