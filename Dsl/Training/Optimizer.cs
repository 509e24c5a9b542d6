using System.Collections.Immutable;
using System.Numerics.Tensors;
using Cnn.Core;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Dsl;

/// <summary>The state an optimizer carries between steps (step count and per-parameter slots such as moments).</summary>
/// <param name="Step">Steps taken so far.</param>
/// <param name="Slots">Named slots (<c>velocity</c>, <c>m</c>, <c>v</c>), each a tensor per parameter path.</param>
public sealed record OptimizerState(long Step, ImmutableSortedDictionary<string, Parameters> Slots);

/// <summary>The parameters and optimizer state after one step.</summary>
/// <param name="Parameters">The updated parameters.</param>
/// <param name="State">The updated optimizer state.</param>
public sealed record OptimizerStep(Parameters Parameters, OptimizerState State);

/// <summary>
/// A pure update rule: <c>(parameters, gradients, state) -> (parameters, state)</c>. Optimizers are values;
/// nothing is mutated, so a step can be retried, compared or checkpointed.
/// </summary>
public abstract record Optimizer
{
    /// <summary>The learning rate.</summary>
    public abstract float LearningRate { get; init; }

    /// <summary>
    /// L2 weight decay λ, added to every gradient as <c>λ w</c> before the update (PyTorch's <c>weight_decay</c>;
    /// for Adam this is the coupled form, as <c>torch.optim.Adam</c>, not AdamW). Default 0.
    /// </summary>
    public float WeightDecay { get; init; }

    /// <summary>
    /// This optimizer with its momentum term set, for schedules that cycle momentum: SGD's momentum (when it has
    /// one) and Adam's β1; an optimizer without momentum is returned unchanged.
    /// </summary>
    public Optimizer WithMomentum(float momentum) => this switch
    {
        Sgd { Momentum: > 0f } sgd => sgd with { Momentum = momentum },
        Adam adam => adam with { Beta1 = momentum },
        _ => this,
    };

    /// <summary>The initial state for a parameter set.</summary>
    public abstract OptimizerState Init(Parameters parameters);

    /// <summary>One update. Only paths present in <paramref name="gradients"/> change (frozen parameters have no gradient).</summary>
    public OptimizerStep Step(Parameters parameters, Parameters gradients, OptimizerState state)
    {
        var slots = state.Slots.ToDictionary(kv => kv.Key, kv => kv.Value);
        var p = parameters;
        long t = state.Step + 1;
        foreach (var (path, g) in gradients.Entries)
        {
            var w = parameters[path];
            if (g.Shape != w.Shape) throw new ShapeException($"Optimizer: gradient of '{path}' has shape {g.Shape}; the parameter has {w.Shape}.");
            // Parameters are immutable: the update writes a fresh array, reading the old values once (no copy first).
            var updated = GC.AllocateUninitializedArray<float>(w.Size);
            ReadOnlySpan<float> grad = g.Span;
            if (WeightDecay != 0f)
            {
                var decayed = new float[grad.Length];
                TensorPrimitives.MultiplyAdd(w.Span, WeightDecay, grad, decayed);
                grad = decayed;
            }
            Update(path, w.Span, updated, grad, t, slots);
            p = p.With(path, Tensor.Own(updated, w.Shape));
        }
        return new OptimizerStep(p, new OptimizerState(t, slots.ToImmutableSortedDictionary(StringComparer.Ordinal)));
    }

    /// <summary>
    /// Writes one parameter's new values <paramref name="updated"/> (a fresh array owned by <see cref="Step"/>, every element
    /// to be written) from its current values <paramref name="w"/>, and updates its slots.
    /// </summary>
    private protected abstract void Update(string path, ReadOnlySpan<float> w, Span<float> updated, ReadOnlySpan<float> g, long step, Dictionary<string, Parameters> slots);

    /// <summary>A writable copy of one slot tensor, to be stored back with <see cref="Store"/>.</summary>
    private protected static float[] Slot(Dictionary<string, Parameters> slots, string slot, string path) =>
        slots[slot][path].ToArray();

