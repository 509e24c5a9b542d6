using System.Collections.Immutable;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
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
        AdamW adamW => adamW with { Beta1 = momentum },
        RmsProp { Momentum: > 0f } rms => rms with { Momentum = momentum },
        _ => this,
    };

    /// <summary>The initial state for a parameter set.</summary>
    public abstract OptimizerState Init(Parameters parameters);

    /// <summary>
    /// Checks that <paramref name="state"/> (read from a checkpoint) is a state of this optimizer for
    /// <paramref name="parameters"/>: the same slots (<c>velocity</c> for momentum, <c>m</c> and <c>v</c> for Adam,
    /// none for plain SGD), each with a tensor of the parameter's shape for every parameter path.
    /// </summary>
    /// <param name="state">The state to check.</param>
    /// <param name="parameters">The trainable parameters.</param>
    /// <param name="source">Where the state came from (a checkpoint's file name), for the message.</param>
    /// <exception cref="CnnException">A slot is missing or extra, or a slot tensor is missing or of another shape; the message names the slot and the path.</exception>
    public void CheckState(OptimizerState state, Parameters parameters, string source)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(parameters);
        var expected = Init(parameters).Slots;
        string Names(IEnumerable<string> slots) => slots.Any() ? string.Join(", ", slots) : "none";
        if (!expected.Keys.SequenceEqual(state.Slots.Keys, StringComparer.Ordinal))
            throw new CnnException($"'{source}' holds optimizer state with slots [{Names(state.Slots.Keys)}]; {GetType().Name.ToLowerInvariant()} needs [{Names(expected.Keys)}]. " +
                "Resume with the checkpoint's optimizer (its metadata 'optimizer'), or start a new run.");
        foreach (var (slot, tensors) in expected)
        {
            var given = state.Slots[slot];
            foreach (var (path, t) in tensors.Entries)
            {
                if (!given.Contains(path)) throw new CnnException($"'{source}': optimizer slot '{slot}' has no tensor for parameter '{path}'.");
                if (given[path].Shape != t.Shape)
                    throw new CnnException($"'{source}': optimizer slot '{slot}' of '{path}' has shape {given[path].Shape}; the parameter has shape {t.Shape}.");
            }
            var extra = given.Entries.Select(kv => kv.Key).FirstOrDefault(k => !tensors.Contains(k));
            if (extra is not null) throw new CnnException($"'{source}': optimizer slot '{slot}' has a tensor for '{extra}', which is not a trainable parameter of the network.");
        }
    }

    /// <summary>One update. Only paths present in <paramref name="gradients"/> change (frozen parameters have no gradient).</summary>
    public OptimizerStep Step(Parameters parameters, Parameters gradients, OptimizerState state)
    {
        var slots = state.Slots.ToDictionary(kv => kv.Key, kv => kv.Value);
        var updates = new List<KeyValuePair<string, Tensor>>(gradients.Count);
        long t = state.Step + 1;
        foreach (var (path, g) in gradients.Entries)
        {
            var w = parameters[path];
            if (g.Shape != w.Shape) throw new ShapeException($"Optimizer: gradient of '{path}' has shape {g.Shape}; the parameter has {w.Shape}.");
            // Parameters are immutable: the update writes a fresh array, reading the old values once (no copy first).
            var updated = GC.AllocateUninitializedArray<float>(w.Size);
            ReadOnlyMemory<float> grad = g.Memory;
            if (WeightDecay != 0f)
            {
                var decayed = GC.AllocateUninitializedArray<float>(w.Size);
                Cnn.Core.Kernels.Elementwise.For(w.Size, (s, e) => TensorPrimitives.MultiplyAdd(w.Span[s..e], WeightDecay, g.Span[s..e], decayed.AsSpan(s..e)));
                grad = decayed;
            }
            Update(path, w.Memory, updated, grad, t, slots);
            updates.Add(KeyValuePair.Create(path, Tensor.Own(updated, w.Shape)));
        }
        return new OptimizerStep(parameters.SetItems(updates), new OptimizerState(t, slots.ToImmutableSortedDictionary(StringComparer.Ordinal)));
    }

    /// <summary>
    /// Writes one parameter's new values <paramref name="updated"/> (a fresh array owned by <see cref="Step"/>, every element
    /// to be written) from its current values <paramref name="w"/>, and updates its slots.
    /// </summary>
    private protected abstract void Update(string path, ReadOnlyMemory<float> w, float[] updated, ReadOnlyMemory<float> g, long step, Dictionary<string, Parameters> slots);

    /// <summary>The old values of one slot tensor and a fresh array for its new values, stored with <see cref="Store"/>.</summary>
    private protected static (ReadOnlyMemory<float> Old, float[] New) Slot(Dictionary<string, Parameters> slots, string slot, string path)
    {
        var old = slots[slot][path];
        return (old.Memory, GC.AllocateUninitializedArray<float>(old.Size));
    }

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

    private protected override void Update(string path, ReadOnlyMemory<float> w, float[] updated, ReadOnlyMemory<float> g, long step, Dictionary<string, Parameters> slots)
    {
        if (Momentum == 0f) Descend(w, updated, g, LearningRate);
        else MomentumUpdate(path, w, updated, g, slots);
    }

    /// <summary>
    /// <c>w - lr g</c>. A small parameter is updated here, without the closure a range needs: a closure per parameter was
    /// a step's largest allocation after its tensors (resnet-mini has 29 parameters, most of them small).
    /// </summary>
    private static void Descend(ReadOnlyMemory<float> w, float[] updated, ReadOnlyMemory<float> g, float lr)
    {
        if (w.Length < Cnn.Core.Kernels.Elementwise.ParallelLength) TensorPrimitives.MultiplyAdd(g.Span, -lr, w.Span, updated);
        else Cnn.Core.Kernels.Elementwise.For(w.Length, (s, e) => TensorPrimitives.MultiplyAdd(g.Span[s..e], -lr, w.Span[s..e], updated.AsSpan(s..e)));
    }

    private void MomentumUpdate(string path, ReadOnlyMemory<float> w, float[] updated, ReadOnlyMemory<float> g, Dictionary<string, Parameters> slots)
    {
        float lr = LearningRate, mu = Momentum;
        var (v0, v) = Slot(slots, "velocity", path);
        bool nesterov = Nesterov;
        Cnn.Core.Kernels.Elementwise.For(w.Length, (s, e) =>
        {
            var vs = v.AsSpan(s..e);
            TensorPrimitives.MultiplyAdd(v0.Span[s..e], mu, g.Span[s..e], vs);
            if (nesterov)
            {
                // d = μ v + g, written into the output first and then turned into w - lr d in place.
                var d = updated.AsSpan(s..e);
                TensorPrimitives.MultiplyAdd(vs, mu, g.Span[s..e], d);
                TensorPrimitives.MultiplyAdd(d, -lr, w.Span[s..e], d);
            }
            else TensorPrimitives.MultiplyAdd(vs, -lr, w.Span[s..e], updated.AsSpan(s..e));
        });
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

    private protected override void Update(string path, ReadOnlyMemory<float> w, float[] updated, ReadOnlyMemory<float> g, long step, Dictionary<string, Parameters> slots)
    {
        var (m0, m) = Slot(slots, "m", path);
        var (v0, v) = Slot(slots, "v", path);
        var k = AdamConstants.At(step, LearningRate, Beta1, Beta2, Epsilon, decay: 0f);
        Cnn.Core.Kernels.Elementwise.For(w.Length, (s, e) => AdamRange(k, w.Span[s..e], g.Span[s..e], m0.Span[s..e], v0.Span[s..e], m.AsSpan(s..e), v.AsSpan(s..e), updated.AsSpan(s..e)));
        Store(slots, "m", path, m);
        Store(slots, "v", path, v);
    }

    /// <summary>
    /// The constants of one Adam step. <c>Keep</c> scales the weights before the step: <c>1 - lr λ</c> for AdamW's decoupled
    /// decay, exactly 1 for Adam (a product with 1 is the same float, so Adam's bits do not change).
    /// </summary>
    internal readonly record struct AdamConstants(float Beta1, float Beta2, float StepSize, float SqrtC2, float Epsilon, float Keep)
    {
        /// <summary>
        /// The constants at optimizer step <paramref name="step"/>, each formed in double and rounded to float once, as
        /// <c>torch.optim</c> forms them: <c>lr / (1 - β1^t)</c>, <c>sqrt(1 - β2^t)</c> and <c>1 - lr λ</c>. In float,
        /// <c>1 - β2^t</c> loses up to 1e-6 of its value to the rounding of the power (β2^t is near 1 for hundreds of
        /// steps), and that error scales every step alike.
        /// </summary>
        internal static AdamConstants At(long step, float lr, float beta1, float beta2, float epsilon, float decay) =>
            new(beta1, beta2, (float)(lr / (1 - Math.Pow(beta1, step))), (float)Math.Sqrt(1 - Math.Pow(beta2, step)), epsilon,
                Keep: (float)(1 - (double)lr * decay));
    }

    /// <summary>
    /// <c>m = β1 m + (1-β1) g; v = β2 v + ((1-β2) g) g; w keep - (stepSize m) / (sqrt(v) / sqrt(c2) + ε)</c>, sixteen elements at a
    /// time and then one by one: the same operations in the same order in both (no fused multiply-add), so the bits do
    /// not depend on where the vector part ends.
    /// </summary>
    internal static void AdamRange(in AdamConstants k, ReadOnlySpan<float> w, ReadOnlySpan<float> g, ReadOnlySpan<float> m0, ReadOnlySpan<float> v0,
        Span<float> m, Span<float> v, Span<float> updated)
    {
        float b1 = k.Beta1, b2 = k.Beta2, a1 = 1f - k.Beta1, a2 = 1f - k.Beta2;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= w.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var gi = Vector512.Create(g.Slice(i, Vector512<float>.Count));
                var mi = Vector512.Create(b1) * Vector512.Create(m0.Slice(i, Vector512<float>.Count)) + Vector512.Create(a1) * gi;
                var vi = Vector512.Create(b2) * Vector512.Create(v0.Slice(i, Vector512<float>.Count)) + Vector512.Create(a2) * gi * gi;
                var step = Vector512.Create(k.StepSize) * mi / (Vector512.Sqrt(vi) / Vector512.Create(k.SqrtC2) + Vector512.Create(k.Epsilon));
                mi.CopyTo(m.Slice(i));
                vi.CopyTo(v.Slice(i));
                (Vector512.Create(w.Slice(i, Vector512<float>.Count)) * Vector512.Create(k.Keep) - step).CopyTo(updated.Slice(i));
            }
        for (; i < w.Length; i++)
        {
            m[i] = b1 * m0[i] + a1 * g[i];
            v[i] = b2 * v0[i] + a2 * g[i] * g[i];
            updated[i] = w[i] * k.Keep - k.StepSize * m[i] / (MathF.Sqrt(v[i]) / k.SqrtC2 + k.Epsilon);
        }
    }
}
