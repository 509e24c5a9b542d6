using System.Collections.Immutable;
using System.CommandLine;
using System.Globalization;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;

namespace Cnn.Cli;

/// <summary>
/// What <c>cnn train --checkpoint</c> adds to training: a network with its parameters and state from a checkpoint (an
/// imported one, or any), with the surgery of <see cref="Transfer"/> (<c>--freeze</c>, <c>--new-head</c>, <c>--head</c>).
/// The surgery is recorded in the run's checkpoint, whose network description carries it, so that <c>--resume</c>
/// continues the same network; a different surgery on resume is a change that <c>--allow-changes</c> must accept.
/// </summary>
/// <param name="Name">The network's name (the checkpoint's).</param>
/// <param name="Network">The network after surgery.</param>
/// <param name="Parameters">Its starting parameters.</param>
/// <param name="State">Its starting state.</param>
/// <param name="Recorded">The metadata this run records for the surgery (keys <see cref="SourceKey"/>, <see cref="FreezeKey"/>, <see cref="NewHeadKey"/>, <see cref="HeadKey"/>).</param>
/// <param name="Resume">The checkpoint to resume from, fitted to a changed surgery; null for a fresh run.</param>
internal sealed record FineTune(string Name, Network Network, Parameters Parameters, Parameters State, IReadOnlyDictionary<string, string> Recorded, TrainingCheckpoint? Resume)
{
    /// <summary>The metadata keys: the checkpoint fine-tuned (its presence marks a fine-tuning run), the frozen paths, the new head's classes and its path.</summary>
    public const string SourceKey = "fine_tune_from", FreezeKey = "freeze", NewHeadKey = "new_head", HeadKey = "head";

    /// <summary>The most classes a new head may have (ImageNet-21k's order of magnitude, with room).</summary>
    public const int MaxClasses = 100_000;

    /// <summary>The options, for the command's declaration.</summary>
    public static Option[] Options() => [Opt.Checkpoint(), Opt.Text("freeze"), Opt.Int("new-head", 1, MaxClasses), Opt.Text("head")];

    /// <summary>The options' help lines.</summary>
    public const string Help = $"""
          --checkpoint F         fine-tune the network of checkpoint F (from `cnn import`, `cnn train` or the main job)
                                 instead of a zoo network; the data's images are fitted to its input (bilinear resize
                                 to its height and width, a grey channel replicated to its channels)
          --freeze PATHS         with --checkpoint: freeze the layers at these comma-separated paths (as `cnn summary`
                                 shows them, e.g. features or layer1,layer2); '{Transfer.AllButHead}' freezes every layer
                                 with parameters except the head
          --new-head N           with --checkpoint: replace the classifier head (the last Dense or 1x1 convolution) by
                                 one of N classes, initialised from --seed
          --head PATH            the head's path, when it cannot be found (as fc or classifier/1)
        """;

