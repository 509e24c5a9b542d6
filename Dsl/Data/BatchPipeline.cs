using System.Diagnostics;
using Cnn.Core;

namespace Cnn.Dsl.Data;

/// <summary>
/// Makes the training batches of a run ahead of the training step, on threads of its own, into a bounded queue:
/// the examples of each batch in the epoch's shuffled order (<see cref="Trainer.EpochOrder"/>), converted to floats,
/// augmented and normalised as <see cref="PipelineOptions"/> say. A batch is a function of the data, the seed, the
/// epoch and the batch's index alone, so the same seed gives the same batches whatever the timing, the number of
/// threads, or where the run was resumed.
/// </summary>
/// <remarks>
/// The batches run on across epochs, so the first batches of the next epoch are made while the last ones and the
/// validation of this epoch run. <see cref="Waited"/> is the time <see cref="Next"/> spent waiting for a batch that
/// was not ready. Dispose the pipeline to stop its threads.
/// </remarks>
public sealed class BatchPipeline : IDisposable
{
    private readonly SampleSource _source;
    private readonly PipelineOptions _options;
    private readonly int _batchSize, _seed, _firstEpoch, _firstBatch;
    private readonly long _end;
    private readonly PipelineBatch?[] _slots;
    private readonly Thread[] _threads;
    private readonly object _gate = new();
    private readonly Dictionary<int, int[]> _orders = new();
    private readonly CancellationTokenRegistration _registration;
    private long _next, _consumed, _waitedTicks;
    private bool _stopped;
    private Exception? _error;

    /// <summary>Starts making the batches of epochs <paramref name="firstEpoch"/> to <paramref name="epochs"/> of a byte image set.</summary>
    /// <param name="data">The training images.</param>
    /// <param name="batchSize">Examples per batch; the last batch of an epoch may be smaller.</param>
    /// <param name="seed">The run's seed (as <see cref="TrainOptions.Seed"/>): it orders every epoch and draws the augmentation.</param>
    /// <param name="options">Augmentation, normalisation, threads and prefetch; <see cref="PipelineOptions.Default"/> if null.</param>
    /// <param name="epochs">The last epoch to make.</param>
    /// <param name="firstEpoch">The 1-based epoch to start in.</param>
    /// <param name="firstBatch">The 0-based batch of <paramref name="firstEpoch"/> to start at (to resume).</param>
    /// <param name="cancellation">Stops the threads; a later <see cref="Next"/> throws <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="CnnException">The sizes are out of range or the options do not fit the images.</exception>
    public BatchPipeline(ByteImageSet data, int batchSize, int seed, PipelineOptions? options = null, int epochs = 1, int firstEpoch = 1,
        int firstBatch = 0, CancellationToken cancellation = default)
        : this(SampleSource.Of(data ?? throw new ArgumentNullException(nameof(data))), batchSize, seed, options, epochs, firstEpoch, firstBatch, cancellation)
    {
    }

    /// <summary>
    /// Starts making the batches of epochs <paramref name="firstEpoch"/> to <paramref name="epochs"/> of a float data set,
    /// as <c>Trainer.Fit</c> on a <see cref="LabeledData"/>
    /// does: every epoch's augmentation is drawn afresh from the seed, the epoch and the batch.
    /// </summary>
    /// <param name="data">The training examples.</param>
    /// <param name="batchSize">Examples per batch; the last batch of an epoch may be smaller.</param>
    /// <param name="seed">The run's seed: it orders every epoch and draws the augmentation.</param>
    /// <param name="options">Augmentation, normalisation, threads and prefetch; <see cref="PipelineOptions.Default"/> if null.</param>
    /// <param name="epochs">The last epoch to make.</param>
    /// <param name="firstEpoch">The 1-based epoch to start in.</param>
    /// <param name="firstBatch">The 0-based batch of <paramref name="firstEpoch"/> to start at (to resume).</param>
    /// <param name="cancellation">Stops the threads; a later <see cref="Next"/> throws <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="CnnException">The sizes are out of range or the options do not fit the examples.</exception>
    public BatchPipeline(LabeledData data, int batchSize, int seed, PipelineOptions? options = null, int epochs = 1, int firstEpoch = 1,
        int firstBatch = 0, CancellationToken cancellation = default)
        : this(SampleSource.Of(data ?? throw new ArgumentNullException(nameof(data))), batchSize, seed, options, epochs, firstEpoch, firstBatch, cancellation)
    {
    }

    internal BatchPipeline(SampleSource source, int batchSize, int seed, PipelineOptions? options, int epochs, int firstEpoch, int firstBatch,
        CancellationToken cancellation)
    {
        _options = options ?? PipelineOptions.Default;
        _options.Check(source.SampleShape);
        if (batchSize < 1 || firstEpoch < 1)
            throw new CnnException($"A batch pipeline needs a batch size >= 1 and a first epoch >= 1; found {batchSize} and {firstEpoch}.");
        (_source, _batchSize, _seed, _firstEpoch, _firstBatch) = (source, batchSize, seed, firstEpoch, firstBatch);
        BatchesPerEpoch = (source.Count + batchSize - 1) / batchSize;
        if (firstBatch < 0 || firstBatch > BatchesPerEpoch)
            throw new CnnException($"Batch {firstBatch} is outside an epoch of {BatchesPerEpoch} batches.");
        _end = Math.Max(0, (long)(epochs - firstEpoch + 1) * BatchesPerEpoch - firstBatch);
        _slots = new PipelineBatch?[_options.Prefetch];
        _threads = Enumerable.Range(0, _options.Threads).Select(i => new Thread(Work) { IsBackground = true, Name = $"batch pipeline {i + 1}" }).ToArray();
        foreach (var t in _threads) t.Start();
        _registration = cancellation.Register(Stop);
    }

