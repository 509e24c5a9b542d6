using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using Cnn.Core;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;

namespace Cnn.Dsl.PyTorch;

/// <summary>
/// What the training script needs to train as <c>Trainer.Fit</c> does, computed here with the trainer's own rules
/// rather than re-derived in Python: every remaining epoch's sample order, and every remaining step's learning rate,
/// momentum (when the schedule cycles it) and dropout keys.
/// </summary>
internal static class PyTorchRecipe
{
    /// <summary>recipe.json's text and the epoch orders <c>[epochs left, samples]</c>.</summary>
    /// <exception cref="CnnException">The options, data or checkpoint do not make a run the script can take.</exception>
    public static (string Json, NpyArray Orders) Build(Network network, TrainingCheckpoint start, LabeledData data, TrainOptions options)
    {
        if (options.Epochs < 1 || options.BatchSize < 1)
            throw new CnnException($"Training needs epochs >= 1 and batch size >= 1; found {options.Epochs} and {options.BatchSize}.");
        if (options.Callbacks is { Count: > 0 })
            throw new CnnException("The PyTorch training script runs no callbacks (early stopping, plateaus, checkpoints per epoch): export the recipe without them.");
        if (data.Images.Shape.DropBatch() != network.InputShape)
            throw new ShapeException($"The training data has samples of shape {data.Images.Shape.DropBatch()}; the network expects {network.InputShape}.");
        if (network.OutputShape.Rank != 1 || network.OutputShape[0] != data.Classes)
            throw new CnnException($"The training data has {data.Classes} classes; the network's output is {network.OutputShape} (expected [{data.Classes}]).");
        int n = data.Count, batches = (n + options.BatchSize - 1) / options.BatchSize;
        if (start.Batch > batches)
            throw new CnnException($"The checkpoint is at batch {start.Batch} of epoch {start.Epoch}, but an epoch of this data has {batches} batches.");
        if (start.Epoch > options.Epochs)
            throw new CnnException($"The checkpoint is at epoch {start.Epoch}, past the {options.Epochs} epoch(s) of the recipe: nothing is left to train.");
        float lrScale = start.Metadata.TryGetValue("learning_rate_scale", out var sc) && float.TryParse(sc, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 1f;
        var schedule = options.Schedule ?? Schedule.Constant;
        var dropouts = network.RootNode.Leaves().Where(l => l is { Layer: Dropout { P: > 0f }, Frozen: false }).Select(l => l.Path).ToArray();

        var orders = new List<int>();
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = false }))
        {
            w.WriteStartObject();
            w.WriteString("format", "cnn-pytorch-recipe/1");
            w.WriteNumber("count", n);
            w.WriteNumber("classes", data.Classes);
            w.WriteNumber("batch_size", options.BatchSize);
            w.WriteNumber("batches_per_epoch", batches);
            w.WriteNumber("epochs", options.Epochs);
            w.WriteNumber("first_epoch", start.Epoch);
            w.WriteNumber("first_batch", start.Batch);
            w.WriteNumber("first_step", start.Step);
            w.WriteNumber("seed", options.Seed);
            w.WriteString("loss", LossName(options.LossOrDefault));
            WriteOptimizer(w, options.Optimizer);
            w.WriteStartArray("dropout_paths");
            foreach (var p in dropouts) w.WriteStringValue(p);
            w.WriteEndArray();

            var rates = new List<float>();
            var momenta = new List<float?>();
            var keys = new List<ulong[]>();
            long step = start.Step;
            for (int epoch = start.Epoch; epoch <= options.Epochs; epoch++)
            {
                orders.AddRange(Trainer.EpochOrder(n, options.Seed, epoch));
                for (int b = epoch == start.Epoch ? start.Batch : 0; b < batches; b++)
                {
                    step++;
                    // As Trainer.FitRun: the step's seed, rate and momentum.
                    int seed = unchecked(options.Seed * 1_000_003 + (int)step);
                    rates.Add(schedule.Rate(options.Optimizer.LearningRate, step, epoch, batches, options.Epochs) * lrScale);
                    momenta.Add(schedule.Momentum(step, batches, options.Epochs));
                    keys.Add(dropouts.Select(path => DropoutKey(seed, path)).ToArray());
                }
            }
            w.WriteStartArray("learning_rate");
            foreach (var r in rates) w.WriteNumberValue((double)r);
            w.WriteEndArray();
            // The optimizers that take a cycled momentum, as Optimizer.WithMomentum has it.
            if (options.Optimizer is Sgd { Momentum: > 0f } or Adam && momenta.Any(m => m is not null))
            {
                w.WriteStartArray("momentum");
                foreach (var m in momenta)
                    if (m is float value) w.WriteNumberValue((double)value);
                    else w.WriteNullValue();
                w.WriteEndArray();
            }
            else w.WriteNull("momentum");
            w.WriteStartArray("dropout_keys");
            foreach (var k in keys)
            {
                w.WriteStartArray();
                foreach (var key in k) w.WriteNumberValue(key);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        int epochsLeft = options.Epochs - start.Epoch + 1;
        return (System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n", NpyArray.FromInt32(orders.ToArray(), new Shape(epochsLeft, n)));
    }

    /// <summary>
    /// The 64-bit key of a dropout layer's mask at a step, drawn as Apply draws it (PathHash.Generator) and as the kernel reads
    /// it (DropoutKernel.Forward: 8 bytes of NextBytes, little-endian).
    /// </summary>
    private static ulong DropoutKey(int seed, string path)
    {
        Span<byte> bytes = stackalloc byte[8];
        PathHash.Generator(seed, path).NextBytes(bytes);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes);
    }

    private static string LossName(LossFunction loss) =>
        loss == LossFunction.SoftmaxCrossEntropy ? "cross_entropy"
        : loss == LossFunction.NegativeLogLikelihood ? "nll"
        : loss == LossFunction.MeanSquaredError ? "mse"
        : throw new CnnException($"The PyTorch training script has no rule for the loss {loss}.");

    /// <summary>Floats as the exact double of the float32, so Python reads the very value cnn holds.</summary>
    private static void WriteOptimizer(Utf8JsonWriter w, Optimizer optimizer)
    {
        w.WriteStartObject("optimizer");
        switch (optimizer)
        {
            case Sgd s:
                w.WriteString("kind", "sgd");
                w.WriteNumber("momentum", (double)s.Momentum);
                w.WriteBoolean("nesterov", s.Nesterov);
                break;
            case Adam a:
                w.WriteString("kind", "adam");
                w.WriteNumber("beta1", (double)a.Beta1);
                w.WriteNumber("beta2", (double)a.Beta2);
                w.WriteNumber("epsilon", (double)a.Epsilon);
                break;
            default:
                throw new CnnException($"The PyTorch training script has no update rule for the optimizer {optimizer.GetType().Name}.");
        }
        w.WriteNumber("weight_decay", (double)optimizer.WeightDecay);
        w.WriteEndObject();
    }

    /// <summary>The optimizer slots a checkpoint must carry for the recipe's optimizer.</summary>
    public static string[] SlotNames(Optimizer optimizer) => optimizer switch
    {
        Sgd { Momentum: 0f } => [],
        Sgd => ["velocity"],
        Adam => ["m", "v"],
        _ => throw new CnnException($"The PyTorch training script has no update rule for the optimizer {optimizer.GetType().Name}."),
    };
}