    /// <summary>
    /// The fine-tuning this command line asks for: a fresh one from <c>--checkpoint</c>, or the one a resumed checkpoint of
    /// a fine-tuning run records (with the given surgery applied when it differs); null for a zoo network.
    /// </summary>
    /// <exception cref="UsageException">Surgery options without a checkpoint, or options that exclude each other.</exception>
    /// <exception cref="CnnException">The checkpoint cannot be read, or the surgery does not fit the network (the message names the path).</exception>
    public static FineTune? Open(Args a, int seed, string? resumePath, TrainingCheckpoint? resume, Optimizer optimizer)
    {
        var source = a.String("checkpoint");
        var freeze = a.String("freeze") is { } f ? Paths(f) : null;
        int? newHead = a.String("new-head") is null ? null : a.Int("new-head", 0, 1);
        var head = a.String("head")?.TrimEnd('/');
        if (source is not null && a.String("model") is not null) throw new UsageException("--model and --checkpoint exclude each other: the network comes from the checkpoint");
        if (source is not null && resumePath is not null)
            throw new UsageException("--checkpoint and --resume exclude each other: a resumed fine-tuning run takes its network from the --resume checkpoint");
        bool resumesFineTune = resume?.Metadata.ContainsKey(SourceKey) == true;
        if (source is null && !resumesFineTune)
        {
            if (freeze is not null || newHead is not null || head is not null)
                throw new UsageException("--freeze, --new-head and --head need --checkpoint F (the network to fine-tune)");
            return null;
        }
        if (source is not null)
        {
            var model = Model.Load(source);
            var tuned = Prepare(model.Network, model.Parameters, model.State, freeze, newHead, head, seed, source);
            return new FineTune(model.Name, tuned.Network, tuned.Parameters, tuned.State, Record(source, freeze, newHead, tuned.HeadPath ?? head), null);
        }
        // A resumed fine-tuning run: the network its checkpoint describes; options not given are the recorded ones.
        var meta = resume!.Metadata;
        var network = Checkpoint.LoadNetwork(resume, resumePath!) ?? throw new CnnException($"The checkpoint '{resumePath}' records a fine-tuning run but not its network (metadata '{Checkpoint.NetworkKey}').");
        var recordedFreeze = Paths(meta.GetValueOrDefault(FreezeKey, ""));
        int? recordedHead = meta.TryGetValue(NewHeadKey, out var n) && int.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out var classes) ? classes : null;
        var recordedHeadPath = meta.GetValueOrDefault(HeadKey);
        freeze ??= recordedFreeze;
        newHead ??= recordedHead;
        head ??= recordedHeadPath;
        var record = Record(meta[SourceKey], freeze, newHead, head);
        var name = meta.GetValueOrDefault(Model.NetworkKey) ?? Path.GetFileNameWithoutExtension(resumePath!);
        if (freeze.SequenceEqual(recordedFreeze) && newHead == recordedHead && head == recordedHeadPath)
            return new FineTune(name, network, resume.Parameters, resume.State, record, resume);
        // A changed surgery (ResumeOptions.Check refuses it without --allow-changes): redone on the unfrozen network; a
        // new head count makes a new head. The optimizer keeps its step and the moments of tensors still trained.
        var redone = Prepare(Transfer.Unfreeze(network), resume.Parameters, resume.State, freeze, newHead == recordedHead ? null : newHead, head, seed, resumePath!);
        var fitted = resume with { Parameters = redone.Parameters, State = redone.State, OptimizerState = KeepMoments(resume.OptimizerState, redone, optimizer) };
        return new FineTune(name, redone.Network, redone.Parameters, redone.State, Record(meta[SourceKey], freeze, newHead, redone.HeadPath ?? head), fitted);
    }

    /// <summary>
    /// <paramref name="data"/> with its images fitted to <paramref name="network"/>'s input (<see cref="Dsl.Data.InputAdapter"/>),
    /// after checking that the network gives one output per class of the data.
    /// </summary>
    /// <exception cref="CnnException">The images cannot be fitted, or the classes differ; the message says what the network needs.</exception>
    public DataSource Fit(DataSource data, Network network, TrainReporter report)
    {
        var (sample, input) = (data.Train.Images.Shape.DropBatch(), network.InputShape);
        if (Dsl.Data.InputAdapter.Problem(sample, input) is { } problem)
            throw new CnnException($"The data '{data.Spec}' cannot feed network '{Name}': {problem}.");
        if (network.OutputShape != new Shape(data.Train.Classes))
            throw new CnnException($"Network '{Name}' gives outputs {network.OutputShape} per example; the data '{data.Spec}' has {data.Train.Classes} classes: " +
                $"replace the head with --new-head {data.Train.Classes}.");
        if (sample == input) return data;
        report.Info($"images {sample} fitted to the network's input {input}: bilinear resize" + (sample[0] == input[0] ? "" : $", the grey channel replicated to {input[0]}"));
        return data with { Train = Dsl.Data.InputAdapter.Fit(data.Train, input), Validation = Dsl.Data.InputAdapter.Fit(data.Validation, input) };
    }

    private static TransferModel Prepare(Network network, Parameters parameters, Parameters state, IReadOnlyList<string>? freeze, int? newHead, string? head, int seed, string source)
    {
        try
        {
            return Transfer.Prepare(network, parameters, state, new TransferOptions(freeze, newHead, head, seed));
        }
        catch (ShapeException e)
        {
            throw new CnnException($"Fine-tuning '{source}': {e.Message} (`cnn summary --checkpoint {source}` lists the paths)");
        }
    }

    private static IReadOnlyList<string> Paths(string list) =>
        list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => p.TrimEnd('/')).ToArray();

    private static Dictionary<string, string> Record(string source, IReadOnlyList<string>? freeze, int? newHead, string? head)
    {
        var meta = new Dictionary<string, string>(StringComparer.Ordinal) { [SourceKey] = source, [FreezeKey] = string.Join(",", freeze ?? []) };
        if (newHead is int classes) meta[NewHeadKey] = classes.ToString(CultureInfo.InvariantCulture);
        if (head is not null) meta[HeadKey] = head;
        return meta;
    }

    /// <summary>The optimizer state for the redone network: its step, and each slot's tensor where the tensor still trains at the same shape (zeros otherwise, as a fresh state has).</summary>
    private static OptimizerState KeepMoments(OptimizerState old, TransferModel redone, Optimizer optimizer)
    {
        if (old is { Step: 0, Slots.Count: 0 }) return old;
        var trainable = Trainer.TrainablePaths(redone.Network);
        var fresh = optimizer.Init(Parameters.Of(redone.Parameters.Entries.Where(kv => trainable.Contains(kv.Key))));
        var slots = fresh.Slots.ToImmutableSortedDictionary(s => s.Key,
            s => s.Value.Map((p, t) => old.Slots.TryGetValue(s.Key, out var kept) && kept.Contains(p) && kept[p].Shape == t.Shape ? kept[p] : t), StringComparer.Ordinal);
        return new OptimizerState(old.Step, slots);
    }
}
