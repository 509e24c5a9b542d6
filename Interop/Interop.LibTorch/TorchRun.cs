using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using TorchSharp;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// One forward pass of the LibTorch interpreter: the rule of every layer kind and combinator, written with TorchSharp's
/// functional operations. Adding a layer kind means adding one case to the switch in <see cref="Leaf"/>.
/// </summary>
/// <remarks>
/// It follows <see cref="Apply"/> rule for rule where the two must agree to be comparable: layers under a
/// <see cref="Freeze"/> run in inference mode; dropout in training multiplies by the mask Apply draws for the same
/// seed and path; batch norm in training updates the running statistics it is given, in place, as PyTorch's
/// <c>batch_norm</c> does. Nothing is disposed here: the caller runs it inside a dispose scope.
/// </remarks>
internal sealed class TorchRun(IReadOnlyDictionary<string, TorchTensor> parameters, IReadOnlyDictionary<string, TorchTensor> state, Mode mode, int seed)
{
    private readonly List<(float Weight, TorchTensor Output)> _heads = new();

    /// <summary>The auxiliary heads' weights and outputs of a training-mode pass, in execution order (as <see cref="ForwardResult.Heads"/>).</summary>
    public IReadOnlyList<(float Weight, TorchTensor Output)> Heads => _heads;

    public TorchTensor Node(Node node, TorchTensor x)
    {
        switch (node.Layer)
        {
            case Serial:
                foreach (var child in node.Children) x = Node(child, x);
                return x;
            case FanOut { Join: Join.Concat }:
                return torch.cat(node.Children.Select(c => Node(c, x)).ToArray(), 1);
            case FanOut { Join: Join.Product }:
                return Node(node.Children[0], x) * Node(node.Children[1], x);
            case FanOut or Residual:
            {
                TorchTensor? sum = null;
                foreach (var child in node.Children)
                {
                    var y = Node(child, x);
                    sum = sum is null ? y : sum + y;
                }
                return sum!;
            }
            case Freeze:
                return Node(node.Children[0], x);
            case AuxiliaryHead aux:
                // The identity on the trunk; in training the head runs too, and its output joins the loss.
                if (mode == Mode.Train) _heads.Add((aux.Weight, Node(node.Children[0], x)));
                return x;
            case LeafLayer:
                return Leaf(node, x);
            default:
                throw NoRule(node);
        }
    }

    /// <summary>
    /// Every convolution and transposed convolution: torch's functional op of its rank, every option per axis. A transposed
    /// convolution whose padding differs between the ends of an axis (which torch's ops lack) is the whole output, unpadded,
    /// cropped by the padding at each end: the same sums, so an exact rule.
    /// </summary>
    internal static TorchTensor Convolution(ConvSpec s, TorchTensor x, TorchTensor w, TorchTensor? b)
    {
        var g = s.Geometry;
        static long[] L(int[] v) => v.Select(e => (long)e).ToArray();
        if (s.Transposed && !g.SymmetricPadding)
        {
            var none = new int[g.Rank];
            var full = Convolution(s with { Geometry = new ConvGeometry(g.Kernel, g.Stride, none, none, g.Dilation, g.Groups) }, x, w, b);
            for (int a = 0; a < g.Rank; a++) full = full.narrow(2 + a, g.PadBegin[a], full.shape[2 + a] - g.PadBegin[a] - g.PadEnd[a]);
            return full;
        }
        return (g.Rank, s.Transposed) switch
        {
            (1, false) => conv1d(x, w, b, g.Stride[0], g.PadBegin[0], g.Dilation[0], g.Groups),
            (2, false) => conv2d(x, w, b, L(g.Stride), L(g.PadBegin), L(g.Dilation), g.Groups),
            (_, false) => conv3d(x, w, b, L(g.Stride), L(g.PadBegin), L(g.Dilation), g.Groups),
            (1, true) => conv_transpose1d(x, w, b, g.Stride[0], g.PadBegin[0], s.OutputPad[0], g.Dilation[0], g.Groups),
            (2, true) => conv_transpose2d(x, w, b, L(g.Stride), L(g.PadBegin), L(s.OutputPad), L(g.Dilation), g.Groups),
            (_, true) => conv_transpose3d(x, w, b, L(g.Stride), L(g.PadBegin), L(s.OutputPad), L(g.Dilation), g.Groups),
        };
    }

