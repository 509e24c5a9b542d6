using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// AdamW (Loshchilov and Hutter): Adam whose weight decay is decoupled from the gradient, as <c>torch.optim.AdamW</c>:
/// <c>w = w (1 - lr λ)</c>, then Adam's step with bias correction. Unlike <see cref="Optimizer.WeightDecay"/> (the coupled
/// L2 term, which Adam divides by the moments' scale), the decay here shrinks every weight by the same fraction.
/// </summary>
/// <param name="LearningRate">Step size (default 1e-3).</param>
/// <param name="Decay">The decoupled weight decay λ (default 0.01, PyTorch's; Keras's <c>AdamW</c> uses 0.004).</param>
/// <param name="Beta1">Decay of the first moment (default 0.9).</param>
/// <param name="Beta2">Decay of the second moment (default 0.999).</param>
/// <param name="Epsilon">Added to the denominator (default 1e-8).</param>
public sealed record AdamW(float LearningRate = 1e-3f, float Decay = 0.01f, float Beta1 = 0.9f, float Beta2 = 0.999f, float Epsilon = 1e-8f) : Optimizer
{
    /// <inheritdoc />
    public override OptimizerState Init(Parameters parameters) => new(0, ZeroSlots(parameters, "m", "v"));

    private protected override void Update(string path, ReadOnlyMemory<float> w, float[] updated, ReadOnlyMemory<float> g, long step, Dictionary<string, Parameters> slots)
    {
        var (m0, m) = Slot(slots, "m", path);
        var (v0, v) = Slot(slots, "v", path);
        var k = Adam.AdamConstants.At(step, LearningRate, Beta1, Beta2, Epsilon, Decay);
        Cnn.Core.Kernels.Elementwise.For(w.Length, (s, e) => Adam.AdamRange(k, w.Span[s..e], g.Span[s..e], m0.Span[s..e], v0.Span[s..e], m.AsSpan(s..e), v.AsSpan(s..e), updated.AsSpan(s..e)));
        Store(slots, "m", path, m);
        Store(slots, "v", path, v);
    }
}
