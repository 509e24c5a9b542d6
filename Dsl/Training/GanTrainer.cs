using System.Collections.Immutable;
using System.Diagnostics;
using System.Numerics.Tensors;
using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl.IO;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Dsl;

/// <summary>
/// Adversarial training of a generator and a discriminator (Goodfellow et al., 2014, in the DCGAN form of Radford et al.):
/// alternating steps, each a discriminator update on a batch of real and a batch of generated images, then a generator
/// update through the updated discriminator, both on binary cross-entropy with logits (the discriminator outputs one
/// logit per image). The same seed, data and options give bitwise-identical results, and a resumed run equals an
/// uninterrupted one bit for bit.
/// </summary>
public static class GanTrainer
{
    /// <summary>
    /// <paramref name="count"/> standard-normal noise vectors of shape <paramref name="sampleShape"/> (the generator's
    /// input shape), drawn from <paramref name="seed"/> alone: the fixed batch a run draws its sample grids from.
    /// </summary>
    /// <param name="sampleShape">One noise sample's shape (e.g. <c>[100, 1, 1]</c>).</param>
    /// <param name="count">Samples.</param>
    /// <param name="seed">The seed.</param>
    public static Tensor Noise(Shape sampleShape, int count, int seed)
    {
        ArgumentNullException.ThrowIfNull(sampleShape);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rng = PathHash.Generator(seed, "gan/noise");
        var d = new float[checked(count * sampleShape.Size)];
        for (int i = 0; i < d.Length; i++) d[i] = (float)Init.Gaussian(rng);
        return Tensor.Own(d, sampleShape.PrependBatch(count));
    }

    /// <summary>
    /// Trains <paramref name="generator"/> against <paramref name="discriminator"/> on <paramref name="realImages"/>.
    /// Each step shuffles nothing itself: the epoch's order (<see cref="Trainer.EpochOrder"/>), the step's noise and the
    /// dropout masks are functions of the seed, epoch and step, so a checkpoint's position is its whole random state.
    /// </summary>
    /// <param name="generator">The generator (its output is one image of the discriminator's input shape) with its initial parameters and state.</param>
    /// <param name="discriminator">The discriminator (its output is one logit, shape <c>[1]</c>) with its initial parameters and state.</param>
    /// <param name="realImages">The real images, <c>[N, ...discriminator input]</c>, in the range of the generator's output
    /// (for a tanh generator, pixels scaled to [-1, 1]).</param>
    /// <param name="options">Epochs, batch size, both optimizers and their schedule, seed and label smoothing.</param>
    /// <param name="onEpoch">Called after each epoch with its figures and a checkpoint that resumes after it.</param>
    /// <param name="cancellation">Stops training before the next step; the result holds the state reached.</param>
    /// <param name="resume">A checkpoint to continue from: its parameters, states, optimizer states and position replace the
    /// models'. With the same data, options and networks, the result is bitwise equal to an uninterrupted run's.</param>
    /// <param name="onCheckpoint">Called at the end of every epoch, and when cancelled, with a checkpoint to save.</param>
    /// <param name="progress">Receives the running means after each step, synchronously on the training thread.</param>
    /// <exception cref="CnnException">The networks or the images do not fit each other, an option is out of range, the
    /// checkpoint does not fit, or a loss became NaN or infinite.</exception>
    public static GanResult Fit(Model generator, Model discriminator, Tensor realImages, GanOptions options,
        Action<GanEpochStats, GanCheckpoint>? onEpoch = null, CancellationToken cancellation = default,
        GanCheckpoint? resume = null, Action<GanCheckpoint>? onCheckpoint = null, Action<GanProgress>? progress = null)
    {
        try
        {
            return FitRun(generator, discriminator, realImages, options, onEpoch, cancellation, resume, onCheckpoint, progress);
        }
        finally
        {
            Trainer.ReleaseCachedMemory();
        }
    }