    private protected static void Store(Dictionary<string, Parameters> slots, string slot, string path, float[] value) =>
        slots[slot] = slots[slot].With(path, Tensor.Own(value, slots[slot][path].Shape));

    private protected static ImmutableSortedDictionary<string, Parameters> ZeroSlots(Parameters p, params string[] names) =>
        names.ToImmutableSortedDictionary(n => n, _ => p.ZerosLike(), StringComparer.Ordinal);
}

/// <summary>
/// Stochastic gradient descent, optionally with momentum and Nesterov momentum, in PyTorch's formulation:
/// <c>v = μ v + g; w -= lr * (nesterov ? g + μ v : v)</c>.
/// </summary>
/// <param name="LearningRate">Step size.</param>
/// <param name="Momentum">μ, 0 for plain SGD.</param>
/// <param name="Nesterov">Use Nesterov momentum.</param>
public sealed record Sgd(float LearningRate, float Momentum = 0f, bool Nesterov = false) : Optimizer
{
    /// <inheritdoc />
    public override OptimizerState Init(Parameters parameters) =>
        new(0, Momentum == 0f ? ImmutableSortedDictionary<string, Parameters>.Empty : ZeroSlots(parameters, "velocity"));

    private protected override void Update(string path, ReadOnlySpan<float> w, Span<float> updated, ReadOnlySpan<float> g, long step, Dictionary<string, Parameters> slots)
    {
        if (Momentum == 0f)
        {
            TensorPrimitives.MultiplyAdd(g, -LearningRate, w, updated);
            return;
        }
        var v = Slot(slots, "velocity", path);
        TensorPrimitives.MultiplyAdd(v, Momentum, g, v);
        if (Nesterov)
        {
            var d = new float[v.Length];
            TensorPrimitives.MultiplyAdd(v, Momentum, g, d);
            TensorPrimitives.MultiplyAdd(d, -LearningRate, w, updated);
        }
        else TensorPrimitives.MultiplyAdd(v, -LearningRate, w, updated);
        Store(slots, "velocity", path, v);
    }
}

/// <summary>
/// Adam (Kingma and Ba), with PyTorch's defaults and bias correction:
/// <c>m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²; w -= lr * m̂ / (sqrt(v̂) + ε)</c>.
/// </summary>
/// <param name="LearningRate">Step size (default 1e-3).</param>
/// <param name="Beta1">Decay of the first moment (default 0.9).</param>
/// <param name="Beta2">Decay of the second moment (default 0.999).</param>
/// <param name="Epsilon">Added to the denominator (default 1e-8).</param>
public sealed record Adam(float LearningRate = 1e-3f, float Beta1 = 0.9f, float Beta2 = 0.999f, float Epsilon = 1e-8f) : Optimizer
{
    /// <inheritdoc />
    public override OptimizerState Init(Parameters parameters) => new(0, ZeroSlots(parameters, "m", "v"));

    private protected override void Update(string path, ReadOnlySpan<float> w, Span<float> updated, ReadOnlySpan<float> g, long step, Dictionary<string, Parameters> slots)
    {
        var m = Slot(slots, "m", path);
        var v = Slot(slots, "v", path);
        float c1 = 1f - MathF.Pow(Beta1, step), c2 = 1f - MathF.Pow(Beta2, step);
        float stepSize = LearningRate / c1, sqrtC2 = MathF.Sqrt(c2);
        for (int i = 0; i < w.Length; i++)
        {
            m[i] = Beta1 * m[i] + (1f - Beta1) * g[i];
            v[i] = Beta2 * v[i] + (1f - Beta2) * g[i] * g[i];
            updated[i] = w[i] - stepSize * m[i] / (MathF.Sqrt(v[i]) / sqrtC2 + Epsilon);
        }
        Store(slots, "m", path, m);
        Store(slots, "v", path, v);
    }
}