    private TorchTensor Leaf(Node node, TorchTensor x)
    {
        bool train = mode == Mode.Train && !node.Frozen;
        TorchTensor Param(string name) => Lookup(parameters, node, name, "parameter");
        TorchTensor? Bias(bool used) => used ? Param("bias") : null;
        switch (node.Layer)
        {
            case ConvolutionLayer c:
            {
                var spec = c.Spec();
                return Convolution(spec, x, Param("weight"), Bias(spec.UseBias));
            }
            case Dense d:
                return linear(x, Param("weight"), Bias(d.UseBias));
            case MatMul:
                return torch.matmul(x, Param("weight"));
            case ConstantOperand k:
                return TorchOps.Combine(k.Op, x, Param("value"));
            case MaxPool2d m:
                return max_pool2d(x, new long[] { m.KernelH, m.KernelW }, new long[] { m.StrideH, m.StrideW }, new long[] { m.PadH, m.PadW },
                    new long[] { m.DilationH, m.DilationW }, ceil_mode: m.CeilMode);
            case AvgPool2d a:
                return TorchOps.AvgPool2d(x, a);
            case PoolNd { Op: PoolOp.Max } pn when node.Input.Rank == 2:
                return max_pool1d(x, pn.Kernel, pn.Stride, pn.Pad);
            case PoolNd pn when node.Input.Rank == 2:
                return avg_pool1d(x, pn.Kernel, pn.Stride, pn.Pad, count_include_pad: pn.CountIncludePad);
            case PoolNd { Op: PoolOp.Max } pn:
                return max_pool3d(x, Three(pn.Kernel), Three(pn.Stride), Three(pn.Pad));
            case PoolNd pn:
                return TorchOps.AvgPool3d(x, pn.Kernel, pn.Stride, pn.Pad, pn.CountIncludePad);
            case GlobalPool gp:
                return TorchOps.GlobalPool(x, gp.Op == PoolOp.Max);
            case ChannelMaxPool cm:
                return TorchOps.ChannelMaxPool(x, cm.Kernel, cm.Stride);
            case ChannelAvgPool ca:
                return TorchOps.ChannelAvgPool(x, ca.Kernel, ca.Stride);
            case Relu:
                return relu(x);
            case LeakyRelu l:
                return leaky_relu(x, l.Slope);
            case Elu e:
                return elu(x, e.Alpha);
            case Sigmoid:
                return torch.sigmoid(x);
            case Tanh:
                return torch.tanh(x);
            case HardTanh h:
                return TorchOps.HardTanh(x, h.Min, h.Max);
            case HardSigmoid { IsPyTorch: true }:
                return hardsigmoid(x);
            case HardSigmoid h:
                return TorchOps.HardSigmoid(x, h.Alpha, h.Beta);
            case HardSwish:
                return hardswish(x);
            case Silu:
                return silu(x);
            case Gelu:
                return gelu(x);
            case Softmax s:
                return softmax(x, s.Axis);
            case LogSoftmax s:
                return log_softmax(x, s.Axis);
            case Lrn l:
                return local_response_norm(x, l.Size, l.Alpha, l.Beta, l.K);
            case Dropout d when train && d.P > 0f:
            {
                // Our mask, not LibTorch's generator: the mask depends only on the shape, the seed and the path, so the
                // kernel's mask for a zero tensor of x's shape is the one Apply multiplies by.
                var shape = new Shape(x.shape.Select(v => checked((int)v)).ToArray());
                var mask = DropoutKernel.Forward(Tensor.Zeros(shape), d.P, PathHash.Generator(seed, node.Path)).Mask;
                return x * TorchTensors.ToTorch(mask).to(x.device);
            }
            case Dropout or Identity:
                return x;
            case BatchNorm when train && x.shape[0] * node.Input.Size / node.Input[0] < 2:
                throw new CnnException($"Layer '{Describe(node)}': batch norm in training mode needs at least 2 values per channel; " +
                                       $"a batch of {x.shape[0]} of {node.Input} has {x.shape[0] * node.Input.Size / node.Input[0]}.");
            case BatchNorm bn:
                // In training, batch_norm normalises with the batch's statistics and updates the running ones in place,
                // the variance unbiased, exactly as PyTorch's nn.BatchNorm does.
                return batch_norm(x, Lookup(state, node, "running_mean", "state tensor"), Lookup(state, node, "running_var", "state tensor"),
                    Param("weight"), Param("bias"), train, bn.Momentum, bn.Epsilon);
            case ChannelSlice sl:
                return x.narrow(1, sl.Start, sl.Count);
            case Pad2d pd:
                return TorchOps.Pad(x, pd);
            case ChannelShuffle cs:
                return TorchOps.ChannelShuffle(x, cs.Groups);
            case Permute pm:
                return TorchOps.Permute(x, pm);
            case Flatten or Reshape:
                return x.reshape(node.Output.PrependBatch(checked((int)x.shape[0])).Select(d => (long)d).ToArray());
            default:
                throw NoRule(node);
        }
    }

    private static long[] Three(int v) => new long[] { v, v, v };

    private static TorchTensor Lookup(IReadOnlyDictionary<string, TorchTensor> from, Node node, string name, string what)
    {
        string path = Network.Join(node.Path, name);
        return from.TryGetValue(path, out var t) ? t
            : throw new CnnException($"Layer '{Describe(node)}' ({node.Layer.GetType().Name}): no {what} at path '{path}'.");
    }

    public static string Describe(Node node) => node.Path.Length == 0 ? "<root>" : node.Path;

    private static CnnException NoRule(Node node) =>
        new($"Layer '{Describe(node)}': the LibTorch interpreter has no rule for layer type {node.Layer.GetType().Name}.");
}
