using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>
/// Turns a resolved network into an inference plan (<see cref="Step"/>): in every serial run of layers, a convolution or
/// dense layer absorbs the batch normalisation right after it (its running statistics folded into the weights and bias)
/// and the ReLU, tanh or sigmoid after that; common leaves call their kernels directly (into arrays a caller's bound plan
/// makes once per input shape); every other leaf falls back to <see cref="Apply"/> (which allocates its output and its
/// interpreter's bookkeeping on every call).
/// </summary>
internal sealed partial class PlanCompiler(Parameters parameters, Parameters state)
{
    public int FoldedBatchNorms { get; private set; }

    public int FusedRelus { get; private set; }

    /// <summary>Tanh and sigmoid layers applied in place by the convolution or dense layer before them.</summary>
    public int FusedOtherActivations { get; private set; }

    public Step Compile(Node node)
    {
        switch (node.Layer)
        {
            case Serial or Freeze:
            {
                var run = new List<Node>();
                Unnest(node, run);
                var steps = new List<Step>();
                for (int i = 0; i < run.Count;)
                {
                    var (step, used) = Blocked(run, i) ?? Fused(run, i) ?? (Compile(run[i]), 1);
                    steps.Add(step);
                    i += used;
                }
                return steps.Count == 1 ? steps[0] : new SerialStep(steps.ToArray());
            }
            case AuxiliaryHead:
                // Inference uses the main head: an auxiliary head is the identity.
                return PassStep.Instance;
            case FanOut or Residual:
                return new JoinStep(node.Children.Select(Compile).ToArray(), node.Layer is FanOut f ? f.Join : Join.Sum);
            default:
                return Leaf(node);
        }
    }

    /// <summary>The children of nested serial compositions and freezes in execution order (all one run in inference).</summary>
    private static void Unnest(Node node, List<Node> into)
    {
        if (node.Layer is Serial or Freeze)
            foreach (var child in node.Children) Unnest(child, into);
        // An auxiliary head is the identity in inference, so the layers on either side of it fuse.
        else if (node.Layer is not AuxiliaryHead) into.Add(node);
    }

    /// <summary>A convolution or dense layer at <paramref name="i"/> with the batch normalisation and ReLU after it, if any.</summary>
    private (Step, int)? Fused(List<Node> run, int i)
    {
        if (Parts(run, i) is not { } parts) return null;
        Count(parts);
        Step step = parts.Geometry is null
            ? new DenseStep(PackedDense.Create(parts.Weight, parts.Bias, parts.Activation))
            : new ConvStep(PackedConvolution.Create(parts.Weight, parts.Bias, parts.Geometry, parts.Activation));
        return (step, parts.Used);
    }

    /// <summary>A convolution or dense layer (its geometry null) with the batch normalisation folded in and the activation it absorbs.</summary>
    internal sealed record FusedParts(ConvGeometry? Geometry, Tensor Weight, Tensor? Bias, FusedActivation Activation, int Used, bool Folded);

    /// <summary>The fusion of <see cref="Fused"/>, not yet counted: a caller may still drop it.</summary>
    private FusedParts? Parts(List<Node> run, int i)
    {
        var node = run[i];
        var geometry = node.Layer switch
        {
            ConvolutionLayer c when !c.Spec().Transposed => Apply.ConvolutionSpec(c).Geometry,
            _ => null,
        };
        if (geometry is null && node.Layer is not Dense) return null;
        bool useBias = node.Layer switch { ConvolutionLayer c => c.Spec().UseBias, Dense d => d.UseBias, _ => false };
        var weight = parameters[Network.Join(node.Path, "weight")];
        var bias = useBias ? parameters[Network.Join(node.Path, "bias")] : null;
        int used = 1;
        bool folded = false;
        if (i + used < run.Count && run[i + used].Layer is BatchNorm bn)
        {
            (weight, bias) = Fold(weight, bias, run[i + used], bn);
            folded = true;
            used++;
        }
        var activation = i + used < run.Count ? run[i + used].Layer switch
        {
            Relu => FusedActivation.Relu,
            Tanh => FusedActivation.Tanh,
            Sigmoid => FusedActivation.Sigmoid,
            _ => FusedActivation.None,
        } : FusedActivation.None;
        if (activation != FusedActivation.None) used++;
        return new FusedParts(geometry, weight, bias, activation, used, folded);
    }

