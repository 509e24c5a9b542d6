using Cnn.Core.Kernels;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Tests.Kernels;

/// <summary>
/// The forward pass's GEMM path, the reference the direct and blocked kernels must match bit for bit (they sum in its
/// depth blocks): <see cref="DirectConv"/> and the training path's <see cref="BlockedForward"/> are turned off around the
/// call, since each would take some of the shapes. Callers run in the worker-count collection (the switches are global).
/// </summary>
internal static class GemmPathReference
{
    public static float[] Forward(Tensor x, Tensor w, Tensor? b, ConvGeometry g, bool relu)
    {
        var (direct, blocked) = (DirectConv.Disabled, BlockedForward.Disabled);
        (DirectConv.Disabled, BlockedForward.Disabled) = (true, true);
        try { return ConvKernel.Forward(x, w, b, g, GemmInstructionSet.Auto, relu, packedWeights: null).ToArray(); }
        finally { (DirectConv.Disabled, BlockedForward.Disabled) = (direct, blocked); }
    }

    /// <summary>The same float32 bits, or both NaN (a NaN's payload may differ between paths).</summary>
    public static bool SameBits(float a, float b) => float.IsNaN(a) ? float.IsNaN(b) : BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b);
}
