using Cnn.Dsl;
using Cnn.Onnx.Proto;

namespace Cnn.Onnx;

public static partial class OnnxExporter
{
    private sealed partial class GraphBuilder
    {
        /// <summary>The opset that brings HardSwish; before it, hard swish is written as <c>x * HardSigmoid(x)</c>.</summary>
        private const long HardSwishOpset = 14;

        /// <summary>The opset that brings Gelu; before it, GELU is written as PyTorch's exporter writes it, <c>x * (1 + Erf(x / √2)) * 0.5</c>.</summary>
        private const long GeluOpset = 20;

        /// <summary>
        /// The activations of mobile networks, each as the standard operation where the opset has one and otherwise as the
        /// decomposition other exporters write (the importer reads both back into the one layer). Hard tanh is Clip with its
        /// bounds as inputs (attributes only before opset 11); hard sigmoid is HardSigmoid with the layer's alpha and beta, written
        /// always (ONNX's defaults, 0.2 and 0.5, are Keras's, not the layer's); SiLU, which ONNX lacks, is Sigmoid then Mul.
        /// </summary>
        private void EmitMobileActivation(Node node, string x, string y)
        {
            switch (node.Layer)
            {
                case HardTanh h:
                    AddNode(node, "Clip", Inputs(x, FloatScalar(node, "min", h.Min), FloatScalar(node, "max", h.Max)), y);
                    break;
                case HardSigmoid h:
                    AddNode(node, "HardSigmoid", Inputs(x), y, HardSigmoidAttributes(h));
                    break;
                case HardSwish when _opset >= HardSwishOpset:
                    AddNode(node, "HardSwish", Inputs(x), y);
                    break;
                case HardSwish:
                {
                    string gate = Intermediate(node, "hardsigmoid");
                    AddNode(node, "HardSigmoid", Inputs(x), gate, HardSigmoidAttributes(new HardSigmoid()));
                    AddNode(node, "Mul", Inputs(x, gate), y);
                    break;
                }
                case Silu:
                {
                    string gate = Intermediate(node, "sigmoid");
                    AddNode(node, "Sigmoid", Inputs(x), gate);
                    AddNode(node, "Mul", Inputs(x, gate), y);
                    break;
                }
                case Gelu when _opset >= GeluOpset:
                    AddNode(node, "Gelu", Inputs(x), y);
                    break;
                case Gelu:
                {
                    string scaled = Intermediate(node, "scaled"), erf = Intermediate(node, "erf"), shifted = Intermediate(node, "shifted"), product = Intermediate(node, "product");
                    AddNode(node, "Div", Inputs(x, FloatScalar(node, "sqrt2", MathF.Sqrt(2f))), scaled);
                    AddNode(node, "Erf", Inputs(scaled), erf);
                    AddNode(node, "Add", Inputs(erf, FloatScalar(node, "one", 1f)), shifted);
                    AddNode(node, "Mul", Inputs(x, shifted), product);
                    AddNode(node, "Mul", Inputs(product, FloatScalar(node, "half", 0.5f)), y);
                    break;
                }
                default:
                    throw Unsupported(node);
            }
        }

        private static AttributeProto[] HardSigmoidAttributes(HardSigmoid h) => new[] { Float("alpha", h.Alpha), Float("beta", h.Beta) };

        /// <summary>A fresh value of the layer's output shape, between the nodes of a decomposition.</summary>
        private string Intermediate(Node node, string what)
        {
            string name = Fresh(_valueNames, node.Path + "/" + what);
            Graph.ValueInfo.Add(ValueInfo(name, node.Output));
            return name;
        }

        /// <summary>A float scalar initializer (rank 0, so that it broadcasts against any input).</summary>
        private string FloatScalar(Node node, string what, float value)
        {
            var proto = new TensorProto { Name = Fresh(_valueNames, node.Path + "/" + what), DataType = (int)TensorProto.Types.DataType.Float };
            proto.FloatData.Add(value);
            Graph.Initializer.Add(proto);
            return proto.Name;
        }
    }
}
