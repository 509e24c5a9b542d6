using System.Collections.Immutable;
using System.Text;
using Cnn.Core;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;

namespace Cnn.Dsl.PyTorch;

/// <summary>What <see cref="PyTorchExport.Write(Network, TrainingCheckpoint, string, PyTorchExportOptions?)"/> writes besides the module and the weights.</summary>
public sealed record PyTorchExportOptions
{
    /// <summary>The network's name in the module's docstrings (a zoo name); default "network".</summary>
    public string? ModelName { get; init; }

    /// <summary>Metadata added to (or replacing keys of) the checkpoint's, carried into the weights and every checkpoint the training script writes (the CLI's <c>network</c>, <c>data</c>, <c>seed</c>, ...).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>The training recipe (epochs, batch size, optimizer, seed, loss, schedule; no callbacks); with <see cref="TrainingData"/>, the training script and its inputs are written too.</summary>
    public TrainOptions? Training { get; init; }

    /// <summary>The data the training script trains on, written as <c>x_train.npy</c> and <c>y_train.npy</c>.</summary>
    public LabeledData? TrainingData { get; init; }
}

/// <summary>
/// The PyTorch writer: the network as a plain <c>torch.nn.Module</c> in Python source (<c>model.py</c>), its parameters and
/// state as a cnn checkpoint (<c>weights.safetensors</c>), and, given a recipe and data, a training script (<c>train.py</c>)
/// that trains it as <c>Trainer.Fit</c> does, on one process or under <c>torchrun</c> with DistributedDataParallel,
/// and writes a checkpoint that <see cref="Checkpoint.Load"/> reads and <c>Trainer.Fit</c> resumes. The module's
/// state_dict keys are the parameter and state paths with '/' as '.'. Only text and data are written: nothing here needs
/// PyTorch; the files need python3 with torch and numpy.
/// </summary>
public static class PyTorchExport
{
    /// <summary>The Python module defining the network.</summary>
    public const string ModuleFile = "model.py";

    /// <summary>The parameters, state, optimizer state and position, as a cnn checkpoint.</summary>
    public const string WeightsFile = "weights.safetensors";

    /// <summary>The training script.</summary>
    public const string TrainingScriptFile = "train.py";

    /// <summary>The training script's recipe: loss, optimizer, and each step's learning rate, momentum and dropout keys.</summary>
    public const string RecipeFile = "recipe.json";

    /// <summary>The order of the samples in each epoch left to train, int32 <c>[epochs, samples]</c>.</summary>
    public const string OrderFile = "epoch_order.npy";

    /// <summary>The training images, float32 <c>[N, ...input shape]</c>.</summary>
    public const string ImagesFile = "x_train.npy";

    /// <summary>The training labels, int32 <c>[N]</c>.</summary>
    public const string LabelsFile = "y_train.npy";

    /// <summary>The source of <c>model.py</c> for a network.</summary>
    /// <exception cref="CnnException">A layer kind has no PyTorch rule, or a layer name cannot be a module name; the message names the layer.</exception>
    public static string ModuleSource(Network network, string? modelName = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        return PyTorchModuleWriter.Source(network, modelName ?? "network");
    }

    /// <summary>Writes fresh parameters and state (a checkpoint at epoch 1, step 0) and, with a recipe, the training script.</summary>
    /// <returns>The paths written.</returns>
    /// <exception cref="CnnException">See <see cref="Write(Network, TrainingCheckpoint, string, PyTorchExportOptions?)"/>.</exception>
    public static IReadOnlyList<string> Write(Network network, Parameters parameters, Parameters state, string folder, PyTorchExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(state);
        var empty = new OptimizerState(0, ImmutableSortedDictionary<string, Parameters>.Empty);
        return Write(network, new TrainingCheckpoint(parameters, state, empty, 1, 0, new Dictionary<string, string>()), folder, options);
    }

