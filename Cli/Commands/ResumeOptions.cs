using System.Globalization;
using Cnn.Core;

namespace Cnn.Cli;

/// <summary>
/// What <c>cnn train --resume</c> compares: every option the checkpoint's metadata records (network, data, seed,
/// optimizer, learning rate, batch size, augmentation, a fine-tuning run's frozen paths and head; <c>--normalize</c> only when the checkpoint has no normalisation,
/// since a resumed run always uses the recorded one) against the value this run would use. A
/// difference is an error listing each option's recorded and given value, unless <c>--allow-changes</c> is given; then
/// the change is accepted and recorded in the metadata key <see cref="ChangesKey"/>. An option the checkpoint does not
/// record (an older checkpoint) is not compared, and is recorded from now on.
/// </summary>
internal static class ResumeOptions
{
    /// <summary>The metadata key that lists the changes accepted with <c>--allow-changes</c>, oldest first.</summary>
    public const string ChangesKey = "changes";

    /// <summary>Each compared metadata key and the option that sets it.</summary>
    public static readonly IReadOnlyList<(string Key, string Option)> Compared =
    [
        (Model.NetworkKey, "--model"), ("data", "--data"), ("seed", "--seed"), ("optimizer", "--optimizer"), ("lr", "--lr"),
        ("batch_size", "--batch-size"), ("augment", "--augment"), (AugmentChoice.RecordedKey, "the augmentation options"), ("normalize", "--normalize"),
        (FineTune.FreezeKey, "--freeze"), (FineTune.NewHeadKey, "--new-head"), (FineTune.HeadKey, "--head"),
    ];

    /// <summary>
    /// The metadata <c>cnn train</c> records for the options it compares on resume (the normalisation is recorded apart,
    /// as its statistics under <c>normalization</c>), so that every writer of a resumable checkpoint records them alike;
    /// <paramref name="fineTune"/> adds a fine-tuning run's surgery (<see cref="FineTune.Recorded"/>).
    /// </summary>
    public static Dictionary<string, string> Recorded(string data, int seed, string optimizer, float lr, int batchSize, bool augment,
        IReadOnlyDictionary<string, string>? fineTune = null)
    {
        var recorded = new Dictionary<string, string>(fineTune ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            ["data"] = data, ["seed"] = seed.ToString(CultureInfo.InvariantCulture), ["optimizer"] = optimizer,
            ["lr"] = lr.ToString("R", CultureInfo.InvariantCulture), ["batch_size"] = batchSize.ToString(CultureInfo.InvariantCulture),
            ["augment"] = augment ? "true" : "false",
        };
        return recorded;
    }

    /// <summary>
    /// Compares <paramref name="given"/> (metadata key to this run's value) with <paramref name="recorded"/>; returns the
    /// text to record under <see cref="ChangesKey"/> (null when nothing changed).
    /// </summary>
    /// <exception cref="CnnException">An option differs and <paramref name="allowChanges"/> is false; the message lists every difference.</exception>
    public static string? Check(string checkpointPath, IReadOnlyDictionary<string, string> recorded, IReadOnlyDictionary<string, string> given, int epoch, bool allowChanges)
    {
        var diffs = new List<string>();
        foreach (var (key, option) in Compared)
        {
            var mine = given.GetValueOrDefault(key);
            string? theirs = key == "normalize"
                ? (recorded.ContainsKey("data") ? (recorded.ContainsKey("normalization") ? "true" : "false") : null)
                : recorded.GetValueOrDefault(key);
            if (theirs is null || mine is null || Same(key, theirs, mine)) continue;
            // A resumed run always uses the recorded normalisation (its statistics belong to the weights), so only asking
            // for one the checkpoint lacks is a change.
            if (key == "normalize" && mine == "false") continue;
            diffs.Add($"{option}: recorded {theirs}, given {mine}");
        }
        if (diffs.Count == 0) return recorded.GetValueOrDefault(ChangesKey);
        if (!allowChanges)
            throw new CnnException($"The checkpoint '{checkpointPath}' was trained with other options: {string.Join("; ", diffs)}. " +
                "Resume with the recorded values, or pass --allow-changes to change them deliberately (the change is recorded in the checkpoint).");
        var entry = string.Create(CultureInfo.InvariantCulture, $"epoch {epoch}: {string.Join("; ", diffs)}");
        return recorded.TryGetValue(ChangesKey, out var earlier) ? earlier + " | " + entry : entry;
    }

    /// <summary>Checks the checkpoint's optimizer state against <paramref name="optimizer"/>, naming the file (a parameters-only file starts a fresh state).</summary>
    /// <exception cref="CnnException">The state's slots or shapes do not fit the optimizer and the network.</exception>
    public static void CheckOptimizerState(string checkpointPath, Dsl.IO.TrainingCheckpoint resume, Dsl.Optimizer optimizer, Dsl.Network network)
    {
        if (resume.OptimizerState is { Step: 0, Slots.Count: 0 }) return;
        var trainable = Dsl.Trainer.TrainablePaths(network);
        optimizer.CheckState(resume.OptimizerState, Dsl.Parameters.Of(resume.Parameters.Entries.Where(kv => trainable.Contains(kv.Key))), checkpointPath);
    }

    private static bool Same(string key, string a, string b) =>
        key == "lr" && float.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && float.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var y)
            ? x == y
            : string.Equals(a, b, StringComparison.Ordinal);
}
