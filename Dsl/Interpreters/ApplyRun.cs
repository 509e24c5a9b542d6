using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

// The apply interpreter's pass: the rule of each layer kind and the pullback it builds (the joins are in ApplyJoins, the fusions in ApplyFusion).
public static partial class Apply
{
    /// <summary>One forward pass: the inputs that do not change, and the state it produces.</summary>
    private sealed partial class Run(Parameters p, Parameters state, Mode mode, int seed, List<KeyValuePair<string, Tensor>>? trace = null, LayerTap? tap = null)
    {
        private readonly List<KeyValuePair<string, Tensor>> _newState = new();
        private readonly List<HeadOutput> _heads = new();

        /// <summary>The auxiliary heads' outputs of a training-mode pass, in execution order.</summary>
        public IReadOnlyList<HeadOutput> Heads => _heads;

        public Parameters NewState() => state.SetItems(_newState);

        /// <summary>
        /// A node's rule, with the tapped node's output and output gradient recorded (a Freeze shares its child's path: the child is tapped).
        /// Without <paramref name="needInputGradient"/> the pullback may return null instead of the input gradient, and a node with no
        /// parameter gradients gets a pullback that does nothing.
        /// </summary>
        public (Tensor, Func<Tensor, GradientSink, Tensor>) Node(Node node, Tensor x, bool needInputGradient = true)
        {
            if (!needInputGradient && !HasGradients(node)) return (Rule(node, x, false).Item1, static (_, _) => null!);
            var rule = Rule(node, x, needInputGradient);
            return tap is null || node.Layer is Freeze || node.Path != tap.Path ? rule : tap.Record(rule);
        }

        private (Tensor, Func<Tensor, GradientSink, Tensor>) Rule(Node node, Tensor x, bool needDx)
        {
            switch (node.Layer)
            {
                case Serial:
                {
                    var backs = new Func<Tensor, GradientSink, Tensor>[node.Children.Count];
                    var h = x;
                    // A child needs its input gradient when its caller does or when a child before it has parameter gradients.
                    bool need = needDx;
                    for (int i = 0; i < backs.Length; i++)
                    {
                        if (i + 1 < backs.Length && WithRelu(node.Children[i], node.Children[i + 1], h, need) is { } fused)
                        {
                            // The layer's rule rectifies and masks: the ReLU passes its gradient on.
                            (h, backs[i]) = fused;
                            backs[++i] = static (dy, _) => dy;
                            need = need || HasGradients(node.Children[i - 1]);
                            continue;
                        }
                        (h, backs[i]) = Node(node.Children[i], h, need);
                        need = need || HasGradients(node.Children[i]);
                    }
                    return (h, (dy, sink) =>
                    {
                        for (int i = backs.Length - 1; i >= 0; i--) dy = backs[i](dy, sink);
                        return dy;
                    });
                }
                case FanOut { Join: Join.Product }:
                {
                    var (a, backA) = Node(node.Children[0], x, needDx);
                    var (b, backB) = Node(node.Children[1], x, needDx);
                    bool pullA = needDx || HasGradients(node.Children[0]), pullB = needDx || HasGradients(node.Children[1]);
                    return (BroadcastKernel.Multiply(a, b), (dy, sink) =>
                    {
                        var da = pullA ? backA(BroadcastKernel.SumTo(BroadcastKernel.Multiply(dy, b), a.Shape), sink) : null;
                        var db = pullB ? backB(BroadcastKernel.SumTo(BroadcastKernel.Multiply(dy, a), b.Shape), sink) : null;
                        return needDx ? TensorOps.Add(da!, db!) : null!;
                    });
                }
                case FanOut or Residual:
                    return JoinRule(node, x, needDx, relu: false);
                case Freeze:
                    return Node(node.Children[0], x, needDx);
                case AuxiliaryHead aux:
                    return Auxiliary(node, aux, x, needDx);
                case LeafLayer:
                    var leaf = Leaf(node, x, needDx);
                    trace?.Add(KeyValuePair.Create(node.Path, leaf.Item1));
                    return leaf;
                default:
                    throw new CnnException($"Layer '{node.Path}': the apply interpreter has no rule for {node.Layer.GetType().Name}.");
            }
        }

        private Tensor Param(Node node, string name) => p[PathOf(node, name)];

