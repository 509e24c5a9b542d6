using System.CommandLine;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;

namespace Cnn.Cli;

/// <summary>
/// <c>cnn train --backend im2col|libtorch [--device cpu|cuda|cuda:N]</c>: where the training steps run. Kept apart from
/// <see cref="TrainCommand"/>, which only adds these options and passes the backend to <c>Trainer.Fit</c>.
/// </summary>
internal static class TrainBackendOptions
{
    public const string Help = """
          --backend NAME         where the steps run: im2col (the library's kernels, the default) or libtorch
                                 (LibTorch through TorchSharp, with the same optimizer, data order and checkpoints:
                                 a run of one backend resumes on the other)
          --device DEV           with --backend libtorch: cpu (default), cuda or cuda:N; a device this machine or the
                                 installed TorchSharp package lacks is an error naming what is missing
        """;

    public static Option[] Options { get; } = [Opt.Choice("backend", "im2col", "libtorch"), Opt.Text("device")];

    /// <summary>The backend the options name, checked (a missing device fails here, before any data is read).</summary>
    public static TrainingBackend Create(Args a)
    {
        var device = a.String("device");
        if (a.String("backend") != "libtorch")
            return device is null ? TrainingBackend.Im2col : throw new UsageException("--device is a LibTorch device: give --backend libtorch with it");
        return new LibTorchBackend(device ?? "cpu");
    }
}
