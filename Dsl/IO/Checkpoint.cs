using System.Collections.Immutable;
using System.Globalization;
using Cnn.Core;

namespace Cnn.Dsl.IO;

/// <summary>
/// Everything needed to continue training exactly where it stopped: parameters, network state (batch-norm
/// running statistics), optimizer state, and the position (epoch, batches done in it, steps). The shuffling
/// order and dropout masks are functions of the seed, epoch and step, so no generator state needs saving.
/// </summary>
/// <param name="Parameters">The parameters.</param>
/// <param name="State">The network's state.</param>
/// <param name="OptimizerState">The optimizer's step count and slots.</param>
/// <param name="Epoch">The 1-based epoch in progress (or the next one, when <paramref name="Batch"/> is 0).</param>
/// <param name="Batch">Batches of that epoch already trained.</param>
/// <param name="Metadata">Free text: the network's zoo name, the seed, the loss, anything the caller wants to keep.</param>
public sealed record TrainingCheckpoint(Parameters Parameters, Parameters State, OptimizerState OptimizerState, int Epoch, int Batch,
    IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>Optimizer steps taken.</summary>
    public long Step => OptimizerState.Step;
}

/// <summary>
/// Reads and writes <see cref="TrainingCheckpoint"/>s as one safetensors file (atomically written): tensors
/// <c>param/PATH</c>, <c>state/PATH</c> and <c>opt/SLOT/PATH</c>, and the position in the metadata. A file with
/// parameters only (as the main job writes) loads as a checkpoint at epoch 1 with a fresh optimizer state.
/// A checkpoint saved with its network carries the network's description (<see cref="NetworkJson"/>) in the
/// metadata key <see cref="NetworkKey"/>; <see cref="LoadNetwork"/> reads it back.
/// </summary>
public static class Checkpoint
{
    private const string Format = "cnn-dsl-checkpoint/1";

    /// <summary>
    /// The largest optimizer step count a checkpoint may record (2^40): far beyond any run, and small enough that the step
    /// and the schedules' arithmetic on it (Adam's bias correction, one-cycle's position) never overflow.
    /// </summary>
    public const long MaxStep = 1L << 40;

    /// <summary>The metadata key that holds the network's description, as <see cref="NetworkJson.Serialize"/> writes it.</summary>
    public const string NetworkKey = "network_json";

    /// <summary>Writes a checkpoint atomically: a crash mid-write leaves the previous file whole.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="checkpoint">The checkpoint.</param>
    /// <param name="network">
    /// The network the parameters belong to; when given, its description is stored under <see cref="NetworkKey"/>
    /// (replacing any in the checkpoint's metadata), so that the file describes its network. When null, the metadata is
    /// written as it is (a description loaded with the checkpoint is kept).
    /// </param>
    /// <exception cref="ArgumentException">The network cannot be described (see <see cref="NetworkJson.Serialize"/>).</exception>
    public static void Save(string path, TrainingCheckpoint checkpoint, Network? network = null)
    {
        var tensors = Tensors("", checkpoint.Parameters, checkpoint.State, checkpoint.OptimizerState);
        var meta = new Dictionary<string, string>(checkpoint.Metadata, StringComparer.Ordinal)
        {
            ["format"] = Format,
            ["epoch"] = checkpoint.Epoch.ToString(CultureInfo.InvariantCulture),
            ["batch"] = checkpoint.Batch.ToString(CultureInfo.InvariantCulture),
            ["step"] = checkpoint.Step.ToString(CultureInfo.InvariantCulture),
        };
        if (network is not null) meta[NetworkKey] = NetworkJson.Serialize(network);
        SafeTensors.Write(path, Parameters.Of(tensors), meta);
    }