        /// <summary>Records a parameter gradient unless the layer is frozen.</summary>
        private static void Grad(GradientSink sink, Node node, string name, Tensor? g)
        {
            if (g is not null && !node.Frozen) sink.Add(PathOf(node, name), g);
        }

        private static Tensor Same(Tensor dx) => dx;

        /// <summary>A convolution's rule; with <paramref name="relu"/>, that of the convolution and a ReLU after it (see <see cref="WithRelu"/>).</summary>
        private (Tensor, Func<Tensor, GradientSink, Tensor>) Conv(Node node, Tensor x, bool useBias, ConvGeometry g, bool needDx, bool relu = false)
        {
            var w = Param(node, "weight");
            var b = useBias ? Param(node, "bias") : null;
            var y = ConvKernel.Forward(x, w, b, g, GemmInstructionSet.Auto, relu, packedWeights: null);
            return (y, (dy, sink) =>
            {
                // With a ReLU, the kernels mask dY as they go (the same bits as ReLU's own pullback first).
                var (input, weight, bias) = ConvKernel.Gradients(x, w, useBias, dy, g, needDx, reluOutput: relu ? y : null);
                Grad(sink, node, "weight", weight);
                Grad(sink, node, "bias", bias);
                return input!; // null when not needed: nothing reads an input gradient that is not needed
            });
        }

