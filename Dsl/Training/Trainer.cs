using System.Collections.Immutable;
using System.Diagnostics;
using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;

namespace Cnn.Dsl;

/// <summary>
/// The training loop: shuffled mini-batches made ahead of the step by a <see cref="BatchPipeline"/>, a loss, one
/// optimizer step per batch.
/// </summary>
public static partial class Trainer
{
    /// <summary>
    /// Trains <paramref name="network"/> from <paramref name="initial"/> parameters on <paramref name="train"/>.
    /// The same seed, data and thread count give bitwise-identical results.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="initial">The initial parameters (from <see cref="Initializer.Init"/> or a checkpoint).</param>
    /// <param name="train">The training data.</param>
    /// <param name="options">Epochs, batch size, optimizer, seed, loss and the batch pipeline (<see cref="TrainOptions.Pipeline"/>):
    /// its augmentation is drawn afresh for every epoch from the seed, the epoch and the batch; its normalisation also
    /// applies to <paramref name="validation"/>.</param>
    /// <param name="validation">Data evaluated after each epoch, in inference mode.</param>
    /// <param name="progress">Receives a report after each batch.</param>
    /// <param name="onEpoch">Called after each epoch with its figures.</param>
    /// <param name="initialState">The initial state; by default <see cref="Initializer.InitState"/>.</param>
    /// <param name="cancellation">Stops training after the current batch; the result holds the state reached.</param>
    /// <param name="resume">A checkpoint to continue from (its parameters, state, optimizer state and position replace
    /// <paramref name="initial"/> and <paramref name="initialState"/>): with the same data, options and thread count, the
    /// result is bitwise equal to an uninterrupted run's.</param>
    /// <param name="onCheckpoint">Called at the end of every epoch, and when cancelled, with a checkpoint to save.</param>
    /// <exception cref="CnnException">The data does not fit the network (shape or number of classes), or the loss became NaN or infinite.</exception>
    public static TrainResult Fit(Network network, Parameters initial, LabeledData train, TrainOptions options,
        LabeledData? validation = null, IProgress<TrainProgress>? progress = null, Action<EpochStats>? onEpoch = null,
        Parameters? initialState = null, CancellationToken cancellation = default,
        TrainingCheckpoint? resume = null, Action<TrainingCheckpoint>? onCheckpoint = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        return FitRun(network, initial, SampleSource.Of(train), options, validation is null ? null : SampleSource.Of(validation), progress, onEpoch,
            initialState, cancellation, resume, onCheckpoint);
    }

    /// <summary>
    /// Drops the arrays this thread's training arena keeps between steps (one step's activations, masks and gradients,
    /// kept so the next step of the same shapes allocates none of them), as <c>torch.cuda.empty_cache</c> does for
    /// PyTorch's caching allocator. <c>Fit</c> calls it when it returns; call it after a loop of your own
    /// <see cref="Step(Network, Parameters, Parameters, Optimizer, OptimizerState, Tensor, ReadOnlySpan{int}, LossFunction?, int)"/> calls. The next step simply allocates again.
    /// </summary>
    public static void ReleaseCachedMemory()
    {
        if (t_arena is { IsActive: false }) t_arena = null;
    }

    /// <summary>Reports synchronously to two receivers (<see cref="Progress{T}"/> would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }

    /// <summary>The loop of every <c>Fit</c> overload, whatever holds the examples.</summary>
    private static TrainResult FitRun(Network network, Parameters initial, SampleSource train, TrainOptions options,
        SampleSource? validation, IProgress<TrainProgress>? progress, Action<EpochStats>? onEpoch,
        Parameters? initialState, CancellationToken cancellation,
        TrainingCheckpoint? resume, Action<TrainingCheckpoint>? onCheckpoint)
    {
        // The arrays kept between steps serve this run only; a finished run gives them back to the collector.
        try
        {
            return FitLoop(network, initial, train, options, validation, progress, onEpoch, initialState, cancellation, resume, onCheckpoint);
        }
        finally
        {
            ReleaseCachedMemory();
        }
    }

