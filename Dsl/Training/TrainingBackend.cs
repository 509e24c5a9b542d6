using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// Where the steps of <c>Trainer.Fit</c> run: the im2col backend (<see cref="Im2col"/>, the default) or another
/// engine, such as LibTorch on a device (<c>Cnn.Interop.LibTorch.LibTorchBackend</c>). The loop itself (data order,
/// schedules, callbacks, progress, cancellation, checkpoints) is <c>Trainer.Fit</c>'s on every backend; a backend
/// only takes the steps and holds the parameters between them, so checkpoints of one resume on another.
/// </summary>
/// <remarks>
/// The abstraction lives in the DSL and its implementations beside their engines, so the DSL never references one: a
/// user who trains on the CPU does not pull LibTorch.
/// </remarks>
public abstract class TrainingBackend
{
    /// <summary>The library's own backend: im2col/GEMM kernels on the CPU, the optimizers of <see cref="Optimizer"/>.</summary>
    public static TrainingBackend Im2col { get; } = new Im2colBackend();

    /// <summary>A short name for messages and metadata (<c>im2col</c>, <c>libtorch:cpu</c>).</summary>
    public abstract string Name { get; }

    /// <summary>
    /// Starts a run from the given values: the session takes them onto its engine and owns its copies until disposed.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Every parameter of the network.</param>
    /// <param name="state">The network's state (batch-norm running statistics).</param>
    /// <param name="optimizerState">The optimizer's state over the trainable parameters.</param>
    /// <exception cref="CnnException">The engine cannot run the network or is not available.</exception>
    public abstract TrainingSession Start(Network network, Parameters parameters, Parameters state, OptimizerState optimizerState);

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>
/// One training run on a <see cref="TrainingBackend"/>: the parameters, state and optimizer state live on the engine
/// between steps and are copied out only when asked for (checkpoints, callbacks, validation).
/// </summary>
public abstract class TrainingSession : IDisposable
{
    /// <summary>
    /// One step on a batch: forward pass in training mode, loss, backward pass, the optimizer's update, exactly as
    /// <see cref="Trainer.Step(Network, Parameters, Parameters, Optimizer, OptimizerState, Tensor, ReadOnlySpan{int}, LossFunction?, int)"/> takes it. When the loss is not finite nothing is updated, so the values read afterwards
    /// are those before the step.
    /// </summary>
    /// <param name="optimizer">The update rule, with this step's learning rate and momentum.</param>
    /// <param name="x">The batch, <c>[N, ...input shape]</c>.</param>
    /// <param name="labels">One class label per sample.</param>
    /// <param name="loss">The loss.</param>
    /// <param name="seed">Seeds the dropout masks.</param>
    /// <returns>The batch's mean loss before the update and the network's output (on the CPU).</returns>
    public abstract BatchOutcome Step(Optimizer optimizer, Tensor x, ReadOnlySpan<int> labels, LossFunction loss, int seed);

    /// <summary>
    /// One step on a batch with float targets (<see cref="Data.TargetData"/>), as the step on labels. A backend that
    /// does not train on float targets throws.
    /// </summary>
    /// <param name="optimizer">The update rule, with this step's learning rate and momentum.</param>
    /// <param name="x">The batch, <c>[N, ...input shape]</c>.</param>
    /// <param name="targets">The targets, <c>[N, ...output shape]</c>.</param>
    /// <param name="loss">A loss that takes float targets (<see cref="LossFunction.TakesFloatTargets"/>).</param>
    /// <param name="seed">Seeds the dropout masks.</param>
    /// <returns>The batch's mean loss before the update and the network's output (on the CPU).</returns>
    /// <exception cref="CnnException">The backend does not train on float targets, or the targets do not fit.</exception>
    public virtual BatchOutcome Step(Optimizer optimizer, Tensor x, Tensor targets, LossFunction loss, int seed) =>
        throw new CnnException($"This training backend ({GetType().Name}) does not train on float targets; train on the im2col backend.");

    /// <summary>The parameters now (a copy on the CPU).</summary>
    public abstract Parameters Parameters { get; }

    /// <summary>The network's state now (a copy on the CPU).</summary>
    public abstract Parameters State { get; }

    /// <summary>The optimizer's state now (a copy on the CPU).</summary>
    public abstract OptimizerState OptimizerState { get; }

    /// <summary>Replaces the parameters and state (a callback's restore of its best epoch); the optimizer state is kept.</summary>
    public abstract void Restore(Parameters parameters, Parameters state);

    /// <summary>Releases what the session holds on its engine.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the engine's resources; <paramref name="disposing"/> is false from a finalizer.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>What a <see cref="TrainingSession"/> step reports.</summary>
/// <param name="Loss">The batch's mean loss, before the update.</param>
/// <param name="Output">The network's output for the batch, before the update, on the CPU.</param>
public sealed record BatchOutcome(float Loss, Tensor Output);
