using Cnn.Dsl;
using Cnn.Onnx.Proto;

namespace Cnn.Onnx;

internal sealed partial class OnnxLayerReader
{
    /// <summary>
    /// Clip (to hard tanh), HardSigmoid, HardSwish and Gelu, and the fused SiLU, hard swish and GELU that
    /// <see cref="OnnxActivationFusion"/> makes of their decompositions.
    /// </summary>
    private LeafLayer MobileActivation(NodeProto node, Attributes a)
    {
        switch (node.OpType)
        {
            case "Clip":
                return Clip(node, a);
            case "HardSigmoid":
            {
                a.Allow("alpha", "beta");
                float alpha = a.Float("alpha", 0.2f), beta = a.Float("beta", 0.5f);
                if (!float.IsFinite(alpha) || !float.IsFinite(beta)) throw Unsupported(node, $"alpha {alpha} and beta {beta}; HardSigmoid needs both finite");
                // PyTorch's exporter writes 1/6 as it rounds in its own arithmetic: within float rounding it is PyTorch's hard sigmoid.
                return MathF.Abs(alpha - 1f / 6f) <= 1e-7f && beta == 0.5f ? new HardSigmoid() : new HardSigmoid(alpha, beta);
            }
            case "HardSwish":
                a.Allow();
                return new HardSwish();
            case "Gelu":
            {
                a.Allow("approximate");
                var approximate = a.String("approximate", "none");
                if (approximate != "none") throw Unsupported(node, $"approximate \"{approximate}\"; Gelu is the exact form");
                return new Gelu();
            }
            default:
                a.Allow();
                return new Silu();
        }
    }

    /// <summary>
    /// Clip with neither bound (the identity), with only a lower bound of 0 (ReLU), or else a hard tanh whose missing bound is
    /// infinite, from its inputs (opset 11 on) or its attributes (before).
    /// </summary>
    private LeafLayer Clip(NodeProto node, Attributes a)
    {
        a.Allow("min", "max");
        float? Bound(int index, string name)
        {
            if (HasInput(node, index))
            {
                var c = Constant(node, index, name);
                if (c.Floats is not { Length: 1 }) throw Unsupported(node, $"a {name} '{c.Name}' that is not one float");
                return c.Floats[0];
            }
            return node.Attribute.Any(x => x.Name == name) ? a.Float(name, 0f) : null;
        }
        var (low, high) = (Bound(1, "min"), Bound(2, "max"));
        switch (low, high)
        {
            case (null, null):
                return new Identity();
            case (0f, null):
                return new Relu();
            case var (min, max) when (min ?? float.NegativeInfinity) < (max ?? float.PositiveInfinity) && min != float.PositiveInfinity && max != float.NegativeInfinity:
                return new HardTanh(min ?? float.NegativeInfinity, max ?? float.PositiveInfinity);
            default:
                throw Unsupported(node,
                    $"bounds min {low?.ToString() ?? "(none)"} and max {high?.ToString() ?? "(none)"}; a clip is a HardTanh layer with min < max (a missing bound infinite), " +
                    "the identity with neither, or ReLU with only a lower bound of 0");
        }
    }
}