    private static TrainResult FitLoop(Network network, Parameters initial, SampleSource train, TrainOptions options,
        SampleSource? validation, IProgress<TrainProgress>? progress, Action<EpochStats>? onEpoch,
        Parameters? initialState, CancellationToken cancellation,
        TrainingCheckpoint? resume, Action<TrainingCheckpoint>? onCheckpoint)
    {
        if (options.Verbose is < 0 or > 2)
            throw new CnnException($"TrainOptions.Verbose is 0 (silent), 1 (progress bar) or 2 (one line per epoch); found {options.Verbose}.");
        if (ConsoleProgress.ForVerbose(options.Verbose, options.Epochs) is { } console)
        {
            var user = progress;
            progress = user is null ? console : new SyncProgress(p => { console.Report(p); user.Report(p); });
            onEpoch = (Action<EpochStats>)console.Epoch + onEpoch;
        }
        if (options.Epochs < 1 || options.BatchSize < 1)
            throw new CnnException($"Training needs epochs >= 1 and batch size >= 1; found {options.Epochs} and {options.BatchSize}.");
        CheckFits(network, train, options.LossOrDefault, "training data");
        if (validation is not null) CheckFits(network, validation, options.LossOrDefault, "validation data");
        var p = resume?.Parameters ?? initial;
        var netState = resume?.State ?? initialState ?? Initializer.InitState(network);
        var trainablePaths = TrainablePaths(network);
        var trainable = Parameters.Of(p.Entries.Where(kv => trainablePaths.Contains(kv.Key)));
        // A parameters-only file loads with step 0 and no slots: it starts a fresh optimizer state.
        bool freshState = resume is null || resume.OptimizerState is { Step: 0, Slots.Count: 0 };
        if (!freshState) options.Optimizer.CheckState(resume!.OptimizerState, trainable, "the checkpoint");
        using var session = (options.Backend ?? TrainingBackend.Im2col).Start(network, p, netState,
            freshState ? options.Optimizer.Init(trainable) : resume!.OptimizerState);
        var meta = new Dictionary<string, string>(resume?.Metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        // A plateau callback's reductions persist in the checkpoint, so a resumed run keeps the reduced rate.
        float lrScale = meta.TryGetValue(LearningRateScaleKey, out var sc) && float.TryParse(sc, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var scv) ? scv : 1f;
        var schedule = options.Schedule ?? Schedule.Constant;
        var callbacks = (options.Callbacks ?? Array.Empty<Callback>()).Select(c => c.Start()).ToArray();
        float lr = options.Optimizer.LearningRate;
        var history = new List<EpochStats>();
        int n = train.Count, batches = (n + options.BatchSize - 1) / options.BatchSize;
        var pipelineOptions = options.Pipeline ?? PipelineOptions.Default;
        int epoch = resume?.Epoch ?? 1, firstBatch = resume?.Batch ?? 0;
        if (firstBatch > batches)
            throw new CnnException($"The checkpoint is at batch {firstBatch} of epoch {epoch}, but an epoch of this data has {batches} batches: resume with the same data and batch size.");
        TrainingCheckpoint Here(int e, int b)
        {
            meta[LearningRateScaleKey] = lrScale.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            return new(session.Parameters, session.State, session.OptimizerState, e, b, new Dictionary<string, string>(meta, StringComparer.Ordinal));
        }
        TrainResult Result(List<EpochStats> done, TrainingCheckpoint at) => new(at.Parameters, at.State, at.OptimizerState, done, at);
        // The pipeline makes every batch from here to the end of the run, ahead of the steps that take them.
        using var pipeline = new BatchPipeline(train, options.BatchSize, options.Seed, pipelineOptions, options.Epochs, epoch, firstBatch, CancellationToken.None);
        for (; epoch <= options.Epochs; epoch++, firstBatch = 0)
        {
            var clock = Stopwatch.StartNew();
            var waitedBefore = pipeline.Waited;
            double lossSum = 0;
            long correct = 0, seen = 0;
            for (int b = firstBatch; b < batches; b++)
            {
                if (cancellation.IsCancellationRequested)
                {
                    var stop = Here(epoch, b);
                    onCheckpoint?.Invoke(stop);
                    return Result(history, stop);
                }
                var batch = pipeline.Next();
                Debug.Assert(batch.Epoch == epoch && batch.Index == b);
                var x = batch.Images;
                var y = batch.LabelSpan;
                var targets = batch.Targets;
                int count = x.Shape[0];
                long step = session.OptimizerState.Step + 1;
                int seed = unchecked(options.Seed * 1_000_003 + (int)step);
                var optimizer = schedule.At(options.Optimizer, step, epoch, batches, options.Epochs, lrScale);
                lr = optimizer.LearningRate;
                var g = targets is null ? session.Step(optimizer, x, y, options.LossOrDefault, seed) : session.Step(optimizer, x, targets, options.LossOrDefault, seed);
                if (!float.IsFinite(g.Loss))
                {
                    // The session did not take the failed step: its values are those the step started from.
                    var where = Apply.FirstNonFinite(network, session.Parameters, x, Mode.Train, session.State, seed) ?? "the loss";
                    throw new CnnException($"Training stopped: the loss is {g.Loss} at epoch {epoch}, batch {b + 1} (step {step}); " +
                        $"the first non-finite value appears in {(where == "input" ? "the input batch" : where == "the loss" ? "the loss" : $"the output of layer '{where}'")}. " +
                        "Lower the learning rate or check the data for NaN; the last checkpoint is unchanged.");
                }
                lossSum += g.Loss * count;
                if (targets is null) correct += CountCorrect(g.Output, y);
                seen += count;
                progress?.Report(new TrainProgress(epoch, b + 1, batches, (float)(lossSum / seen), Accuracy(correct, seen, train), clock.Elapsed));
            }
            var trainingElapsed = clock.Elapsed;
            // Validation batches as large as the training batch (at least 64, so tiny batches do not pay a call per few
            // images): its activations then never take more memory than a training step's.
            var val = validation is null ? null
                : EvaluateSource(network, session.Parameters, validation, Math.Max(options.BatchSize, 64), session.State, options.LossOrDefault, pipelineOptions.Normalize);
            var stats = new EpochStats(epoch, seen == 0 ? float.NaN : (float)(lossSum / seen), Accuracy(correct, seen, train), val, clock.Elapsed)
            {
                TrainingElapsed = trainingElapsed,
                DataWait = pipeline.Waited - waitedBefore,
            };
            history.Add(stats);
            onEpoch?.Invoke(stats);
            bool stopRequested = false;
            foreach (var callback in callbacks)
            {
                var d = callback(new EpochContext(stats, session.Parameters, session.State, lr, Here(epoch + 1, 0)));
                stopRequested |= d.Stop;
                lrScale *= d.LearningRateScale;
                if (d.Restore is { } best) session.Restore(best.Parameters, best.State);
            }
            onCheckpoint?.Invoke(Here(epoch + 1, 0));
            if (stopRequested) return Result(history, Here(epoch + 1, 0));
        }
        return Result(history, Here(epoch, 0));
    }

    /// <summary>
    /// One training step on a batch: the forward pass in training mode, the loss, the backward pass and the optimizer's
    /// update, as <c>Fit</c> takes it. The gradient of the input batch is not computed (nothing reads it), so the
    /// first layer skips that part of its backward pass. Pure: the arguments are not changed.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters before the step.</param>
    /// <param name="state">Its state (batch-norm running statistics) before the step.</param>
    /// <param name="optimizer">The update rule, with the learning rate of this step.</param>
    /// <param name="optimizerState">The optimizer's state before the step.</param>
    /// <param name="x">The batch, <c>[N, ...input shape]</c>.</param>
    /// <param name="labels">One class label per sample.</param>
    /// <param name="loss">The loss (default: softmax cross-entropy).</param>
    /// <param name="seed">Seeds the dropout masks.</param>
    /// <returns>The parameters, state and optimizer state after the step, the loss before it and the network's output.</returns>
    /// <exception cref="CnnException">A label is outside [0, classes), or the label count differs from the batch.</exception>
    public static StepResult Step(Network network, Parameters parameters, Parameters state, Optimizer optimizer, OptimizerState optimizerState,
        Tensor x, ReadOnlySpan<int> labels, LossFunction? loss = null, int seed = 0) =>
        StepOn(network, parameters, state, optimizer, optimizerState, x, new BatchTruth(labels), loss ?? LossFunction.SoftmaxCrossEntropy, seed);

    private static StepResult StepOn(Network network, Parameters parameters, Parameters state, Optimizer optimizer, OptimizerState optimizerState,
        Tensor x, BatchTruth truth, LossFunction loss, int seed)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(optimizerState);
        var arena = OwnArena;
        try
        {
            ForwardResult forward;
            TotalLoss l;
            Parameters gradients;
            // The activations, masks and gradients live only within the step: their arrays come from the arena and go
            // back to it, so the next step of the same shapes allocates none of them.
            using (arena?.Activate())
            {
                forward = Apply.ForTraining(network, parameters, x, state, seed);
                l = TotalLoss.Of(forward, loss, truth);
                gradients = forward.PullbackParameters(l.Main.Gradient, l.HeadGradients);
            }
            var next = optimizer.Step(parameters, gradients, optimizerState);
            // Whatever the step returns is copied out of the arena before it recycles (only what is in it: in practice
            // the output when it is large; the optimizer and the batch-norm statistics allocate outside it).
            return new StepResult(Keep(arena, next.Parameters), Keep(arena, forward.State), Keep(arena, next.State),
                l.Value, arena?.Keep(forward.Output) ?? forward.Output);
        }
        finally
        {
            arena?.Recycle();
        }
    }