    /// <summary>Batches in one epoch.</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>The time <see cref="Next"/> has spent waiting for batches so far.</summary>
    public TimeSpan Waited => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _waitedTicks));

    /// <summary>The next batch in order, waiting for it if it is not ready.</summary>
    /// <exception cref="CnnException">Every batch has been taken, or making a batch failed (the inner exception says why).</exception>
    /// <exception cref="OperationCanceledException">The pipeline was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The pipeline was disposed.</exception>
    public PipelineBatch Next()
    {
        lock (_gate)
        {
            long k = _consumed;
            if (k >= _end) throw new CnnException($"The batch pipeline has made all its {_end} batches.");
            int slot = (int)(k % _slots.Length);
            if (_slots[slot]?.Sequence != k)
            {
                long start = Stopwatch.GetTimestamp();
                while (_slots[slot]?.Sequence != k)
                {
                    if (_error is not null) throw new CnnException($"Making a training batch failed: {_error.Message}", _error);
                    if (_stopped) throw new OperationCanceledException("The batch pipeline was stopped.");
                    Monitor.Wait(_gate);
                }
                Interlocked.Add(ref _waitedTicks, Stopwatch.GetTimestamp() - start);
            }
            var batch = _slots[slot]!;
            _slots[slot] = null;
            _consumed++;
            Monitor.PulseAll(_gate);
            return batch;
        }
    }

    /// <summary>Stops the threads and waits for them.</summary>
    public void Dispose()
    {
        Stop();
        _registration.Dispose();
        foreach (var t in _threads) t.Join();
    }

    private void Stop()
    {
        lock (_gate)
        {
            _stopped = true;
            Monitor.PulseAll(_gate);
        }
    }

    private void Work()
    {
        try
        {
            while (true)
            {
                long k;
                lock (_gate)
                {
                    while (!_stopped && _next < _end && _next >= _consumed + _slots.Length) Monitor.Wait(_gate);
                    if (_stopped || _next >= _end) return;
                    k = _next++;
                }
                var batch = Make(k);
                lock (_gate)
                {
                    _slots[k % _slots.Length] = batch;
                    Monitor.PulseAll(_gate);
                }
            }
        }
        catch (Exception e)
        {
            lock (_gate)
            {
                _error ??= e;
                _stopped = true;
                Monitor.PulseAll(_gate);
            }
        }
    }

    private PipelineBatch Make(long sequence)
    {
        long at = _firstBatch + sequence;
        int epoch = checked(_firstEpoch + (int)(at / BatchesPerEpoch)), index = (int)(at % BatchesPerEpoch);
        int[] order;
        lock (_orders)
        {
            if (!_orders.TryGetValue(epoch, out order!))
            {
                order = Trainer.EpochOrder(_source.Count, _seed, epoch);
                _orders.Remove(epoch - 2);
                _orders[epoch] = order;
            }
        }
        int start = index * _batchSize, count = Math.Min(_batchSize, _source.Count - start);
        var (images, labels, targets) = Assemble(_source, order.AsSpan(start, count), _options, AugmentSeed(_seed, epoch, index));
        return new PipelineBatch(sequence, epoch, index, images, labels) { Targets = targets };
    }

    /// <summary>
    /// The examples at <paramref name="rows"/> as floats, augmented (with <paramref name="augmentSeed"/>), normalised and
    /// erased, with their labels, or with their float targets (then the labels are empty).
    /// </summary>
    internal static (Tensor Images, int[] Labels, Tensor? Targets) Assemble(SampleSource source, ReadOnlySpan<int> rows, PipelineOptions options, int augmentSeed)
    {
        var sample = source.SampleShape;
        int size = sample.Size;
        var x = new float[rows.Length * size];
        var targetShape = source.TargetShape;
        var y = new int[targetShape is null ? rows.Length : 0];
        var t = new float[targetShape is null ? 0 : rows.Length * targetShape.Size];
        for (int i = 0; i < rows.Length; i++)
        {
            source.Write(rows[i], x.AsSpan(i * size, size));
            if (targetShape is null) y[i] = source.Label(rows[i]);
            else source.WriteTarget(rows[i], t.AsSpan(i * targetShape.Size, targetShape.Size));
        }
        var images = Tensor.Own(x, sample.PrependBatch(rows.Length));
        if (options.Augment is { } augment) images = Augment.Transform(images, augment, augmentSeed);
        if (options.Normalize is { } normalize) images = normalize.Apply(images);
        // Erasing comes after normalising, as torchvision's RandomErasing after Normalize: its fill 0 is the mean.
        if (options.Augment?.Erasing is { } erasing) images = Augment.RandomErase(images, erasing, augmentSeed);
        return (images, y, targetShape is null ? null : Tensor.Own(t, targetShape.PrependBatch(rows.Length)));
    }

    /// <summary>The augmentation seed of a batch (SplitMix64's finaliser over the three numbers: stable everywhere).</summary>
    private static int AugmentSeed(int seed, int epoch, int index)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)epoch) * 0x9E3779B97F4A7C15UL + (uint)index;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (int)(z ^ (z >> 31));
    }
}