    private static GanResult FitRun(Model generator, Model discriminator, Tensor realImages, GanOptions options,
        Action<GanEpochStats, GanCheckpoint>? onEpoch, CancellationToken cancellation, GanCheckpoint? resume, Action<GanCheckpoint>? onCheckpoint,
        Action<GanProgress>? progress)
    {
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentNullException.ThrowIfNull(discriminator);
        ArgumentNullException.ThrowIfNull(realImages);
        ArgumentNullException.ThrowIfNull(options);
        CheckFits(generator.Network, discriminator.Network, realImages, options);
        var g = Start(generator, options.GeneratorOptimizer, resume?.Generator, "generator");
        var d = Start(discriminator, options.DiscriminatorOptimizer, resume?.Discriminator, "discriminator");
        if (g.OptimizerState.Step != d.OptimizerState.Step)
            throw new CnnException($"The checkpoint's generator has taken {g.OptimizerState.Step} steps and its discriminator {d.OptimizerState.Step}; adversarial steps update both, so they must be equal.");
        int n = realImages.Shape[0], batches = (n + options.BatchSize - 1) / options.BatchSize;
        int epoch = resume?.Epoch ?? 1, firstBatch = resume?.Batch ?? 0;
        if (firstBatch > batches)
            throw new CnnException($"The checkpoint is at batch {firstBatch} of epoch {epoch}, but an epoch of {n} images in batches of {options.BatchSize} has {batches}: resume with the same data and batch size.");
        var metadata = resume?.Metadata ?? new Dictionary<string, string>();
        float decay = options.GeneratorAverageDecay;
        var average = decay == 0f ? null : StartAverage(resume?.GeneratorAverage?.Parameters, g.Parameters);
        GanAverage? measured = null;
        long measuredAt = -1;
        GanCheckpoint Here(int e, int b)
        {
            if (average is not null && measuredAt != g.OptimizerState.Step)
                (measured, measuredAt) = (new GanAverage(average, StandingState(generator.Network, average, g.State, options.Seed)), g.OptimizerState.Step);
            return new(g, d, e, b, metadata) { GeneratorAverage = measured };
        }
        GanResult Result(List<GanEpochStats> h, GanCheckpoint cp) =>
            new(generator with { Parameters = g.Parameters, State = g.State }, discriminator with { Parameters = d.Parameters, State = d.State }, h, cp);
        var history = new List<GanEpochStats>();
        var noiseShape = generator.Network.InputShape;
        var schedule = options.Schedule ?? Schedule.Constant;
        for (; epoch <= options.Epochs; epoch++, firstBatch = 0)
        {
            var clock = Stopwatch.StartNew();
            var order = Trainer.EpochOrder(n, options.Seed, epoch);
            double dLoss = 0, gLoss = 0, real = 0, fake = 0;
            long seen = 0;
            float Mean(double sum) => seen == 0 ? float.NaN : (float)(sum / seen);
            GanLosses Means() => new(Mean(dLoss), Mean(gLoss), Mean(real), Mean(fake));
            for (int b = firstBatch; b < batches; b++)
            {
                if (cancellation.IsCancellationRequested)
                {
                    var stop = Here(epoch, b);
                    onCheckpoint?.Invoke(stop);
                    return Result(history, stop);
                }
                int count = Math.Min(options.BatchSize, n - b * options.BatchSize);
                long step = g.OptimizerState.Step + 1;
                var x = realImages.Gather(order.AsSpan(b * options.BatchSize, count));
                var z = Noise(noiseShape, count, unchecked(options.Seed * 1_000_003 + (int)step));
                var r = Step(generator.Network, g, discriminator.Network, d, schedule.At(options.GeneratorOptimizer, step, epoch, batches, options.Epochs),
                    schedule.At(options.DiscriminatorOptimizer, step, epoch, batches, options.Epochs), x, z,
                    options.RealTarget, unchecked(options.Seed * 7_919 + (int)step));
                var l = r.Losses;
                if (!float.IsFinite(l.DiscriminatorLoss) || !float.IsFinite(l.GeneratorLoss))
                    throw new CnnException($"Adversarial training stopped: the discriminator's loss is {l.DiscriminatorLoss} and the generator's {l.GeneratorLoss} " +
                        $"at epoch {epoch}, batch {b + 1} (step {step}). Lower the learning rates or check the images for NaN; the last checkpoint is unchanged.");
                (g, d) = (r.Generator, r.Discriminator);
                if (average is not null) average = Average(average, g.Parameters, decay);
                dLoss += (double)l.DiscriminatorLoss * count;
                gLoss += (double)l.GeneratorLoss * count;
                real += (double)l.RealScore * count;
                fake += (double)l.FakeScore * count;
                seen += count;
                progress?.Invoke(new GanProgress(epoch, b + 1, batches, Means(), clock.Elapsed));
            }
            var stats = new GanEpochStats(epoch, Means(), clock.Elapsed);
            history.Add(stats);
            var after = Here(epoch + 1, 0);
            onEpoch?.Invoke(stats, after);
            onCheckpoint?.Invoke(after);
        }
        return Result(history, Here(epoch, 0));
    }

