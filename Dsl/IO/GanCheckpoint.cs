using System.Collections.Immutable;
using System.Globalization;
using Cnn.Core;

namespace Cnn.Dsl.IO;

/// <summary>
/// Everything needed to continue adversarial training exactly where it stopped: each network's parameters, state and
/// optimizer state, and the position (epoch, batches done in it; the step is the optimizers' step count). The generator's
/// noise, the shuffling of the real images and the dropout masks are functions of the seed, the epoch and the step, so
/// the position is the whole random-number position: no generator state needs saving.
/// </summary>
/// <param name="Generator">The generator's training state.</param>
/// <param name="Discriminator">The discriminator's training state.</param>
/// <param name="Epoch">The 1-based epoch in progress (or the next one, when <paramref name="Batch"/> is 0).</param>
/// <param name="Batch">Batches of that epoch already trained.</param>
/// <param name="Metadata">Free text: the data, the seed, anything the caller wants to keep.</param>
public sealed record GanCheckpoint(GanPlayer Generator, GanPlayer Discriminator, int Epoch, int Batch, IReadOnlyDictionary<string, string> Metadata)
{
    private const string Format = "cnn-dsl-gan-checkpoint/1";

    /// <summary>The metadata key of the generator's description (<see cref="NetworkJson"/>).</summary>
    public const string GeneratorNetworkKey = "generator_json";

    /// <summary>The metadata key of the discriminator's description (<see cref="NetworkJson"/>).</summary>
    public const string DiscriminatorNetworkKey = "discriminator_json";

    private static readonly OptimizerState NoOptimizer = new(0, ImmutableSortedDictionary<string, Parameters>.Empty);

    private const string GeneratorPrefix = "generator/", DiscriminatorPrefix = "discriminator/", AveragePrefix = "generator_average/";

    /// <summary>
    /// The moving average of the generator's parameters (<see cref="GanOptions.GeneratorAverageDecay"/>) with its batch-norm
    /// statistics, or null when training keeps none. Saved as tensors <c>generator_average/param/PATH</c> and
    /// <c>generator_average/state/PATH</c>.
    /// </summary>
    public GanAverage? GeneratorAverage { get; init; }

    /// <summary>Adversarial steps taken (each one discriminator step and one generator step).</summary>
    public long Step => Generator.OptimizerState.Step;

    /// <summary>
    /// Writes the checkpoint as one safetensors file, atomically (a crash mid-write leaves the previous file whole):
    /// tensors <c>generator/param/PATH</c>, <c>generator/state/PATH</c>, <c>generator/opt/SLOT/PATH</c> and the same under
    /// <c>discriminator/</c>, <c>generator_average/param/PATH</c> and <c>generator_average/state/PATH</c> when there is an average; the position and both optimizers' step counts in the metadata.
    /// </summary>
    /// <param name="path">The file to write.</param>
    /// <param name="generator">When given, its description is stored under <see cref="GeneratorNetworkKey"/>.</param>
    /// <param name="discriminator">When given, its description is stored under <see cref="DiscriminatorNetworkKey"/>.</param>
    /// <exception cref="ArgumentException">A network cannot be described (see <see cref="NetworkJson.Serialize"/>).</exception>
    public void Save(string path, Network? generator = null, Network? discriminator = null)
    {
        var tensors = Checkpoint.Tensors(GeneratorPrefix, Generator.Parameters, Generator.State, Generator.OptimizerState)
            .Concat(Checkpoint.Tensors(DiscriminatorPrefix, Discriminator.Parameters, Discriminator.State, Discriminator.OptimizerState))
            .Concat(GeneratorAverage is { } average ? Checkpoint.Tensors(AveragePrefix, average.Parameters, average.State, NoOptimizer) : []);
        var meta = new Dictionary<string, string>(Metadata, StringComparer.Ordinal)
        {
            ["format"] = Format,
            ["epoch"] = Epoch.ToString(CultureInfo.InvariantCulture),
            ["batch"] = Batch.ToString(CultureInfo.InvariantCulture),
            ["generator_step"] = Generator.OptimizerState.Step.ToString(CultureInfo.InvariantCulture),
            ["discriminator_step"] = Discriminator.OptimizerState.Step.ToString(CultureInfo.InvariantCulture),
        };
        if (generator is not null) meta[GeneratorNetworkKey] = NetworkJson.Serialize(generator);
        if (discriminator is not null) meta[DiscriminatorNetworkKey] = NetworkJson.Serialize(discriminator);
        SafeTensors.Write(path, Parameters.Of(tensors), meta);
    }