    /// <summary>
    /// Writes <see cref="ModuleFile"/> and <see cref="WeightsFile"/> into <paramref name="folder"/> (created if missing;
    /// files there are replaced, each atomically); with <see cref="PyTorchExportOptions.Training"/> and
    /// <see cref="PyTorchExportOptions.TrainingData"/>, also the training script, its recipe, the epoch orders and the data.
    /// Training continues from the checkpoint's position and optimizer state (fresh slots when it has taken no step).
    /// </summary>
    /// <returns>The paths written.</returns>
    /// <exception cref="CnnException">A layer kind has no PyTorch rule; a parameter or state tensor is missing or of the wrong
    /// shape; the recipe cannot be followed (callbacks, another optimizer, data that does not fit, a checkpoint past its end
    /// or without the optimizer's slots).</exception>
    public static IReadOnlyList<string> Write(Network network, TrainingCheckpoint checkpoint, string folder, PyTorchExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(folder);
        options ??= new PyTorchExportOptions();
        if ((options.Training is null) != (options.TrainingData is null))
            throw new CnnException("A PyTorch training script needs both a recipe (Training) and data (TrainingData); one was given without the other.");
        CheckTensors(network.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()).Select(s => (s.Path, s.Spec.Shape)), checkpoint.Parameters, "parameter");
        CheckTensors(network.RootNode.Leaves().SelectMany(l => l.StateSpecs()).Select(s => (s.Path, s.Spec.Shape)), checkpoint.State, "state tensor");
        var meta = new Dictionary<string, string>(checkpoint.Metadata, StringComparer.Ordinal);
        foreach (var (k, v) in options.Metadata ?? new Dictionary<string, string>()) meta[k] = v;
        var start = checkpoint with { Metadata = meta };
        if (options.Training is not null) start = start with { OptimizerState = TrainingSlots(network, start, options.Training.Optimizer) };

        var source = ModuleSource(network, options.ModelName);
        var recipe = options.Training is null ? default : PyTorchRecipe.Build(network, start, options.TrainingData!, options.Training);
        var written = new List<string>();
        string Path(string file)
        {
            var p = System.IO.Path.Combine(folder, file);
            written.Add(p);
            return p;
        }
        AtomicFile.WriteAllBytes(Path(ModuleFile), Encoding.UTF8.GetBytes(source));
        Checkpoint.Save(Path(WeightsFile), start, Describable(network) ? network : null);
        if (options.Training is not null)
        {
            var data = options.TrainingData!;
            AtomicFile.WriteAllBytes(Path(TrainingScriptFile), Encoding.UTF8.GetBytes(PyTorchResources.Text(TrainingScriptFile)));
            AtomicFile.WriteAllBytes(Path(RecipeFile), Encoding.UTF8.GetBytes(recipe.Json));
            Npy.Write(Path(OrderFile), recipe.Orders);
            Npy.Write(Path(ImagesFile), data.Images);
            Npy.Write(Path(LabelsFile), NpyArray.FromInt32(data.Labels.ToArray(), new Shape(data.Count)));
        }
        return written;
    }

    private static void CheckTensors(IEnumerable<(string Path, Shape Shape)> declared, Parameters given, string what)
    {
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, shape) in declared)
        {
            paths.Add(path);
            if (!given.Contains(path)) throw new CnnException($"The {what} '{path}' the network declares is missing.");
            if (given[path].Shape != shape) throw new ShapeException($"The {what} '{path}' has shape {given[path].Shape}; the network declares {shape}.");
        }
        var extra = given.Paths.FirstOrDefault(p => !paths.Contains(p));
        if (extra is not null) throw new CnnException($"The {what} '{extra}' is not one the network declares.");
    }

    /// <summary>The checkpoint's optimizer state, or a fresh one when it has taken no step and carries none of the optimizer's slots.</summary>
    private static OptimizerState TrainingSlots(Network network, TrainingCheckpoint start, Optimizer optimizer)
    {
        var trainable = Trainer.TrainablePaths(network);
        var names = PyTorchRecipe.SlotNames(optimizer);
        bool complete = names.All(n => start.OptimizerState.Slots.TryGetValue(n, out var slot) && trainable.All(slot.Contains));
        if (complete) return start.OptimizerState;
        if (start.Step == 0 && start.OptimizerState.Slots.Count == 0)
            return optimizer.Init(Parameters.Of(start.Parameters.Entries.Where(kv => trainable.Contains(kv.Key))));
        throw new CnnException($"The checkpoint has taken {start.Step} step(s) but does not hold the slots [{string.Join(", ", names)}] of {optimizer.GetType().Name} " +
                               $"for every trainable parameter (it has [{string.Join(", ", start.OptimizerState.Slots.Keys)}]): export with the optimizer it was trained with.");
    }

    private static bool Describable(Network network)
    {
        try
        {
            NetworkJson.Serialize(network);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