    /// <summary>The network described in a checkpoint's metadata (key <see cref="NetworkKey"/>), or null when it has none.</summary>
    /// <param name="checkpoint">A checkpoint, as <see cref="Load"/> returns it.</param>
    /// <param name="source">Where the checkpoint came from (its file name), for error messages.</param>
    /// <exception cref="Core.FormatException">The description is malformed or does not fit its input shape; the message names the source and the JSON path.</exception>
    public static Network? LoadNetwork(TrainingCheckpoint checkpoint, string source = "checkpoint")
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        return checkpoint.Metadata.TryGetValue(NetworkKey, out var json) ? NetworkJson.Deserialize(json, $"{source}, metadata {NetworkKey}") : null;
    }

    /// <summary>Reads a checkpoint, or a plain safetensors file of parameters.</summary>
    /// <exception cref="Core.FormatException">The file is malformed or its metadata is inconsistent.</exception>
    public static TrainingCheckpoint Load(string path)
    {
        var content = SafeTensors.Read(path);
        var meta = content.Metadata;
        if (!meta.TryGetValue("format", out var format))
            return new TrainingCheckpoint(content.Tensors, Parameters.Empty, new OptimizerState(0, ImmutableSortedDictionary<string, Parameters>.Empty), 1, 0, meta);
        if (format != Format) throw new Core.FormatException($"'{path}': checkpoint format '{format}' is not {Format}.");
        var (parameters, state, slots) = Split(content.Tensors.Entries, path, "");
        long step = Count(meta, "step", path);
        var userMeta = meta.Where(kv => kv.Key is not ("format" or "epoch" or "batch" or "step")).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var (epoch, batch) = Position(meta, path);
        return new TrainingCheckpoint(parameters, state, new OptimizerState(step, slots), epoch, batch, userMeta);
    }

    /// <summary>The tensors of one network's training state, named <c>PREFIXparam/PATH</c>, <c>PREFIXstate/PATH</c> and <c>PREFIXopt/SLOT/PATH</c>.</summary>
    internal static IEnumerable<KeyValuePair<string, Tensor>> Tensors(string prefix, Parameters parameters, Parameters state, OptimizerState optimizer) =>
        parameters.Entries.Select(kv => KeyValuePair.Create(prefix + "param/" + kv.Key, kv.Value))
            .Concat(state.Entries.Select(kv => KeyValuePair.Create(prefix + "state/" + kv.Key, kv.Value)))
            .Concat(optimizer.Slots.SelectMany(slot => slot.Value.Entries.Select(kv => KeyValuePair.Create($"{prefix}opt/{slot.Key}/{kv.Key}", kv.Value))));

    /// <summary>The parameters, state and optimizer slots that <see cref="Tensors"/> named with <paramref name="prefix"/>.</summary>
    /// <exception cref="Core.FormatException">A tensor's name is not of that form; the message names the file.</exception>
    internal static (Parameters Parameters, Parameters State, ImmutableSortedDictionary<string, Parameters> Slots) Split(
        IEnumerable<KeyValuePair<string, Tensor>> tensors, string path, string prefix)
    {
        var groups = new Dictionary<string, List<KeyValuePair<string, Tensor>>>(StringComparer.Ordinal);
        var parameters = new List<KeyValuePair<string, Tensor>>();
        var state = new List<KeyValuePair<string, Tensor>>();
        foreach (var (fullName, t) in tensors)
        {
            if (!fullName.StartsWith(prefix, StringComparison.Ordinal))
                throw new Core.FormatException($"'{path}': tensor '{fullName}' does not begin with '{prefix}'.");
            var name = fullName[prefix.Length..];
            if (name.StartsWith("param/", StringComparison.Ordinal)) parameters.Add(KeyValuePair.Create(name[6..], t));
            else if (name.StartsWith("state/", StringComparison.Ordinal)) state.Add(KeyValuePair.Create(name[6..], t));
            else if (name.StartsWith("opt/", StringComparison.Ordinal) && name.IndexOf('/', 4) is var slash and > 4)
            {
                var slot = name[4..slash];
                if (!groups.TryGetValue(slot, out var list)) groups[slot] = list = new();
                list.Add(KeyValuePair.Create(name[(slash + 1)..], t));
            }
            else throw new Core.FormatException($"'{path}': tensor '{fullName}' is neither {prefix}param/, {prefix}state/ nor {prefix}opt/SLOT/.");
        }
        return (Parameters.Of(parameters), Parameters.Of(state), groups.ToImmutableSortedDictionary(g => g.Key, g => Parameters.Of(g.Value), StringComparer.Ordinal));
    }

    /// <summary>An optimizer step count in the metadata: a non-negative integer of at most <see cref="MaxStep"/>.</summary>
    /// <exception cref="Core.FormatException">It is missing, not such an integer, or too large.</exception>
    internal static long Count(IReadOnlyDictionary<string, string> meta, string key, string path)
    {
        long step = meta.TryGetValue(key, out var s) && long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var st) && st >= 0
            ? st : throw new Core.FormatException($"'{path}': metadata '{key}' is missing or not a non-negative integer.");
        if (step > MaxStep)
            throw new Core.FormatException($"'{path}': metadata '{key}' is {step}, more than {MaxStep} optimizer steps no run takes; the checkpoint is damaged.");
        return step;
    }

    /// <summary>The position in the metadata: <c>epoch</c> (at least 1) and <c>batch</c> (at least 0).</summary>
    /// <exception cref="Core.FormatException">Either is missing or out of range.</exception>
    internal static (int Epoch, int Batch) Position(IReadOnlyDictionary<string, string> meta, string path)
    {
        int Int(string key) => meta.TryGetValue(key, out var v) && int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) && i >= 0
            ? i : throw new Core.FormatException($"'{path}': metadata '{key}' is missing or not a non-negative integer.");
        int epoch = Int("epoch");
        if (epoch < 1) throw new Core.FormatException($"'{path}': metadata 'epoch' must be at least 1; found {epoch}.");
        return (epoch, Int("batch"));
    }
}
