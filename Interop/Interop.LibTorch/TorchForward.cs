using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Interop.LibTorch;

/// <summary>A LibTorch forward pass: the main output and the auxiliary heads' outputs of a training-mode pass.</summary>
/// <param name="Output">The network's (main) output.</param>
/// <param name="Heads">Each auxiliary head's weight and output, in execution order; empty in inference.</param>
public sealed record TorchForward(TorchTensor Output, IReadOnlyList<TorchHeadOutput> Heads);

/// <summary>One auxiliary head's output in a LibTorch pass, with the weight of its loss in the total.</summary>
/// <param name="Weight">The weight of the head's loss.</param>
/// <param name="Output">The head's output (recorded by autograd when the inputs require gradients).</param>
public sealed record TorchHeadOutput(float Weight, TorchTensor Output);
