using Cnn.Core;
using Cnn.Dsl;
using TorchSharp;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// Trains on LibTorch: <c>Trainer.Fit(..., options with { Backend = new LibTorchBackend("cuda") })</c>. Each step runs the
/// network through the LibTorch interpreter (<see cref="TorchNetwork.ForwardTorch"/>) and LibTorch's autograd on the device,
/// and applies the DSL's own optimizer formulas there with LibTorch operations; parameters, state and optimizer slots stay
/// on the device between steps and are copied to the CPU only for checkpoints, callbacks and validation. Data order,
/// schedules, callbacks, progress, cancellation and checkpoints are <c>Trainer.Fit</c>'s, as on the im2col backend, and a
/// checkpoint of either backend resumes on the other.
/// </summary>
/// <remarks>
/// It lives here, not in the DSL, because it needs TorchSharp, which the DSL must not reference; the DSL holds the
/// <see cref="TrainingBackend"/> abstraction that the training loop calls. Validation runs on the im2col backend from the
/// parameters copied out at the end of each epoch.
/// </remarks>
public sealed class LibTorchBackend : TrainingBackend
{
    private readonly string _device;

    /// <summary>A backend on <paramref name="device"/>, checked now so that a missing GPU fails before any data is read.</summary>
    /// <param name="device"><c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</param>
    /// <exception cref="CnnException">The device name is unknown, LibTorch cannot be loaded, or the device is not available;
    /// the message says which package or device is missing.</exception>
    public LibTorchBackend(string device = "cpu")
    {
        TorchDevice.Open(device);
        _device = device.Trim().ToLowerInvariant();
    }

    /// <summary>LibTorch on the CPU.</summary>
    public static LibTorchBackend Cpu => new("cpu");

    /// <summary>The device, as given: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device => _device;

    /// <inheritdoc />
    public override string Name => $"libtorch:{_device}";

    /// <inheritdoc />
    public override TrainingSession Start(Network network, Parameters parameters, Parameters state, OptimizerState optimizerState) =>
        new LibTorchSession(network, TorchDevice.Open(_device), parameters, state, optimizerState);
}