    /// <summary>Counts what <paramref name="parts"/> folded and fused.</summary>
    private void Count(FusedParts parts)
    {
        if (parts.Folded) FoldedBatchNorms++;
        if (parts.Activation == FusedActivation.Relu) FusedRelus++;
        else if (parts.Activation != FusedActivation.None) FusedOtherActivations++;
    }

    /// <summary>
    /// Weights and bias with an evaluation-mode batch normalisation folded in: <c>w * a</c> and <c>(b - mean) * a + beta</c>
    /// per output channel, <c>a = gamma / sqrt(var + eps)</c> computed in double as <see cref="BatchNormKernel.Eval"/> does.
    /// </summary>
    private (Tensor Weight, Tensor Bias) Fold(Tensor weight, Tensor? bias, Node bnNode, BatchNorm bn)
    {
        var gamma = parameters[Network.Join(bnNode.Path, "weight")];
        var beta = parameters[Network.Join(bnNode.Path, "bias")];
        var mean = state[Network.Join(bnNode.Path, "running_mean")];
        var variance = state[Network.Join(bnNode.Path, "running_var")];
        int f = weight.Shape[0], per = weight.Size / f;
        var w = weight.ToArray();
        var b = new float[f];
        for (int o = 0; o < f; o++)
        {
            double a = gamma[o] / Math.Sqrt((double)variance[o] + bn.Epsilon);
            for (int j = 0; j < per; j++) w[o * per + j] = (float)(w[o * per + j] * a);
            b[o] = (float)(((bias is null ? 0.0 : bias[o]) - mean[o]) * a + beta[o]);
        }
        return (Tensor.FromArray(w, weight.Shape), Tensor.FromArray(b, new Shape(f)));
    }

    private Step Leaf(Node node)
    {
        switch (node.Layer)
        {
            case Relu:
                return new MapStep(static (x, y) => FusedActivation.Relu.Apply(x, y));
            case Tanh:
                return new MapStep(static (x, y) => FusedActivation.Tanh.Apply(x, y));
            case Sigmoid:
                return new MapStep(static (x, y) => FusedActivation.Sigmoid.Apply(x, y));
            case HardTanh h:
                return new MapStep((x, y) => Activations.HardTanh(x, h.Min, h.Max, y));
            case AvgPool2d a:
                return new AvgPoolStep(new Window2d(a.KernelH, a.KernelW, a.StrideH, a.StrideW, a.PadH, a.PadW),
                    a.SymmetricPadding ? null : (a.PadEndH, a.PadEndW), a.CeilMode, a.CountIncludePad);
            case Dropout or Identity:
                return PassStep.Instance;
            case Flatten or Reshape:
                return new ReshapeStep(node.Output);
            case MaxPool2d { Dilated: true }:
                // Dilated windows run on the N-d pooling kernel, which has no bound form: Apply's rule, which allocates.
                return new FallbackStep(node, parameters, state);
            case MaxPool2d m:
                return new MaxPoolStep(new Window2d(m.KernelH, m.KernelW, m.StrideH, m.StrideW, m.PadH, m.PadW), m.CeilMode);
            case GlobalPool { Op: PoolOp.Average }:
                return new GlobalAveragePoolStep();
            default:
                if (node.Layer is Conv2d or Conv1d or Conv3d or Dense) return Fused(new List<Node> { node }, 0)!.Value.Item1;
                return new FallbackStep(node, parameters, state);
        }
    }
}
