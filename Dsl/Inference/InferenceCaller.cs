using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>
/// What one concurrent caller of an <see cref="InferenceModel"/> keeps between its calls: the compiled plan bound to the
/// last <see cref="Shapes"/> input shapes it has seen (every step's output tensor, the kernels' sizes and parallel bodies,
/// made once per shape) and an arena for the steps that fall back to <see cref="Apply"/>. One thread at a time.
/// </summary>
internal sealed class InferenceCaller
{
    /// <summary>
    /// Input shapes bound at once: a batch size and an epoch's short last batch. A third shape replaces the one used least
    /// recently, so the memory held is at most two forward passes' activations per concurrent caller.
    /// </summary>
    public const int Shapes = 2;

    private readonly TensorArena _arena = new(minimumLength: 1);

    // Most recently used first.
    private readonly Shape?[] _inputs = new Shape?[Shapes];
    private readonly BoundStep?[] _plans = new BoundStep?[Shapes];

    /// <summary>
    /// <paramref name="root"/>'s output for <paramref name="x"/> (whose shape the caller has checked), copied into an array
    /// of its own (the active arena's when one is active on the calling thread, as any kernel's output).
    /// </summary>
    public Tensor Predict(Step root, Tensor x)
    {
        var (plan, fresh) = Bound(root, x.Shape);
        // Under an arena already active on this thread (a trainer's), fallback steps allocate from that one.
        bool own = !TensorArena.ActiveOnThisThread;
        try
        {
            Tensor y;
            using (own ? _arena.Activate() : default)
            // A plan's first run keeps every part of the work on this thread (WorkerPool.Alone), so the thread's workspaces
            // grow to the largest share it can be left with now, not in a later call that finds the workers busy.
            using (fresh ? WorkerPool.Alone() : default)
                y = plan.Run(x);
            // The plan's output array is rewritten by the next call: the caller gets a copy.
            var copy = TensorArena.Uninitialized<float>(y.Size);
            y.Span.CopyTo(copy);
            return Tensor.Own(copy, y.Shape);
        }
        finally
        {
            if (own) _arena.Recycle();
        }
    }

    /// <summary>
    /// The plan bound to <paramref name="input"/>, binding it when this caller has not (or no longer has) it; and whether it
    /// was bound now.
    /// </summary>
    private (BoundStep Plan, bool Fresh) Bound(Step root, Shape input)
    {
        int i = 0;
        while (i < Shapes && !(_inputs[i] is { } seen && seen == input)) i++;
        bool fresh = i == Shapes;
        var plan = fresh ? root.Bind(input, null) : _plans[i]!;
        // Moved (or put) first; the least recently used one drops out of the end.
        for (int j = Math.Min(i, Shapes - 1); j > 0; j--) (_inputs[j], _plans[j]) = (_inputs[j - 1], _plans[j - 1]);
        (_inputs[0], _plans[0]) = (input, plan);
        return (plan, fresh);
    }
}
