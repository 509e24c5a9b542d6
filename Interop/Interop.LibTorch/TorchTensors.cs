using Cnn.Core;
using TorchSharp;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// Copies tensors between <see cref="Tensor"/> and TorchSharp (float32, same shape, row-major); <see cref="ToTorch"/>
/// makes CPU tensors (move them with <c>.to(device)</c>), <see cref="FromTorch"/> reads from any device.
/// </summary>
/// <remarks>
/// A TorchSharp tensor returned here holds native memory: dispose it, or create it inside a
/// <c>torch.NewDisposeScope()</c> that disposes it.
/// </remarks>
public static class TorchTensors
{
    /// <summary>A new float32 CPU TorchSharp tensor holding a copy of <paramref name="tensor"/>'s elements, with the same shape.</summary>
    /// <param name="tensor">The tensor to copy.</param>
    /// <param name="requiresGrad">Whether the result is an autograd leaf that records gradients.</param>
    /// <exception cref="CnnException">LibTorch could not be loaded.</exception>
    public static TorchTensor ToTorch(Tensor tensor, bool requiresGrad = false)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        LibTorchRuntime.EnsureLoaded();
        var dims = tensor.Shape.Select(d => (long)d).ToArray();
        var t = torch.empty(dims, torch.ScalarType.Float32);
        if (tensor.Size > 0)
        {
            using var data = t.data<float>();
            data.CopyFrom(tensor.Span);
        }
        if (requiresGrad) t.requires_grad_(true);
        return t;
    }

    /// <summary>
    /// A <see cref="Tensor"/> holding a copy of a TorchSharp tensor's elements, with the same shape. Any dtype is converted to
    /// float32, any layout made row-major, a tensor on another device (a GPU) copied to the CPU first; the TorchSharp tensor
    /// is left as it was and not disposed.
    /// </summary>
    public static Tensor FromTorch(TorchTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var shape = new Shape(tensor.shape.Select(d => checked((int)d)).ToArray());
        using var scope = torch.NewDisposeScope();
        var t = tensor.detach();
        if (t.device_type != DeviceType.CPU) t = t.cpu();
        if (t.dtype != torch.ScalarType.Float32) t = t.to_type(torch.ScalarType.Float32);
        t = t.contiguous();
        var array = new float[shape.Size];
        if (array.Length > 0)
        {
            using var data = t.data<float>();
            data.CopyTo(array);
        }
        return Tensor.Own(array, shape);
    }
}
