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

    /// <summary><c>tanh(y)</c>, as <see cref="Activations.Tanh"/> (a rational approximation within 2.9e-7 of it, relative).</summary>
    Tanh,

    /// <summary><c>1 / (1 + exp(-y))</c>, as <see cref="Activations.Sigmoid"/>.</summary>
    Sigmoid,
}

/// <summary>
/// Applies a <see cref="FusedActivation"/>, with the same element function as its layer's kernel: the kernels themselves
/// (<see cref="Activations.Relu"/>, <see cref="Activations.Tanh"/>, <see cref="Activations.Sigmoid"/>) call it.
/// </summary>
internal static class FusedActivations
{
    public static void ApplyInPlace(this FusedActivation activation, Span<float> y) => activation.Apply(y, y);

    /// <summary><c>y = activation(x)</c> element-wise (a copy for <see cref="FusedActivation.None"/>); x and y may be the same span.</summary>
    public static void Apply(this FusedActivation activation, ReadOnlySpan<float> x, Span<float> y)
    {
        switch (activation)
        {
            case FusedActivation.Relu: TensorPrimitives.Max(x, 0f, y); break;
            case FusedActivation.Tanh: RationalTanh.Apply(x, y); break;
            case FusedActivation.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
            default: if (!x.Overlaps(y)) x.CopyTo(y); break;
        }
    }
}
