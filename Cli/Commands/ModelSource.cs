using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;

namespace Cnn.Cli;

/// <summary>A network with its parameters and state, from the zoo (initialised from a seed) or from a checkpoint.</summary>
/// <param name="Name">The zoo name of the network.</param>
/// <param name="Network">The network.</param>
/// <param name="Parameters">Its parameters.</param>
/// <param name="State">Its state (batch-norm running statistics; empty when it has none).</param>
/// <param name="Metadata">The checkpoint's metadata; empty for a zoo network.</param>
internal sealed record Model(string Name, Network Network, Parameters Parameters, Parameters State, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>The metadata key that names the network (the main job and <c>cnn train</c> write it).</summary>
    public const string NetworkKey = "network";

    /// <summary>The normalisation the network was trained with, when the checkpoint records one.</summary>
    public Normalization? Normalization =>
        Metadata.TryGetValue("normalization", out var n) ? Dsl.Data.Normalization.Parse(n) : null;

    /// <summary>
    /// <c>--checkpoint F</c> (the network named by its metadata, or by <c>--model</c>), else <c>--model NAME</c>
    /// (default <paramref name="defaultModel"/>) initialised with <c>--seed N</c> (default 1).
    /// </summary>
    public static Model FromArgs(Args args, string? defaultModel = "simple-convnet")
    {
        var checkpoint = args.String("checkpoint");
        var name = args.String("model");
        int seed = args.Int("seed", 1);
        if (checkpoint is not null) return Load(checkpoint, name);
        name ??= defaultModel ?? throw new UsageException("give --model NAME or --checkpoint F");
        var net = Zoo.ByName(name);
        return new Model(name, net, Initializer.Init(net, seed), Initializer.InitState(net), new Dictionary<string, string>());
    }

    /// <summary>Loads a checkpoint written by <c>cnn train</c> or the main job and checks it against its network.</summary>
    /// <exception cref="CnnException">The file cannot be read, names no known network, or its tensors do not fit the network.</exception>
    public static Model Load(string path, string? modelOverride = null)
    {
        var cp = Checkpoint.Load(path);
        var name = modelOverride ?? (cp.Metadata.TryGetValue(NetworkKey, out var n) ? n
            : throw new CnnException($"The checkpoint '{path}' does not name its network (metadata '{NetworkKey}'); pass --model NAME."));
        var net = Zoo.ByName(name);
        var state = cp.State.Count == 0 ? Initializer.InitState(net) : cp.State;
        var specs = net.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()).ToList();
        // Only the network's own tensors are accepted: a file with others (misnamed, or thousands of empty ones) is not its checkpoint.
        var known = specs.Select(s => s.Path).ToHashSet(StringComparer.Ordinal);
        var unknown = cp.Parameters.Entries.Select(kv => kv.Key).FirstOrDefault(k => !known.Contains(k));
        if (unknown is not null)
            throw new CnnException($"The checkpoint '{path}' has a tensor '{Printable(unknown)}' that network '{name}' does not have ({cp.Parameters.Count} tensor(s); the network has {specs.Count}).");
        var knownState = Initializer.InitState(net);
        var unknownState = cp.State.Entries.Select(kv => kv.Key).FirstOrDefault(k => !knownState.Contains(k));
        if (unknownState is not null)
            throw new CnnException($"The checkpoint '{path}' has a state tensor '{Printable(unknownState)}' that network '{name}' does not have.");
        foreach (var (p, spec) in specs)
        {
            if (!cp.Parameters.Contains(p))
                throw new CnnException($"The checkpoint '{path}' has no tensor for '{p}' of network '{name}'.");
            if (cp.Parameters[p].Shape != spec.Shape)
                throw new CnnException($"The checkpoint '{path}': '{p}' has shape {cp.Parameters[p].Shape}; network '{name}' expects {spec.Shape}.");
        }
        return new Model(name, net, cp.Parameters, state, cp.Metadata);
    }

    /// <summary>A name from a file, with control characters (a NUL, a line break) shown as <c>\uXXXX</c> so a message stays one line.</summary>
    public static string Printable(string name) =>
        string.Concat(name.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));

    /// <summary>The file name of a tensor path: '/' becomes '.', then <c>.npy</c> (<c>conv1/weight</c> is <c>conv1.weight.npy</c>).</summary>
    public static string FileName(string path) => path.Replace('/', '.') + ".npy";
}