    /// <summary>
    /// Each training thread's arena: it holds the arrays of one step's intermediate tensors between steps (the largest
    /// step's, released when a step no longer uses them), as PyTorch's caching allocator holds freed blocks.
    /// </summary>
    [ThreadStatic] private static TensorArena? t_arena;

    /// <summary>
    /// This thread's arena, or null when the caller has an arena of its own active: then the work allocates from the
    /// caller's, and keeping what it returns is the caller's business. It recycles arrays of every length: a step's shapes
    /// repeat from step to step, and its small arrays (batch statistics, per-channel gradients, the loss gradient) were
    /// most of what resnet-mini's step allocated beyond what it returns.
    /// </summary>
    internal static TensorArena? OwnArena => TensorArena.ActiveOnThisThread ? null : t_arena ??= new TensorArena(minimumLength: 1);

    /// <summary>The set with its arena tensors copied out; the same set when it holds none (the usual case), so a step makes no new map for it.</summary>
    private static Parameters Keep(TensorArena? arena, Parameters parameters)
    {
        if (arena is null) return parameters;
        List<KeyValuePair<string, Tensor>>? kept = null;
        foreach (var (path, t) in parameters.Entries)
        {
            var k = arena.Keep(t);
            if (!ReferenceEquals(k, t)) (kept ??= new()).Add(KeyValuePair.Create(path, k));
        }
        return kept is null ? parameters : parameters.SetItems(kept);
    }

