using Cnn.Cli.Pictures;
using Cnn.Dsl.Data;

namespace Cnn.Cli;

/// <summary><c>cnn show</c>: the pictures of a checkpoint.</summary>
internal static class ShowCommand
{
    public static readonly string Help = $"""
        usage: cnn show --checkpoint F [options]

        Makes the pictures of a checkpoint (written by `cnn train` or `cnn run`):
          filters-checkpoint.png        the first convolution's filters, numbered, one scale
          input.png, features-LAYER.png one validation input and its maps at every convolution, titled
          confusion.png                 the confusion matrix on the validation set, with the accuracy
          loss.png, accuracy.png        the curves, when {TrainCommand.MetricsFile} lies next to the checkpoint
        The validation data is --data, normalised as in training; without --data, the built-in digits when the
        checkpoint was trained on them (its metadata is never taken as a path to read), else none.

        options:
          --checkpoint F     the checkpoint (required)
          --model NAME       the network, when the checkpoint does not name it; one of:
                             {Command.ZooNames(21)}
          --out DIR          where the pictures go (F's folder/pictures); never overwritten if not empty, unless --force
          --force            write into a non-empty --out
          --data SPEC        other validation data: {DataSource.Help}; or none (filters only)
          --seed N           the split of --data mnist (the checkpoint's seed, else 1)
          --limit N          use at most N validation examples

        examples:
          cnn show --checkpoint runs/simple-convnet-20260101-120000/checkpoint.safetensors
          cnn show --checkpoint runs/x/checkpoint.safetensors --data mnist --limit 500 --out /tmp/pictures
        """;

    public static Command Spec { get; } = new("show", Help, [Opt.Checkpoint(), Opt.Model(), Opt.Out(), Opt.Force(), Opt.Data(alsoNone: true), Opt.Seed(), Opt.Limit()], Show);

    private static int Show(Args a)
    {
        var path = Command.Required(a, "checkpoint");
        var modelName = a.String("model");
        var outDir = a.String("out") ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "pictures");
        bool force = a.Flag("force");
        var dataSpec = a.String("data");
        var seedText = a.String("seed");
        int? limit = a.String("limit") is null ? null : a.Int("limit", 0, 1);
        if (dataSpec is not null && dataSpec != "none") DataSource.CheckSpec(dataSpec);
        var model = Model.Load(path, modelName);
        // The checkpoint's metadata never names a file or folder to read: only the built-in digits are taken from it.
        var recorded = model.Metadata.GetValueOrDefault("data");
        if (dataSpec is null && recorded is not null and not "mnist") Console.WriteLine($"note: the checkpoint was trained on '{recorded}'; pass --data to draw the validation pictures from it");
        dataSpec ??= recorded == "mnist" || (recorded is null && model.Network.InputShape.SequenceEqual(new[] { 1, 28, 28 })) ? "mnist" : "none";
        int seed = seedText is not null ? (int.TryParse(seedText, System.Globalization.CultureInfo.InvariantCulture, out var s) ? s : throw new UsageException($"--seed expects an integer; found '{seedText}'"))
            : int.TryParse(model.Metadata.GetValueOrDefault("seed"), System.Globalization.CultureInfo.InvariantCulture, out var ms) ? ms : 1;
        LabeledData? validation = null;
        IReadOnlyList<string> names = model.Metadata.TryGetValue("classes", out var c) ? c.Split(',') : [];
        if (dataSpec != "none")
        {
            var data = DataSource.Load(dataSpec, seed, limit, model.Network.InputShape);
            validation = model.Normalization?.Apply(data.Validation) ?? data.Validation;
            if (names.Count == 0) names = data.ClassNames;
            if (validation.Images.Shape.DropBatch() != model.Network.InputShape)
                throw new Core.CnnException($"The data '{dataSpec}' has examples of shape {validation.Images.Shape.DropBatch()}; network '{model.Name}' takes {model.Network.InputShape}.");
        }
        Command.OutputFolder(outDir, force);
        var metrics = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, TrainCommand.MetricsFile);
        var rows = File.Exists(metrics) ? EpochRow.ReadCsv(metrics) : null;
        var written = PictureSet.Write(outDir, model, "checkpoint", validation, names, rows);
        Console.WriteLine($"network '{model.Name}' from {path}; {written.Count} picture(s) in {outDir}:");
        foreach (var w in written) Console.WriteLine($"  {Path.GetFileName(w)}");
        return 0;
    }
}