        private (Tensor, Func<Tensor, GradientSink, Tensor>) Leaf(Node node, Tensor x, bool needDx)
        {
            bool train = mode == Mode.Train && !node.Frozen;
            switch (node.Layer)
            {
                case ConvolutionLayer c:
                {
                    // The options of a layer, made once: a training step should allocate only its tensors.
                    var spec = ConvolutionSpec(c);
                    if (!spec.Transposed) return Conv(node, x, spec.UseBias, spec.Geometry, needDx);
                    var w = Param(node, "weight");
                    var y = ConvTransposeKernel.Forward(x, w, spec.UseBias ? Param(node, "bias") : null, spec.Geometry, spec.OutputPad);
                    return (y, (dy, sink) =>
                    {
                        var r = ConvTransposeKernel.Backward(x, w, spec.UseBias, dy, spec.Geometry, spec.OutputPad);
                        Grad(sink, node, "weight", r.Weight);
                        Grad(sink, node, "bias", r.Bias);
                        return r.Input;
                    });
                }
                case Dense d:
                {
                    var w = Param(node, "weight");
                    var y = DenseKernel.Forward(x, w, d.UseBias ? Param(node, "bias") : null);
                    return (y, (dy, sink) =>
                    {
                        var r = DenseKernel.Backward(x, w, d.UseBias, dy);
                        Grad(sink, node, "weight", r.Weight);
                        Grad(sink, node, "bias", r.Bias);
                        return r.Input;
                    });
                }
                case MatMul:
                {
                    var w = Param(node, "weight");
                    return (MatMulKernel.Forward(x, w), (dy, sink) =>
                    {
                        var r = MatMulKernel.Backward(x, w, dy);
                        Grad(sink, node, "weight", r.Weight);
                        return r.Input;
                    });
                }
                case ConstantOperand k:
                {
                    // The value as a batch of one, so that it broadcasts against the batch.
                    var value = Param(node, "value").Reshape(k.Shape.PrependBatch(1));
                    return (BroadcastKernel.Combine(k.Op, x, value), (dy, sink) =>
                    {
                        var (dx, dv) = BroadcastKernel.CombineBackward(k.Op, x, value, dy);
                        Grad(sink, node, "value", dv.Reshape(k.Shape));
                        return dx;
                    });
                }
                case MaxPool2d { Dilated: true } m:
                {
                    // The N-d kernel takes dilated windows (floor mode, as the layer requires).
                    var r = PoolNdKernel.MaxForward(x, MaxPool2dGeometry(m));
                    return (r.Output, (dy, _) => PoolNdKernel.MaxBackward(dy, r.ArgMax, x.Shape));
                }
                case MaxPool2d m:
                {
                    var r = MaxPool2dKernel.Forward(x, new Window2d(m.KernelH, m.KernelW, m.StrideH, m.StrideW, m.PadH, m.PadW), m.CeilMode);
                    return (r.Output, (dy, _) => MaxPool2dKernel.Backward(dy, r.ArgMax, x.Shape));
                }
                case AvgPool2d a:
                {
                    var g = new Window2d(a.KernelH, a.KernelW, a.StrideH, a.StrideW, a.PadH, a.PadW);
                    if (!a.SymmetricPadding)
                        return (AvgPool2dKernel.Forward(x, g, a.PadEndH, a.PadEndW, a.CountIncludePad),
                            (dy, _) => AvgPool2dKernel.Backward(dy, x.Shape, g, a.PadEndH, a.PadEndW, a.CountIncludePad));
                    return (AvgPool2dKernel.Forward(x, g, a.CeilMode, a.CountIncludePad),
                        (dy, _) => AvgPool2dKernel.Backward(dy, x.Shape, g, a.CeilMode, a.CountIncludePad));
                }
                case PoolNd pn:
                {
                    int axes = x.Shape.Rank - 2;
                    var g = ConvGeometry.Create(Enumerable.Repeat(pn.Kernel, axes).ToArray(), Enumerable.Repeat(pn.Stride, axes).ToArray(),
                        Enumerable.Repeat(pn.Pad, axes).ToArray(), Enumerable.Repeat(pn.Pad, axes).ToArray());
                    if (pn.Op == PoolOp.Max)
                    {
                        var r = PoolNdKernel.MaxForward(x, g);
                        return (r.Output, (dy, _) => PoolNdKernel.MaxBackward(dy, r.ArgMax, x.Shape));
                    }
                    return (PoolNdKernel.AverageForward(x, g, pn.CountIncludePad), (dy, _) => PoolNdKernel.AverageBackward(dy, x.Shape, g, pn.CountIncludePad));
                }
                case GlobalPool gp when gp.Op == PoolOp.Average:
                    return (GlobalPoolKernel.AverageForward(x), (dy, _) => GlobalPoolKernel.AverageBackward(dy, x.Shape));
                case GlobalPool:
                {
                    var r = GlobalPoolKernel.MaxForward(x);
                    return (r.Output, (dy, _) => GlobalPoolKernel.MaxBackward(dy, r.ArgMax, x.Shape));
                }
                case ChannelMaxPool cm:
                {
                    var r = ChannelMaxPoolKernel.Forward(x, cm.Kernel, cm.Stride);
                    return (r.Output, (dy, _) => ChannelMaxPoolKernel.Backward(dy, r.ArgMax, x.Shape));
                }
                case ChannelAvgPool ca:
                    return (ChannelAvgPoolKernel.Forward(x, ca.Kernel, ca.Stride), (dy, _) => ChannelAvgPoolKernel.Backward(dy, x.Shape, ca.Kernel, ca.Stride));
                case Relu:
                    return (Activations.Relu(x), (dy, _) => Activations.ReluBackward(x, dy));
                case LeakyRelu l:
                    return (Activations.LeakyRelu(x, l.Slope), (dy, _) => Activations.LeakyReluBackward(x, dy, l.Slope));
                case Elu e:
                    return (Activations.Elu(x, e.Alpha), (dy, _) => Activations.EluBackward(x, dy, e.Alpha));
                case Sigmoid:
                {
                    var y = Activations.Sigmoid(x);
                    return (y, (dy, _) => Activations.SigmoidBackward(y, dy));
                }
                case Tanh:
                {
                    var y = Activations.Tanh(x);
                    return (y, (dy, _) => Activations.TanhBackward(y, dy));
                }
                case HardTanh h:
                    return (Activations.HardTanh(x, h.Min, h.Max), (dy, _) => Activations.HardTanhBackward(x, dy, h.Min, h.Max));
                case HardSigmoid { IsPyTorch: true }:
                    return (Activations.HardSigmoid(x), (dy, _) => Activations.HardSigmoidBackward(x, dy));
                case HardSigmoid h:
                    return (Activations.HardSigmoid(x, h.Alpha, h.Beta), (dy, _) => Activations.HardSigmoidBackward(x, dy, h.Alpha, h.Beta));
                case HardSwish:
                    return (Activations.HardSwish(x), (dy, _) => Activations.HardSwishBackward(x, dy));
                case Silu:
                    return (Activations.Silu(x), (dy, _) => Activations.SiluBackward(x, dy));
                case Gelu:
                    return (Activations.Gelu(x), (dy, _) => Activations.GeluBackward(x, dy));
                case Softmax s:
                {
                    var y = Activations.Softmax(x, s.Axis);
                    return (y, (dy, _) => Activations.SoftmaxBackward(y, dy, s.Axis));
                }
                case LogSoftmax s:
                {
                    var y = Activations.LogSoftmax(x, s.Axis);
                    return (y, (dy, _) => Activations.LogSoftmaxBackward(y, dy, s.Axis));
                }
                case Lrn l:
                    return (LrnKernel.Forward(x, l.Size, l.Alpha, l.Beta, l.K), (dy, _) => LrnKernel.Backward(x, dy, l.Size, l.Alpha, l.Beta, l.K));
                case Dropout d when train && d.P > 0f:
                {
                    var r = DropoutKernel.Forward(x, d.P, PathHash.Generator(seed, node.Path));
                    return (r.Output, (dy, _) => DropoutKernel.Backward(dy, r.Mask));
                }
                case Dropout or Identity:
                    return (x, (dy, _) => Same(dy));
                case BatchNorm bn:
                    return BatchNorm(node, bn, x, train, relu: false);
                case Pad2d pd:
                {
                    var fill = pd.Mode switch { PadMode.Reflect => PadFill.Reflect, PadMode.Edge => PadFill.Edge, _ => PadFill.Constant };
                    return (Pad2dKernel.Forward(x, pd.Top, pd.Bottom, pd.Left, pd.Right, fill, pd.Value),
                        (dy, _) => Pad2dKernel.Backward(dy, x.Shape, pd.Top, pd.Bottom, pd.Left, pd.Right, fill));
                }
                case ChannelSlice sl:
                    return (ChannelSliceKernel.Forward(x, sl.Start, sl.Count), (dy, _) => ChannelSliceKernel.Backward(dy, x.Shape, sl.Start));
                case Permute pm:
                {
                    // The batch axis stays first: the layer's axes count within the sample.
                    var axes = new[] { 0 }.Concat(pm.Axes.Select(a => a + 1)).ToArray();
                    return (PermuteKernel.Forward(x, axes), (dy, _) => PermuteKernel.Backward(dy, axes));
                }
                case ChannelShuffle cs:
                    return (ChannelShuffleKernel.Forward(x, cs.Groups), (dy, _) => ChannelShuffleKernel.Backward(dy, cs.Groups));
                case Flatten or Reshape:
                    return (x.Reshape(node.Output.PrependBatch(x.Shape[0])), (dy, _) => dy.Reshape(x.Shape));
                default:
                    throw new CnnException($"Layer '{node.Path}': the apply interpreter has no rule for {node.Layer.GetType().Name}.");
            }
        }

