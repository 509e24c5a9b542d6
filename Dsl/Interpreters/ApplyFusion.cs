using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

public static partial class Apply
{
    private sealed partial class Run
    {
        /// <summary>
        /// The rule of a layer and the ReLU after it in a <see cref="Serial"/> as one, or null when the two run apart. A
        /// training-mode batch norm rectifies each plane as it writes it and masks the gradient in its own pullback
        /// (<see cref="BatchNormKernel"/>); a convolution rectifies its output strip by strip while it is in the cache, as the
        /// inference path does, and a sum of branches (a residual block) block by block as it adds; those two mask the
        /// gradient before their own pullback. Either way the ReLU's pass over memory and its
        /// activation are saved, and the bits are the two layers' (the mask reads the ReLU's output, which is positive where
        /// its input is). Not under a trace or a tap, which must see the first layer's own output.
        /// </summary>
        private (Tensor, Func<Tensor, GradientSink, Tensor>)? WithRelu(Node first, Node second, Tensor x, bool needDx)
        {
            if (trace is not null || tap is not null || second.Layer is not Relu) return null;
            switch (first.Layer)
            {
                case BatchNorm bn when mode == Mode.Train && !first.Frozen:
                    return BatchNorm(first, bn, x, train: true, relu: true);
                case ConvolutionLayer c when !ConvolutionSpec(c).Transposed:
                {
                    var spec = ConvolutionSpec(c);
                    var rule = Conv(first, x, spec.UseBias, spec.Geometry, needDx, relu: true);
                    // As Node gives a layer whose pullback nothing needs (a frozen first convolution): none.
                    return needDx || HasGradients(first) ? rule : (rule.Item1, static (_, _) => null!);
                }
                case FanOut { Join: Dsl.Join.Sum } or Residual when first.Children.Count >= 2:
                    return JoinRule(first, x, needDx, relu: true);
                default:
                    return null;
            }
        }
    }
}
