using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

// The absolute-error loss, beside the others of Losses.cs.
public static partial class Losses
{
    /// <summary>
    /// Absolute error over every element, as PyTorch's <c>l1_loss</c>: <c>sum |y - t|</c>, divided by the number of
    /// elements for the mean; gradient <c>sign(y - t) / size</c> (0 where y = t, as PyTorch's sign), without the division
    /// for the sum.
    /// </summary>
    /// <param name="output">The network's output, any shape.</param>
    /// <param name="target">Targets of the same shape.</param>
    /// <param name="reduction">Mean over every element (default) or sum.</param>
    /// <exception cref="ShapeException">The target's shape differs from the output's.</exception>
    /// <exception cref="CnnException">The reduction is unknown.</exception>
    public static LossResult MeanAbsoluteError(Tensor output, Tensor target, Reduction reduction = Reduction.Mean)
    {
        var (diff, divisor) = Differences(output, target, reduction, "Mean absolute error");
        double sum = 0;
        float step = (float)(1 / divisor);
        for (int e = 0; e < diff.Length; e++)
        {
            float d = diff[e];
            sum += Math.Abs((double)d);
            // NaN stays NaN, so a bad output shows in the gradient as in the loss.
            diff[e] = d > 0 ? step : d < 0 ? -step : d == 0 ? 0f : float.NaN;
        }
        return new LossResult((float)(sum / divisor), Tensor.Own(diff, output.Shape));
    }
}
