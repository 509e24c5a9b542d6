using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>The loss of a batch, the network's output, and the gradient of the loss with respect to every parameter.</summary>
/// <param name="Loss">The mean loss over the batch.</param>
/// <param name="Output">The network's output (logits).</param>
/// <param name="Gradients">dLoss/dParameter, by path.</param>
/// <param name="InputGradient">dLoss/dInput.</param>
public sealed record GradientResult(float Loss, Tensor Output, Parameters Gradients, Tensor InputGradient);

/// <summary>Loss and gradient of a classifier network.</summary>
public static class Loss
{
    /// <summary>
    /// Softmax cross-entropy of the network's logits against integer labels, with every parameter's gradient.
    /// </summary>
    /// <exception cref="CnnException">A label is outside [0, classes), or the label count differs from the batch.</exception>
    public static GradientResult SoftmaxCrossEntropy(Network network, Parameters parameters, Tensor x, ReadOnlySpan<int> labels, Mode mode = Mode.Train)
    {
        var fwd = Apply.WithPullback(network, parameters, x, mode);
        var loss = Losses.SoftmaxCrossEntropy(fwd.Output, labels);
        var pulled = fwd.Pullback(loss.Gradient);
        return new GradientResult(loss.Value, fwd.Output, pulled.Parameters, pulled.Input);
    }
}
