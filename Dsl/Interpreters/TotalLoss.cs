using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>
/// The loss of a pass with auxiliary heads (<see cref="AuxiliaryHead"/>): the main output's loss plus, for each head, its
/// weight times the same loss of the head's output against the same labels (or float targets), as torchvision's GoogLeNet recipe sums
/// <c>loss + 0.3 * aux1 + 0.3 * aux2</c>. A pass without heads (inference, or a network without any) gives the main loss.
/// </summary>
/// <param name="Value">The total: the main loss plus each head's weighted loss, summed in float in that order (as PyTorch does).</param>
/// <param name="Main">The main output's loss and its gradient.</param>
/// <param name="HeadLosses">Each head's own loss, unweighted, in the order of <see cref="ForwardResult.Heads"/>.</param>
/// <param name="HeadGradients">dValue/dHead for each head: its loss's gradient times its weight.</param>
public sealed record TotalLoss(float Value, LossResult Main, IReadOnlyList<float> HeadLosses, IReadOnlyList<Tensor> HeadGradients)
{
    /// <summary>The total loss of a pass against <paramref name="labels"/>.</summary>
    /// <param name="pass">A forward pass (<see cref="Apply.WithPullback"/>); its heads are those of a training-mode pass.</param>
    /// <param name="loss">The loss of every output.</param>
    /// <param name="labels">One class per sample.</param>
    /// <exception cref="CnnException">A label is outside [0, classes), or the label count differs from the batch.</exception>
    public static TotalLoss Of(ForwardResult pass, LossFunction loss, ReadOnlySpan<int> labels) => Of(pass, loss, new BatchTruth(labels));

    /// <summary>The total loss of a pass against labels or float targets: every output is scored against the same truth.</summary>
    internal static TotalLoss Of(ForwardResult pass, LossFunction loss, BatchTruth truth)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(loss);
        var main = truth.Loss(loss, pass.Output);
        if (pass.Heads.Count == 0) return new TotalLoss(main.Value, main, Array.Empty<float>(), Array.Empty<Tensor>());
        float total = main.Value;
        var values = new float[pass.Heads.Count];
        var gradients = new Tensor[pass.Heads.Count];
        for (int i = 0; i < values.Length; i++)
        {
            var head = pass.Heads[i];
            var r = truth.Loss(loss, head.Output);
            values[i] = r.Value;
            total += head.Weight * r.Value;
            var g = new float[r.Gradient.Size];
            System.Numerics.Tensors.TensorPrimitives.Multiply(r.Gradient.Span, head.Weight, g);
            gradients[i] = Tensor.Own(g, r.Gradient.Shape);
        }
        return new TotalLoss(total, main, values, gradients);
    }

    /// <summary>Pulls the total's gradient back through <paramref name="pass"/>: every trainable parameter's and the input's.</summary>
    public Pulled Pullback(ForwardResult pass)
    {
        ArgumentNullException.ThrowIfNull(pass);
        return pass.Pullback(Main.Gradient, HeadGradients);
    }
}
