using System.Globalization;
using System.Text;
using Cnn.Core;
using Cnn.Dsl.IO;

namespace Cnn.Dsl;

/// <summary>What a callback sees at the end of an epoch.</summary>
/// <param name="Stats">The epoch's figures.</param>
/// <param name="Parameters">The parameters after the epoch.</param>
/// <param name="State">The network's state after the epoch.</param>
/// <param name="LearningRate">The learning rate of the epoch's last step.</param>
/// <param name="Checkpoint">A checkpoint that resumes after this epoch.</param>
public sealed record EpochContext(EpochStats Stats, Parameters Parameters, Parameters State, float LearningRate, TrainingCheckpoint Checkpoint)
{
    /// <summary>
    /// A metric by Keras's name: <c>loss</c>, <c>accuracy</c>, <c>val_loss</c>, <c>val_accuracy</c>.
    /// </summary>
    /// <exception cref="CnnException">The metric is unknown, a validation metric is asked for without validation data, or
    /// accuracy is asked for when training on float targets (where it is not defined).</exception>
    public float Metric(string name) => name switch
    {
        "loss" => Stats.TrainLoss,
        "accuracy" => Defined(name, Stats.TrainAccuracy),
        "val_loss" => Stats.Validation?.Loss ?? throw NoValidation(name),
        "val_accuracy" => Defined(name, Stats.Validation?.Accuracy ?? throw NoValidation(name)),
        _ => throw new CnnException($"Unknown metric '{name}'; expected loss, accuracy, val_loss or val_accuracy."),
    };

    // Accuracy is NaN on float targets (regression, multi-label): a callback monitoring it would never see an improvement.
    private static float Defined(string name, float accuracy) => !float.IsNaN(accuracy) ? accuracy
        : throw new CnnException($"Metric '{name}' is not defined when training on float targets (TargetData); monitor loss or val_loss.");

    private static CnnException NoValidation(string name) => new($"Metric '{name}' needs validation data; pass validation to Trainer.Fit.");
}

/// <summary>What a callback asks of the training loop.</summary>
/// <param name="Stop">Stop after this epoch.</param>
/// <param name="LearningRateScale">Multiply every later step's learning rate by this (1 keeps it).</param>
/// <param name="Restore">Parameters and state to continue or finish with (early stopping's best).</param>
public sealed record CallbackDecision(bool Stop = false, float LearningRateScale = 1f, (Parameters Parameters, Parameters State)? Restore = null)
{
    /// <summary>Nothing to change.</summary>
    public static CallbackDecision Continue { get; } = new();
}

/// <summary>Whether a larger or a smaller metric is better.</summary>
public enum MetricMode
{
    /// <summary>Accuracy-like metrics are maximised, the rest minimised (Keras's "auto").</summary>
    Auto,
    /// <summary>Smaller is better.</summary>
    Min,
    /// <summary>Larger is better.</summary>
    Max,
}

/// <summary>
/// A training callback as an immutable value: its settings. Each training run starts a fresh instance with
/// <see cref="Start"/>, so one value can serve many runs, and values compose (<see cref="TrainOptions.Callbacks"/>).
/// </summary>
public abstract record Callback
{
    /// <summary>Starts the callback for one run; the returned function is called after every epoch.</summary>
    public abstract Func<EpochContext, CallbackDecision> Start();

    /// <summary>Stops when <paramref name="monitor"/> has not improved by <paramref name="minDelta"/> for <paramref name="patience"/> epochs (Keras's <c>EarlyStopping</c>), optionally restoring the best parameters.</summary>
    public static Callback EarlyStopping(string monitor = "val_loss", float minDelta = 0f, int patience = 0, MetricMode mode = MetricMode.Auto, bool restoreBest = false) =>
        new EarlyStoppingCallback(monitor, minDelta, patience, mode, restoreBest);

    /// <summary>Multiplies the learning rate by <paramref name="factor"/> when <paramref name="monitor"/> has not improved for <paramref name="patience"/> epochs, down to <paramref name="minRate"/> (Keras's <c>ReduceLROnPlateau</c>).</summary>
    public static Callback ReduceLearningRateOnPlateau(string monitor = "val_loss", float factor = 0.1f, int patience = 10, float minRate = 0f, float minDelta = 1e-4f, MetricMode mode = MetricMode.Auto) =>
        factor is > 0 and < 1 ? new PlateauCallback(monitor, factor, patience, minRate, minDelta, mode)
        : throw new CnnException($"ReduceLearningRateOnPlateau needs 0 < factor < 1; found {factor}.");

    /// <summary>
    /// Saves a checkpoint after each epoch (Keras's <c>ModelCheckpoint</c>). The file name template may hold
    /// <c>{epoch}</c> and any metric (<c>{val_loss}</c>, formatted to 4 decimals). With <paramref name="saveBestOnly"/>,
    /// a file is written only when <paramref name="monitor"/> improves, and a run that starts where a better checkpoint
    /// already exists under the same (fixed) name never overwrites it with a worse one: the best value is read back
    /// from that file. <paramref name="keepLast"/> deletes all but the newest k files this callback wrote (0 keeps all).
    /// </summary>
    public static Callback ModelCheckpoint(string pathTemplate, string monitor = "val_loss", bool saveBestOnly = false, MetricMode mode = MetricMode.Auto, int keepLast = 0, Network? network = null) =>
        new CheckpointCallback(pathTemplate, monitor, saveBestOnly, mode, keepLast, network);

    /// <summary>Appends one row per epoch to a CSV file: epoch, loss, accuracy, val_loss, val_accuracy, learning rate, seconds.</summary>
    public static Callback CsvLogger(string path) => new CsvCallback(path);

