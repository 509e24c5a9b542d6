using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// RMSprop (Hinton), in PyTorch's formulation (<c>torch.optim.RMSprop</c>): <c>s = α s + (1-α) g²</c>; centered, also
/// <c>ḡ = α ḡ + (1-α) g</c> and <c>s - ḡ²</c> in place of <c>s</c>; <c>d = g / (sqrt(s) + ε)</c>; with momentum
/// <c>b = μ b + d; w -= lr b</c>, else <c>w -= lr d</c>. Keras's <c>RMSprop</c> differs in its defaults (ρ 0.9, ε 1e-7).
/// </summary>
/// <param name="LearningRate">Step size (default 0.01, PyTorch's).</param>
/// <param name="Alpha">Decay of the mean square α (default 0.99; Keras calls it ρ).</param>
/// <param name="Epsilon">Added to the root mean square (default 1e-8).</param>
/// <param name="Momentum">μ, 0 for none.</param>
/// <param name="Centered">Divide by the estimated variance of the gradient instead of its mean square.</param>
public sealed record RmsProp(float LearningRate = 0.01f, float Alpha = 0.99f, float Epsilon = 1e-8f, float Momentum = 0f, bool Centered = false) : Optimizer
{
    /// <inheritdoc />
    public override OptimizerState Init(Parameters parameters) =>
        new(0, ZeroSlots(parameters, new[] { "square_avg" }.Concat(Centered ? new[] { "grad_avg" } : []).Concat(Momentum != 0f ? new[] { "momentum_buffer" } : []).ToArray()));

    private protected override void Update(string path, ReadOnlyMemory<float> w, float[] updated, ReadOnlyMemory<float> g, long step, Dictionary<string, Parameters> slots)
    {
        var (s0, s) = Slot(slots, "square_avg", path);
        var (a0, a) = Centered ? Slot(slots, "grad_avg", path) : (ReadOnlyMemory<float>.Empty, Array.Empty<float>());
        var (b0, b) = Momentum != 0f ? Slot(slots, "momentum_buffer", path) : (ReadOnlyMemory<float>.Empty, Array.Empty<float>());
        float lr = LearningRate, alpha = Alpha, eps = Epsilon, mu = Momentum;
        bool centered = Centered, momentum = Momentum != 0f;
        Cnn.Core.Kernels.Elementwise.For(w.Length, (start, end) =>
        {
            ReadOnlySpan<float> ws = w.Span, gs = g.Span, ss0 = s0.Span, as0 = a0.Span, bs0 = b0.Span;
            for (int i = start; i < end; i++)
            {
                float gi = gs[i];
                float si = alpha * ss0[i] + (1f - alpha) * gi * gi;
                s[i] = si;
                float mean = si;
                if (centered)
                {
                    float ai = alpha * as0[i] + (1f - alpha) * gi;
                    a[i] = ai;
                    mean = si - ai * ai;
                }
                float d = gi / (MathF.Sqrt(mean) + eps);
                if (momentum)
                {
                    d = mu * bs0[i] + d;
                    b[i] = d;
                }
                updated[i] = ws[i] - lr * d;
            }
        });
        Store(slots, "square_avg", path, s);
        if (centered) Store(slots, "grad_avg", path, a);
        if (momentum) Store(slots, "momentum_buffer", path, b);
    }
}
