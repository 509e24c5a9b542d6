using System.Globalization;
using Cnn.Core;
using TorchSharp;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// The LibTorch devices a run may name (<c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>) and the check that one is there, with an
/// error that says what is missing: the CUDA build of LibTorch (the TorchSharp package) or the device itself.
/// </summary>
public static class TorchDevice
{
    /// <summary>The device <paramref name="name"/> names, after checking that this process can use it.</summary>
    /// <param name="name"><c>cpu</c>, <c>cuda</c> (the first GPU) or <c>cuda:N</c> (the GPU of index N).</param>
    /// <exception cref="CnnException">The name is not one of those, LibTorch could not be loaded, or the device is not
    /// available (the message says whether the loaded LibTorch lacks CUDA or the GPU is missing).</exception>
    public static torch.Device Open(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        int? index = Parse(name);
        LibTorchRuntime.EnsureLoaded();
        if (index is null) return torch.CPU;
        if (!torch.cuda.is_available())
            throw new CnnException($"Device '{name}': CUDA is not available to LibTorch in this process. " + (HasCudaLibTorch()
                ? "The CUDA build of LibTorch is present, so no usable GPU or NVIDIA driver was found."
                : "The LibTorch loaded is the CPU-only build (package TorchSharp-cpu); reference TorchSharp-cuda-linux (or TorchSharp-cuda-windows) instead, on a machine with an NVIDIA GPU and driver."));
        int count = torch.cuda.device_count();
        if (index.Value >= count)
            throw new CnnException($"Device '{name}': this machine has {count} CUDA device(s), numbered 0 to {count - 1}.");
        return new torch.Device(DeviceType.CUDA, index.Value);
    }

    /// <summary>Null for <c>cpu</c>, the GPU index for <c>cuda</c> (0) or <c>cuda:N</c>.</summary>
    private static int? Parse(string name)
    {
        var n = name.Trim().ToLowerInvariant();
        if (n == "cpu") return null;
        if (n == "cuda") return 0;
        if (n.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(n.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int i))
            return i;
        throw new CnnException($"Unknown LibTorch device '{name}': expected cpu, cuda or cuda:N (N a GPU index).");
    }

    /// <summary>Whether LibTorch's CUDA library sits beside the loaded ones (the TorchSharp-cuda packages bring it).</summary>
    private static bool HasCudaLibTorch() =>
        new[] { "libtorch_cuda.so", "torch_cuda.dll" }.Any(f => File.Exists(Path.Combine(AppContext.BaseDirectory, f)));
}
