using Cnn.Core;
using Cnn.Dsl;
using TorchSharp;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// The DSL's update rules (<see cref="Sgd"/>, <see cref="Adam"/>, <see cref="AdamW"/>, <see cref="RmsProp"/>, coupled weight
/// decay) on a device's tensors, operation for operation in the order and rounding of <see cref="Optimizer"/>'s float code, so
/// that the two backends follow one trajectory. Not <c>torch.optim</c>: its formulas differ in rounding (fused multiply-adds,
/// <c>add</c> with <c>alpha</c>) and Adam's constants are formed elsewhere.
/// </summary>
/// <remarks>
/// Every multiply and add is a separate LibTorch operation with a float scalar (LibTorch rounds a scalar to the tensor's
/// float32), because <c>add(other, alpha)</c> is fused on the CPU and the DSL's <c>TensorPrimitives.MultiplyAdd</c> is not.
/// Run under <c>no_grad</c> inside a dispose scope; the results are written into the parameters and slots in place.
/// </remarks>
internal static class TorchOptimizer
{
    /// <summary>
    /// One step of <paramref name="optimizer"/> for one parameter: <paramref name="w"/> and the slot tensors
    /// <paramref name="slot"/> returns by name are overwritten with their new values.
    /// </summary>
    public static void Update(Optimizer optimizer, TorchTensor w, TorchTensor g, long step, Func<string, TorchTensor> slot)
    {
        if (optimizer.WeightDecay != 0f) g = w * (double)optimizer.WeightDecay + g;
        var updated = optimizer switch
        {
            Sgd sgd => SgdStep(sgd, w, g, slot),
            Adam a => AdamStep(Adam.AdamConstants.At(step, a.LearningRate, a.Beta1, a.Beta2, a.Epsilon, decay: 0f), w, g, slot),
            AdamW a => AdamStep(Adam.AdamConstants.At(step, a.LearningRate, a.Beta1, a.Beta2, a.Epsilon, a.Decay), w, g, slot),
            RmsProp r => RmsPropStep(r, w, g, slot),
            _ => throw new CnnException($"The LibTorch backend has no rule for the optimizer {optimizer.GetType().Name}."),
        };
        w.copy_(updated);
    }

    private static TorchTensor SgdStep(Sgd o, TorchTensor w, TorchTensor g, Func<string, TorchTensor> slot)
    {
        double lr = -o.LearningRate, mu = o.Momentum;
        if (o.Momentum == 0f) return g * lr + w;
        var v = slot("velocity");
        v.copy_(v * mu + g);
        return (o.Nesterov ? v * mu + g : v) * lr + w;
    }

    private static TorchTensor AdamStep(Adam.AdamConstants k, TorchTensor w, TorchTensor g, Func<string, TorchTensor> slot)
    {
        double b1 = k.Beta1, b2 = k.Beta2, a1 = 1f - k.Beta1, a2 = 1f - k.Beta2;
        var m = slot("m");
        var v = slot("v");
        m.copy_(m * b1 + g * a1);
        v.copy_(v * b2 + g * a2 * g);
        var step = m * (double)k.StepSize / (v.sqrt() / (double)k.SqrtC2 + (double)k.Epsilon);
        return w * (double)k.Keep - step;
    }

    private static TorchTensor RmsPropStep(RmsProp o, TorchTensor w, TorchTensor g, Func<string, TorchTensor> slot)
    {
        double alpha = o.Alpha, rest = 1f - o.Alpha;
        var s = slot("square_avg");
        s.copy_(s * alpha + g * rest * g);
        var mean = s;
        if (o.Centered)
        {
            var a = slot("grad_avg");
            a.copy_(a * alpha + g * rest);
            mean = s - a * a;
        }
        var d = g / (mean.sqrt() + (double)o.Epsilon);
        if (o.Momentum != 0f)
        {
            var b = slot("momentum_buffer");
            b.copy_(b * (double)o.Momentum + d);
            d = b;
        }
        return w - d * (double)o.LearningRate;
    }
}