        /// <summary>A batch norm's rule; with <paramref name="relu"/> (training mode only), that of the batch norm and a ReLU after it.</summary>
        private (Tensor, Func<Tensor, GradientSink, Tensor>) BatchNorm(Node node, BatchNorm bn, Tensor x, bool train, bool relu)
        {
            var gamma = Param(node, "weight");
            var beta = Param(node, "bias");
            string meanPath = PathOf(node, "running_mean"), varPath = PathOf(node, "running_var");
            var rm = state[meanPath];
            var rv = state[varPath];
            if (!train)
            {
                var y = BatchNormKernel.Eval(x, gamma, beta, rm, rv, bn.Epsilon);
                return (y, (dy, sink) =>
                {
                    var r = BatchNormKernel.EvalBackward(x, gamma, rm, rv, bn.Epsilon, dy);
                    Grad(sink, node, "weight", r.Gamma);
                    Grad(sink, node, "bias", r.Beta);
                    return r.Input;
                });
            }
            var f = BatchNormKernel.Train(x, gamma, beta, bn.Epsilon, relu);
            int perChannel = x.Size / x.Shape[1];
            _newState.Add(KeyValuePair.Create(meanPath, BatchNormKernel.UpdateRunning(rm, f.Mean, bn.Momentum)));
            _newState.Add(KeyValuePair.Create(varPath, BatchNormKernel.UpdateRunning(rv, BatchNormKernel.UnbiasedVariance(f, perChannel), bn.Momentum)));
            return (f.Output, (dy, sink) =>
            {
                var r = BatchNormKernel.TrainBackward(x, gamma, f, dy, relu ? f.Output : null);
                Grad(sink, node, "weight", r.Gamma);
                Grad(sink, node, "bias", r.Beta);
                return r.Input;
            });
        }
    }
}