    /// <summary>
    /// One adversarial step, as <see cref="Fit"/> takes it: the generator makes images from <paramref name="noise"/> (in
    /// training mode); the discriminator is updated on the real batch (target <paramref name="realTarget"/>) and on those
    /// images (target 0), one forward pass each, its batch-norm statistics updated by both; then the updated discriminator
    /// judges the same images again and the generator is updated to make it answer "real" (target 1), the gradient
    /// flowing through the discriminator into the generator. Pure: the arguments are not changed.
    /// </summary>
    /// <param name="generator">The generator.</param>
    /// <param name="g">The generator's parameters, state and optimizer state before the step.</param>
    /// <param name="discriminator">The discriminator (one logit per image).</param>
    /// <param name="d">The discriminator's parameters, state and optimizer state before the step.</param>
    /// <param name="generatorOptimizer">The generator's update rule.</param>
    /// <param name="discriminatorOptimizer">The discriminator's update rule.</param>
    /// <param name="real">The real batch, <c>[N, ...discriminator input]</c>.</param>
    /// <param name="noise">The generator's input, <c>[M, ...generator input]</c>.</param>
    /// <param name="realTarget">The discriminator's target for real images (1, or less for one-sided label smoothing).</param>
    /// <param name="seed">Seeds the dropout masks of the four passes.</param>
    /// <exception cref="CnnException">A batch does not fit its network, or the target is outside [0, 1].</exception>
    public static GanStepResult Step(Network generator, GanPlayer g, Network discriminator, GanPlayer d, Optimizer generatorOptimizer,
        Optimizer discriminatorOptimizer, Tensor real, Tensor noise, float realTarget = 1f, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(d);
        ArgumentNullException.ThrowIfNull(generatorOptimizer);
        ArgumentNullException.ThrowIfNull(discriminatorOptimizer);
        var arena = Trainer.OwnArena;
        try
        {
            // Every pass's activations and gradients live only within the step (see Trainer.Step); what the step returns
            // is copied out of the arena before it recycles.
            using (arena?.Activate())
            {
                var fakePass = Apply.ForTraining(generator, g.Parameters, noise, g.State, seed);
                var fake = fakePass.Output;
                var onReal = Apply.ForTraining(discriminator, d.Parameters, real, d.State, unchecked(seed + 1));
                var realLoss = Losses.BinaryCrossEntropyWithLogits(onReal.Output, Tensor.Full(onReal.Output.Shape, realTarget));
                var realGradients = onReal.PullbackParameters(realLoss.Gradient);
                var onFake = Apply.ForTraining(discriminator, d.Parameters, fake, onReal.State, unchecked(seed + 2));
                var fakeLoss = Losses.BinaryCrossEntropyWithLogits(onFake.Output, Tensor.Zeros(onFake.Output.Shape));
                var fakeGradients = onFake.PullbackParameters(fakeLoss.Gradient);
                var dNext = discriminatorOptimizer.Step(d.Parameters, Sum(realGradients, fakeGradients), d.OptimizerState);

                var judged = Apply.WithPullback(discriminator, dNext.Parameters, fake, Mode.Train, onFake.State, unchecked(seed + 3));
                var generatorLoss = Losses.BinaryCrossEntropyWithLogits(judged.Output, Tensor.Full(judged.Output.Shape, 1f));
                var fakeGradient = judged.Pullback(generatorLoss.Gradient).Input;
                var gNext = generatorOptimizer.Step(g.Parameters, fakePass.PullbackParameters(fakeGradient), g.OptimizerState);

                var losses = new GanLosses(realLoss.Value + fakeLoss.Value, generatorLoss.Value, MeanSigmoid(onReal.Output), MeanSigmoid(onFake.Output));
                return new GanStepResult(Keep(arena, new GanPlayer(gNext.Parameters, fakePass.State, gNext.State)),
                    Keep(arena, new GanPlayer(dNext.Parameters, judged.State, dNext.State)), losses);
            }
        }
        finally
        {
            arena?.Recycle();
        }
    }