    /// <summary>The state with its slots' arena tensors copied out (each once); the same state when they hold none.</summary>
    private static OptimizerState Keep(TensorArena? arena, OptimizerState state)
    {
        if (arena is null) return state;
        ImmutableSortedDictionary<string, Parameters>.Builder? kept = null;
        foreach (var (name, slot) in state.Slots)
        {
            var k = Keep(arena, slot);
            if (!ReferenceEquals(k, slot)) (kept ??= state.Slots.ToBuilder())[name] = k;
        }
        return kept is null ? state : state with { Slots = kept.ToImmutable() };
    }

    private const string LearningRateScaleKey = "learning_rate_scale";

    /// <summary>
    /// The order of the samples in an epoch: a function of the seed and the epoch alone, so a resumed run
    /// shuffles exactly as an uninterrupted one.
    /// </summary>
    public static int[] EpochOrder(int count, int seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        new Random(unchecked(seed * 7919 + epoch)).Shuffle(order);
        return order;
    }

    /// <summary>The paths of the parameters that train: every parameter outside a <see cref="Freeze"/>.</summary>
    public static IReadOnlySet<string> TrainablePaths(Network network) =>
        network.RootNode.Leaves().Where(n => !n.Frozen).SelectMany(n => n.ParameterSpecs()).Select(s => s.Path).ToHashSet(StringComparer.Ordinal);

    private static void CheckFits(Network network, SampleSource data, LossFunction loss, string what)
    {
        if (data.SampleShape != network.InputShape)
            throw new ShapeException($"The {what} has samples of shape {data.SampleShape}; the network expects {network.InputShape}.");
        if (CheckTargetsFit(network, data, loss, what)) return;
        if (network.OutputShape.Rank != 1 || network.OutputShape[0] != data.Classes)
            throw new CnnException($"The {what} has {data.Classes} classes; the network's output is {network.OutputShape} (expected [{data.Classes}]).");
    }
}
