using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>One node of a compiled inference plan: a pure function of its input, safe to call from several threads.</summary>
internal abstract class Step
{
    public abstract Tensor Run(Tensor x);
}

/// <summary>Steps one after the other.</summary>
internal sealed class SerialStep(Step[] steps) : Step
{
    public override Tensor Run(Tensor x)
    {
        foreach (var step in steps) x = step.Run(x);
        return x;
    }
}

/// <summary>Branches fed by the same input, summed in order (as <see cref="Apply"/> sums them) or concatenated along channels.</summary>
internal sealed class JoinStep(Step[] branches, Join join) : Step
{
    public override Tensor Run(Tensor x)
    {
        if (join == Join.Concat)
        {
            var parts = new Tensor[branches.Length];
            for (int i = 0; i < parts.Length; i++) parts[i] = branches[i].Run(x);
            return TensorOps.ConcatChannels(parts);
        }
        // A product join has exactly two branches, which broadcast (a squeeze-and-excitation gate over the image).
        if (join == Join.Product) return BroadcastKernel.Multiply(branches[0].Run(x), branches[1].Run(x));
        var y = branches[0].Run(x);
        for (int i = 1; i < branches.Length; i++) y = TensorOps.Add(y, branches[i].Run(x));
        return y;
    }
}

/// <summary>A convolution with its weights packed once (batch normalisation and an activation possibly folded in).</summary>
internal sealed class ConvStep(PackedConvolution conv) : Step
{
    public override Tensor Run(Tensor x) => conv.Forward(x);
}

/// <summary>An affine layer with its weights packed once (batch normalisation and an activation possibly folded in).</summary>
internal sealed class DenseStep(PackedDense dense) : Step
{
    public override Tensor Run(Tensor x) => dense.Forward(x);
}

/// <summary>A leaf whose inference needs no preparation: its kernel called directly, without a pullback.</summary>
internal sealed class KernelStep(Func<Tensor, Tensor> forward) : Step
{
    public override Tensor Run(Tensor x) => forward(x);
}

/// <summary>A leaf the compiler does not specialise, run by <see cref="Apply"/>'s rule for it.</summary>
internal sealed class FallbackStep(Node leaf, Parameters parameters, Parameters state) : Step
{
    public override Tensor Run(Tensor x) => Apply.EvalLeaf(leaf, parameters, state, x);
}
