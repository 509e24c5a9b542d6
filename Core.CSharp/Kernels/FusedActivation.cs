using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// An element-wise activation applied by a packed layer (<see cref="PackedConvolution"/>, <see cref="PackedDense"/>) to
/// its own output, in place, instead of by a separate layer writing a new tensor.
/// </summary>
public enum FusedActivation
{
    /// <summary>No activation: the affine output.</summary>
    None,

    /// <summary><c>max(y, 0)</c>, as <see cref="Activations.Relu"/>.</summary>
    Relu,

    /// <summary><c>tanh(y)</c>, as <see cref="Activations.Tanh"/>.</summary>
    Tanh,

    /// <summary><c>1 / (1 + exp(-y))</c>, as <see cref="Activations.Sigmoid"/>.</summary>
    Sigmoid,
}

/// <summary>Applies a <see cref="FusedActivation"/> in place, with the same element function as its layer's kernel.</summary>
internal static class FusedActivations
{
    public static void ApplyInPlace(this FusedActivation activation, Span<float> y)
    {
        switch (activation)
        {
            case FusedActivation.Relu: TensorPrimitives.Max(y, 0f, y); break;
            case FusedActivation.Tanh: TensorPrimitives.Tanh(y, y); break;
            case FusedActivation.Sigmoid: TensorPrimitives.Sigmoid(y, y); break;
        }
    }
}