    /// <summary>A user-defined callback.</summary>
    public static Callback Custom(Func<EpochContext, CallbackDecision> onEpochEnd) => new CustomCallback(onEpochEnd);

    private protected static Func<float, float, bool> Better(string monitor, MetricMode mode, float minDelta)
    {
        bool max = mode == MetricMode.Max || (mode == MetricMode.Auto && monitor.Contains("acc", StringComparison.Ordinal));
        return max ? (v, best) => v > best + minDelta : (v, best) => v < best - minDelta;
    }

    private sealed record EarlyStoppingCallback(string Monitor, float MinDelta, int Patience, MetricMode Mode, bool RestoreBest) : Callback
    {
        public override Func<EpochContext, CallbackDecision> Start()
        {
            var better = Better(Monitor, Mode, Math.Abs(MinDelta));
            float? best = null;
            (Parameters, Parameters)? bestWeights = null;
            int wait = 0;
            return ctx =>
            {
                float v = ctx.Metric(Monitor);
                if (best is null || better(v, best.Value))
                {
                    best = v;
                    bestWeights = (ctx.Parameters, ctx.State);
                    wait = 0;
                    return CallbackDecision.Continue;
                }
                // Keras's rule: stop once `patience` epochs in a row have not improved.
                if (++wait < Math.Max(1, Patience)) return CallbackDecision.Continue;
                return new CallbackDecision(Stop: true, Restore: RestoreBest ? bestWeights : null);
            };
        }
    }

    private sealed record PlateauCallback(string Monitor, float Factor, int Patience, float MinRate, float MinDelta, MetricMode Mode) : Callback
    {
        public override Func<EpochContext, CallbackDecision> Start()
        {
            var better = Better(Monitor, Mode, MinDelta);
            float? best = null;
            int wait = 0;
            return ctx =>
            {
                float v = ctx.Metric(Monitor);
                if (best is null || better(v, best.Value)) { best = v; wait = 0; return CallbackDecision.Continue; }
                if (++wait < Math.Max(1, Patience)) return CallbackDecision.Continue;
                wait = 0;
                float next = Math.Max(MinRate, ctx.LearningRate * Factor);
                return next < ctx.LearningRate ? new CallbackDecision(LearningRateScale: next / ctx.LearningRate) : CallbackDecision.Continue;
            };
        }
    }

    private sealed record CheckpointCallback(string Template, string Monitor, bool SaveBestOnly, MetricMode Mode, int KeepLast, Network? Network) : Callback
    {
        private const string BestKey = "best_metric";

        public override Func<EpochContext, CallbackDecision> Start()
        {
            var better = Better(Monitor, Mode, 0f);
            float? best = null;
            var written = new List<string>();
            return ctx =>
            {
                float v = SaveBestOnly ? ctx.Metric(Monitor) : float.NaN;
                var path = Format(Template, ctx);
                if (SaveBestOnly)
                {
                    best ??= PreviousBest(path);
                    if (best is not null && !better(v, best.Value)) return CallbackDecision.Continue;
                    best = v;
                }
                var meta = new Dictionary<string, string>(ctx.Checkpoint.Metadata, StringComparer.Ordinal) { ["monitor"] = Monitor };
                if (SaveBestOnly) meta[BestKey] = v.ToString("R", CultureInfo.InvariantCulture);
                Checkpoint.Save(path, ctx.Checkpoint with { Metadata = meta }, Network);
                written.Remove(path);
                written.Add(path);
                while (KeepLast > 0 && written.Count > KeepLast)
                {
                    File.Delete(written[0]);
                    written.RemoveAt(0);
                }
                return CallbackDecision.Continue;
            };
        }

        /// <summary>The best value recorded in an existing checkpoint of the same name and monitor, so a restarted run does not overwrite a better file.</summary>
        private float? PreviousBest(string path)
        {
            if (!File.Exists(path)) return null;
            var meta = Checkpoint.Load(path).Metadata;
            return meta.TryGetValue("monitor", out var m) && m == Monitor && meta.TryGetValue(BestKey, out var b)
                && float.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) ? f : null;
        }

        private static string Format(string template, EpochContext ctx)
        {
            var sb = new StringBuilder(template);
            sb.Replace("{epoch}", ctx.Stats.Epoch.ToString("D3", CultureInfo.InvariantCulture));
            foreach (var name in new[] { "val_loss", "val_accuracy", "loss", "accuracy" })
                if (template.Contains("{" + name + "}", StringComparison.Ordinal))
                    sb.Replace("{" + name + "}", ctx.Metric(name).ToString("F4", CultureInfo.InvariantCulture));
            return sb.ToString();
        }
    }

    private sealed record CsvCallback(string Path) : Callback
    {
        public override Func<EpochContext, CallbackDecision> Start()
        {
            return ctx =>
            {
                var s = ctx.Stats;
                string F(float? v) => v is null ? "" : v.Value.ToString("R", CultureInfo.InvariantCulture);
                bool header = !File.Exists(Path);
                using var w = new StreamWriter(Path, append: true);
                if (header) w.WriteLine("epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds");
                w.WriteLine(string.Join(",", s.Epoch.ToString(CultureInfo.InvariantCulture), F(s.TrainLoss), F(s.TrainAccuracy),
                    F(s.Validation?.Loss), F(s.Validation?.Accuracy), F(ctx.LearningRate), s.Elapsed.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture)));
                w.Flush();
                return CallbackDecision.Continue;
            };
        }
    }

    private sealed record CustomCallback(Func<EpochContext, CallbackDecision> OnEpochEnd) : Callback
    {
        public override Func<EpochContext, CallbackDecision> Start() => OnEpochEnd;
    }
}