    private static GanPlayer Start(Model model, Optimizer optimizer, GanPlayer? resumed, string role)
    {
        var trainable = Trainer.TrainablePaths(model.Network);
        var p = resumed?.Parameters ?? model.Parameters;
        var mine = Parameters.Of(p.Entries.Where(kv => trainable.Contains(kv.Key)));
        if (resumed is null) return new GanPlayer(p, model.State, optimizer.Init(mine));
        Model.FromCheckpoint(model.Network, new TrainingCheckpoint(resumed.Parameters, resumed.State, resumed.OptimizerState, 1, 0, new Dictionary<string, string>()));
        optimizer.CheckState(resumed.OptimizerState, mine, $"the checkpoint's {role}");
        return resumed;
    }

    /// <summary>
    /// Batch-norm running statistics for <paramref name="parameters"/> of <paramref name="generator"/> ("standing
    /// statistics", Brock et al., 2019): <see cref="StandingBatches"/> batches of <see cref="StandingBatchSize"/> noise
    /// vectors drawn from <paramref name="seed"/> go through it in training mode, each moving the running statistics by the
    /// layer's momentum from <paramref name="state"/> (PyTorch's 0.1 leaves 0.9^40, under 2 %, of the start). A function of
    /// its arguments alone, so a resumed run measures the same bits.
    /// </summary>
    /// <param name="generator">The generator.</param>
    /// <param name="parameters">The parameters to measure the statistics of (the moving average of the trained ones).</param>
    /// <param name="state">Where the statistics start (the trained generator's).</param>
    /// <param name="seed">Seeds the noise.</param>
    /// <exception cref="ShapeException">The parameters or the state do not fit the generator.</exception>
    public static Parameters StandingState(Network generator, Parameters parameters, Parameters state, int seed)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var noise = Noise(generator.InputShape, StandingBatches * StandingBatchSize, unchecked(seed ^ 0x5eed_57a7));
        for (int b = 0; b < StandingBatches; b++)
            state = Apply.ForTraining(generator, parameters, noise.Slice(b * StandingBatchSize, StandingBatchSize), state, unchecked(seed + b)).State;
        return state;
    }

    /// <summary>Batches that <see cref="StandingState"/> measures.</summary>
    public const int StandingBatches = 40;

    /// <summary>Noise vectors in each batch of <see cref="StandingState"/>.</summary>
    public const int StandingBatchSize = 50;

    /// <summary>A resumed average, checked against the generator's parameters, or (starting, or resuming a run that kept none) the parameters themselves.</summary>
    private static Parameters StartAverage(Parameters? resumed, Parameters generator)
    {
        if (resumed is null) return generator;
        string Describe(Parameters p) => string.Join(", ", p.Entries.Select(kv => $"{kv.Key} {kv.Value.Shape}"));
        if (!resumed.Paths.SequenceEqual(generator.Paths) || resumed.Entries.Zip(generator.Entries).Any(e => e.First.Value.Shape != e.Second.Value.Shape))
            throw new CnnException($"The checkpoint's generator average does not fit the generator: the average holds {Describe(resumed)}; the generator has {Describe(generator)}.");
        return resumed;
    }

    /// <summary><c>decay * average + (1 - decay) * parameters</c>, element by element (the same bits on any thread count).</summary>
    private static Parameters Average(Parameters average, Parameters parameters, float decay) => average.Map((path, a) =>
    {
        var next = GC.AllocateUninitializedArray<float>(a.Size);
        TensorPrimitives.Multiply(parameters[path].Span, 1f - decay, next);
        TensorPrimitives.MultiplyAdd(a.Span, decay, next, next);
        return Tensor.Own(next, a.Shape);
    });

    private static void CheckFits(Network generator, Network discriminator, Tensor real, GanOptions options)
    {
        if (options.Epochs < 1 || options.BatchSize < 1)
            throw new CnnException($"Adversarial training needs epochs >= 1 and batch size >= 1; found {options.Epochs} and {options.BatchSize}.");
        if (!(options.RealLabelSmoothing >= 0f && options.RealLabelSmoothing < 1f))
            throw new CnnException($"GanOptions.RealLabelSmoothing is from 0 up to but not including 1 (0.1 is usual); found {options.RealLabelSmoothing}.");
        if (!(options.GeneratorAverageDecay >= 0f && options.GeneratorAverageDecay < 1f))
            throw new CnnException($"GanOptions.GeneratorAverageDecay is from 0 (no average) up to but not including 1 (0.999 is usual); found {options.GeneratorAverageDecay}.");
        if (generator.OutputShape != discriminator.InputShape)
            throw new ShapeException($"The generator makes samples of shape {generator.OutputShape}; the discriminator takes {discriminator.InputShape}.");
        if (discriminator.OutputShape != new Shape(1))
            throw new ShapeException($"The discriminator's output is {discriminator.OutputShape}; adversarial training needs one logit per image, [1] (end it in a one-unit Dense or Conv2d and Flatten, without a sigmoid).");
        if (real.Shape.Rank != discriminator.InputShape.Rank + 1 || real.Shape.DropBatch() != discriminator.InputShape || real.Shape[0] < 1)
            throw new ShapeException($"The real images are {real.Shape}; expected [N, {string.Join(", ", discriminator.InputShape)}] with N >= 1, the discriminator's input.");
    }

    private static Parameters Sum(Parameters a, Parameters b) => a.Map((path, t) =>
    {
        var sum = GC.AllocateUninitializedArray<float>(t.Size);
        TensorPrimitives.Add(t.Span, b[path].Span, sum);
        return Tensor.Own(sum, t.Shape);
    });

    private static float MeanSigmoid(Tensor logits)
    {
        double s = 0;
        foreach (var z in logits.Span) s += 1 / (1 + Math.Exp(-z));
        return (float)(s / Math.Max(1, logits.Size));
    }

    private static GanPlayer Keep(TensorArena? arena, GanPlayer p) => arena is null ? p
        : new GanPlayer(p.Parameters.Map((_, t) => arena.Keep(t)), p.State.Map((_, t) => arena.Keep(t)),
            p.OptimizerState with { Slots = p.OptimizerState.Slots.ToImmutableSortedDictionary(kv => kv.Key, kv => kv.Value.Map((_, t) => arena.Keep(t)), StringComparer.Ordinal) });
}