    /// <summary>Reads a checkpoint that <see cref="Save"/> wrote.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="Core.FormatException">The file is not a GAN checkpoint, or its tensors or metadata are malformed.</exception>
    public static GanCheckpoint Load(string path)
    {
        var content = SafeTensors.Read(path);
        var meta = content.Metadata;
        if (meta.GetValueOrDefault("format") != Format)
            throw new Core.FormatException($"'{path}' is not a GAN checkpoint: its metadata 'format' is '{meta.GetValueOrDefault("format") ?? "(none)"}', expected {Format}" +
                (meta.ContainsKey("format") ? " (a cnn train checkpoint holds one network; cnn gan writes both)." : "."));
        GanPlayer Player(string prefix, string stepKey)
        {
            var (parameters, state, slots) = Checkpoint.Split(content.Tensors.Entries.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)), path, prefix);
            return new GanPlayer(parameters, state, new OptimizerState(Checkpoint.Count(meta, stepKey, path), slots));
        }
        var stray = content.Tensors.Paths.FirstOrDefault(n => !n.StartsWith(GeneratorPrefix, StringComparison.Ordinal) && !n.StartsWith(DiscriminatorPrefix, StringComparison.Ordinal)
            && !n.StartsWith(AveragePrefix, StringComparison.Ordinal));
        if (stray is not null) throw new Core.FormatException($"'{path}': tensor '{stray}' belongs to none of {GeneratorPrefix}, {DiscriminatorPrefix} and {AveragePrefix}.");
        var averaged = content.Tensors.Entries.Where(kv => kv.Key.StartsWith(AveragePrefix, StringComparison.Ordinal)).ToList();
        var (averageParameters, averageState, averageSlots) = Checkpoint.Split(averaged, path, AveragePrefix);
        if (averageSlots.Count > 0)
            throw new Core.FormatException($"'{path}': the generator's average has no optimizer, but the file holds {AveragePrefix}opt/{averageSlots.Keys.First()}/.");
        var generator = Player(GeneratorPrefix, "generator_step");
        var discriminator = Player(DiscriminatorPrefix, "discriminator_step");
        var (epoch, batch) = Checkpoint.Position(meta, path);
        var user = meta.Where(kv => kv.Key is not ("format" or "epoch" or "batch" or "generator_step" or "discriminator_step"))
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        return new GanCheckpoint(generator, discriminator, epoch, batch, user) { GeneratorAverage = averaged.Count == 0 ? null : new GanAverage(averageParameters, averageState) };
    }

    /// <summary>The two networks described in the metadata (as <see cref="Save"/> stores them), or null when either is missing.</summary>
    /// <param name="source">Where the checkpoint came from (its file name), for error messages.</param>
    /// <exception cref="Core.FormatException">A description is malformed; the message names the source and the key.</exception>
    public (Network Generator, Network Discriminator)? Networks(string source = "checkpoint") =>
        Metadata.TryGetValue(GeneratorNetworkKey, out var g) && Metadata.TryGetValue(DiscriminatorNetworkKey, out var d)
            ? (NetworkJson.Deserialize(g, $"{source}, metadata {GeneratorNetworkKey}"), NetworkJson.Deserialize(d, $"{source}, metadata {DiscriminatorNetworkKey}"))
            : null;
}
