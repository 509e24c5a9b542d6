using Cnn.Core;
using Cnn.Dsl;

namespace Cnn.Tests.LibTorch;

/// <summary>The spatial rank of a random network's input: signals (1-d), images (2-d) or volumes (3-d).</summary>
public enum Family
{
    Signal = 1,
    Image = 2,
    Volume = 3,
}

/// <summary>
/// A random network with everything needed to run it on both backends: parameters, state, a batch, labels, a loss,
/// a mode and the dropout seed. A pure function of its family and seed, so a failing case is reproduced from its two numbers.
/// </summary>
public sealed record BridgeCase(Family Family, int Seed, Network Network, Parameters Parameters, Parameters State, Tensor X, int[] Labels,
    LossFunction Loss, Mode Mode)
{
    public override string ToString() =>
        $"{Family} network, seed {Seed}, {Mode} mode, {Loss}, batch {X.Shape}:{Environment.NewLine}{RandomNetworks.Describe(Network.RootNode)}";
}

/// <summary>
/// Generates valid networks by construction: every hyper-parameter is drawn knowing the shape that reaches the layer, so
/// no case is thrown away. The body mixes every layer kind and combinator of the DSL: convolutions (grouped, dilated,
/// strided, padded; 1-d, 2-d, 3-d; transposed), max and average pooling (ceil mode, count_include_pad), global and
/// channel pooling, every activation, constant operands, softmax on any axis, LRN, batch norm, dropout, reshape, identity, nested Serial,
/// FanOut (sum and concat), Residual (identity and projection shortcuts) and Freeze; then a dense head; sometimes auxiliary heads.
/// </summary>
public static class RandomNetworks
{
    /// <summary>The case of a family and seed; one in four taps one or two auxiliary heads off the trunk.</summary>
    public static BridgeCase Make(Family family, int seed)
    {
        var c = new Builder(family, seed).Build();
        // A generator of its own, so that the cases without heads are those drawn before heads existed.
        var rng = new Random(unchecked(seed * 7 + 3));
        return rng.Next(4) == 0 ? WithHeads(c, rng.Next(1, 3), rng.Next()) : c;
    }

    /// <summary>
    /// The case with <paramref name="count"/> auxiliary heads (<see cref="AuxiliaryHead"/>) inserted at random places of the
    /// top-level serial, each a small classifier to the network's output (pooling or flattening, maybe a 1x1 convolution, a
    /// hidden dense layer with ReLU and maybe dropout, the classes, a log-softmax when the loss wants one), with a random
    /// weight; the trunk keeps its paths, parameters and state.
    /// </summary>
    public static BridgeCase WithHeads(BridgeCase c, int count, int seed)
    {
        var rng = new Random(seed);
        var layers = ((Serial)c.Network.Root).Layers.ToList();
        var output = c.Network.OutputShape;
        bool logSoftmax = layers[^1] is LogSoftmax;
        // From the last place to the first, so that each index still means the place in the trunk it was drawn for.
        foreach (int at in Enumerable.Range(0, count).Select(_ => rng.Next(layers.Count)).OrderDescending())
        {
            var tapped = at == 0 ? c.Network.InputShape : c.Network.RootNode.Children[at - 1].Output;
            var head = new List<Layer>();
            if (tapped.Rank > 1 && rng.Next(3) == 0)
                head.Add(tapped.Rank switch { 2 => new Conv1d(rng.Next(1, 5), 1), 3 => new Conv2d(rng.Next(1, 5), 1, 1), _ => new Conv3d(rng.Next(1, 5), 1) });
            if (tapped.Rank > 1 && rng.Next(2) == 0) head.Add(new GlobalPool(rng.Next(2) == 0 ? PoolOp.Average : PoolOp.Max));
            head.Add(new Flatten());
            if (rng.Next(2) == 0)
            {
                // No batch norm here: a trunk that the generator made constant over the batch (a softmax along an axis of
                // one) would give it a zero variance, where both backends' float noise is amplified by 1/sqrt(epsilon).
                head.Add(new Dense(rng.Next(2, 9)));
                head.Add(new Relu());
                if (rng.Next(2) == 0) head.Add(new Dropout(0.5f));
            }
            head.Add(new Dense(output[0]));
            if (logSoftmax) head.Add(new LogSoftmax());
            // Named apart from the heads the case may have already, whose default names (aux1, ...) the new ones would shift.
            layers.Insert(at, new AuxiliaryHead(new Serial(head), (float)(0.1 + 0.9 * rng.NextDouble())).Named($"side{rng.Next(1_000_000)}x{at}"));
        }
        var network = Network.Create(new Serial(layers) { Name = c.Network.Root.Name }, c.Network.InputShape);
        var parameters = Initializer.Init(network, seed).Map((path, t) => c.Parameters.Contains(path) ? c.Parameters[path] : t);
        var state = Initializer.InitState(network).Map((path, t) => c.State.Contains(path) ? c.State[path] : t);
        return c with { Network = network, Parameters = parameters, State = state };
    }

    /// <summary>One line per node, indented by depth, with each leaf's record (its hyper-parameters).</summary>
    public static string Describe(Node node, int depth = 0)
    {
        string pad = new(' ', 2 * depth);
        string self = node.Layer is LeafLayer
            ? $"{pad}{node.Path} {node.Input} -> {node.Output}: {node.Layer}{(node.Frozen ? " (frozen)" : "")}"
            : $"{pad}{(node.Path.Length == 0 ? "<root>" : node.Path)} {node.Layer.GetType().Name} {node.Input} -> {node.Output}";
        return string.Join(Environment.NewLine, new[] { self }.Concat(node.Children.Select(c => Describe(c, depth + 1))));
    }

    private sealed class Builder(Family family, int seed)
    {
        private const int MaxLeaves = 14;
        private readonly Random _rng = new(seed);
        private readonly int _axes = (int)family;
        private int _leaves;
        private int _blocks;

        public BridgeCase Build()
        {
            var input = family switch
            {
                Family.Signal => new Shape(_rng.Next(1, 5), _rng.Next(8, 25)),
                Family.Image => new Shape(_rng.Next(1, 4), _rng.Next(4, 11), _rng.Next(4, 11)),
                _ => new Shape(_rng.Next(1, 3), _rng.Next(3, 6), _rng.Next(3, 6), _rng.Next(3, 6)),
            };
            var shape = input;
            var layers = Body(ref shape, depth: 0, preserve: false, count: _rng.Next(2, 6));
            layers.AddRange(Head(ref shape, out var loss));
            var network = Network.Create(new Serial(layers), input);

            var parameters = Initializer.Init(network, seed);
            var state = Initializer.InitState(network);
            // Batch norm starts at γ = 1, β = 0, mean 0, variance 1: move it off that special point so that every term counts.
            foreach (var leaf in network.RootNode.Leaves().Where(l => l.Layer is BatchNorm))
            {
                int c = leaf.Input[0];
                parameters = parameters.With(Network.Join(leaf.Path, "weight"), Uniform(c, 0.5, 1.5)).With(Network.Join(leaf.Path, "bias"), Uniform(c, -0.5, 0.5));
                state = state.With(Network.Join(leaf.Path, "running_mean"), Uniform(c, -0.5, 0.5)).With(Network.Join(leaf.Path, "running_var"), Uniform(c, 0.5, 1.5));
            }
            // A constant operand starts at its operation's identity: move it off, away from 0 where it divides.
            foreach (var leaf in network.RootNode.Leaves().Where(l => l.Layer is ConstantOperand))
            {
                var k = (ConstantOperand)leaf.Layer;
                var value = k.Op is Cnn.Core.Kernels.BinaryOp.Multiply or Cnn.Core.Kernels.BinaryOp.Divide ? Uniform(k.Shape.Size, 0.5, 1.5) : Uniform(k.Shape.Size, -0.5, 0.5);
                parameters = parameters.With(Network.Join(leaf.Path, "value"), value.Reshape(k.Shape));
            }
            int batch = _rng.Next(2, 5);
            var x = Uniform(input.PrependBatch(batch).Size, -1, 1).Reshape(input.PrependBatch(batch));
            var labels = Enumerable.Range(0, batch).Select(_ => _rng.Next(network.OutputShape[0])).ToArray();
            var mode = _rng.NextDouble() < 0.6 ? Mode.Train : Mode.Eval;
            return new BridgeCase(family, seed, network, parameters, state, x, labels, loss, mode);
        }

        private Tensor Uniform(int count, double lo, double hi) =>
            Tensor.FromArray(Enumerable.Range(0, count).Select(_ => (float)(lo + (hi - lo) * _rng.NextDouble())).ToArray(), count);

        private List<Layer> Body(ref Shape shape, int depth, bool preserve, int count)
        {
            var layers = new List<Layer>();
            for (int i = 0; i < count && _leaves < MaxLeaves; i++) layers.Add(Next(ref shape, depth, preserve));
            if (layers.Count == 0) layers.Add(Count(new Identity()));
            return layers;
        }

        /// <summary>One layer or combinator fitting <paramref name="shape"/>; with <paramref name="preserve"/> it keeps the spatial size.</summary>
        private Layer Next(ref Shape shape, int depth, bool preserve)
        {
            bool nest = depth < 2 && _leaves < MaxLeaves - 3;
            int pick = _rng.Next(nest ? 18 : 13);
            var layer = pick switch
            {
                0 or 1 => Conv(shape, preserve, Filters()),
                2 when !preserve && SmallEnoughToUpsample(shape) => ConvTranspose(shape.Rank - 1),
                2 or 3 => Pool(shape, preserve),
                4 => new BatchNorm(Momentum: (float)(0.05 + 0.25 * _rng.NextDouble()), Epsilon: _rng.Next(2) == 0 ? 1e-5f : 1e-3f),
                5 when _rng.Next(3) == 0 => ConstantOperand(shape),
                5 => Activation(),
                6 => new Softmax(_rng.Next(2) == 0 ? -1 : _rng.Next(1, shape.Rank + 1)),
                7 => new Lrn(_rng.Next(1, 6), (float)(0.01 + 0.5 * _rng.NextDouble()), (float)(0.5 + 0.4 * _rng.NextDouble()), (float)(0.5 + 1.5 * _rng.NextDouble())),
                8 => new Dropout(_rng.Next(4) switch { 0 => 0f, 1 => 0.2f, _ => 0.5f }),
                9 when shape[0] >= 2 => ChannelPool(shape[0]),
                10 when family == Family.Image && !preserve && _rng.Next(2) == 0 => new Permute(0, 2, 1),
                10 when family == Family.Image && !preserve => new Reshape(shape[0], shape[2], shape[1]),
                11 when !preserve && _rng.Next(3) == 0 => new MatMul(_rng.Next(2, 6)),
                11 when shape[0] % 2 == 0 => new ChannelShuffle(2),
                12 when family == Family.Image && !preserve => new Pad2d(_rng.Next(0, shape[1]), _rng.Next(0, shape[1]), _rng.Next(0, shape[2]), _rng.Next(0, shape[2]),
                    (PadMode)_rng.Next(3)),
                12 when shape[0] >= 2 && !preserve => new ChannelSlice(_rng.Next(0, 2), shape[0] - 1),
                9 or 10 or 11 or 12 => Activation(),
                13 => FanOutLayer(shape, depth),
                14 => ResidualLayer(shape, depth, preserve),
                15 or 16 => Freeze(shape, depth, preserve),
                _ => NestedSerial(shape, depth, preserve),
            };
            if (layer is LeafLayer) Count(layer);
            shape = Network.Create(layer, shape).OutputShape;
            return layer;
        }

        private Layer Count(Layer leaf)
        {
            _leaves++;
            return leaf;
        }

        private int Filters() => _rng.Next(1, 7);

        /// <summary>Any operation with a value that keeps each axis of the sample or broadcasts along it.</summary>
        private Layer ConstantOperand(Shape shape) =>
            new ConstantOperand((Cnn.Core.Kernels.BinaryOp)_rng.Next(4), shape.Select(d => _rng.Next(2) == 0 ? 1 : d).ToArray());

        private Layer Activation() => _rng.Next(10) switch
        {
            0 => new Relu(),
            1 => new LeakyRelu((float)(0.01 + 0.3 * _rng.NextDouble())),
            2 => new Elu((float)(0.5 + _rng.NextDouble())),
            3 => new Sigmoid(),
            // Bounds inside the data's range, so that both clip and both kinks are reached.
            4 => new HardTanh(_rng.Next(4) == 0 ? float.NegativeInfinity : (float)(-0.1 - 0.8 * _rng.NextDouble()), (float)(0.1 + 0.8 * _rng.NextDouble())),
            5 => _rng.Next(2) == 0 ? new HardSigmoid() : new HardSigmoid((float)(0.1 + _rng.NextDouble()), (float)_rng.NextDouble()),
            6 => new HardSwish(),
            7 => new Silu(),
            8 => new Gelu(),
            _ => new Tanh(),
        };

        /// <summary>A convolution of the family's rank; grouped and dilated where the rank allows.</summary>
        private Layer Conv(Shape input, bool preserve, int filters, int stride = 0)
        {
            int c = input[0];
            int smallest = input.Skip(1).Min();
            int groups = 1;
            if (family != Family.Volume && _rng.Next(2) == 0)
            {
                // Groups divide both channel counts; the filters stay as asked, since a sum join needs exactly that many.
                var divisors = Enumerable.Range(1, Math.Min(c, filters)).Where(g => c % g == 0 && filters % g == 0).ToArray();
                groups = divisors[_rng.Next(divisors.Length)];
            }
            (int Kernel, int Pad, int Dilation, int Stride) Axis()
            {
                if (stride > 0) return (3, 1, 1, stride);
                if (preserve)
                {
                    int k = _rng.Next(2) == 0 ? 1 : 3, d = family == Family.Volume ? 1 : _rng.Next(1, 3);
                    return (k, d * (k - 1) / 2, d, 1);
                }
                int pad = _rng.Next(2), dil = family == Family.Volume ? 1 : _rng.Next(1, 3), kernel = _rng.Next(1, 4);
                // The dilated window must fit in the padded input: shrink the dilation, then the kernel.
                if (dil * (kernel - 1) + 1 > smallest + 2 * pad) dil = 1;
                kernel = Math.Min(kernel, smallest + 2 * pad);
                return (kernel, pad, dil, _rng.Next(1, 3));
            }
            var a = Axis();
            bool bias = _rng.Next(4) != 0;
            switch (family)
            {
                case Family.Signal:
                    return new Conv1d(filters, a.Kernel, a.Stride, a.Pad, bias, a.Dilation, groups);
                case Family.Volume:
                    return new Conv3d(filters, a.Kernel, a.Stride, a.Pad, bias);
                default:
                {
                    var b = stride > 0 || preserve ? a : Axis();
                    return new Conv2d(filters, a.Kernel, b.Kernel, a.Stride, b.Stride, a.Pad, b.Pad, bias, a.Dilation, b.Dilation, groups);
                }
            }
        }

        /// <summary>Whether every spatial size is small (32 for 1-d, 8 for 2-d, 5 for 3-d), so that upsampling keeps the network small.</summary>
        private static bool SmallEnoughToUpsample(Shape shape) => shape.Skip(1).All(d => d <= (shape.Rank switch { 2 => 32, 3 => 8, _ => 5 }));

        /// <summary>A transposed convolution of the family's rank; 2-d and 3-d ones draw kernel and stride per axis.</summary>
        private Layer ConvTranspose(int rank)
        {
            int stride = _rng.Next(1, 3), kernel = _rng.Next(1, 4);
            int pad = kernel >= 3 ? _rng.Next(2) : 0;
            bool bias = _rng.Next(4) != 0;
            // A third of the time an end padding of its own (ONNX's SAME_UPPER), below kernel - pad so the output stays non-empty.
            int? End() => _rng.Next(3) == 0 ? _rng.Next(kernel - pad) : null;
            return rank switch
            {
                1 => new ConvTranspose1d(Filters(), kernel, stride, pad, _rng.Next(stride), bias, Dilation: _rng.Next(1, 3), PadEnd: End()),
                2 => new ConvTranspose2d(Filters(), kernel, stride, pad, _rng.Next(stride), bias, PadEnd: End() is { } e ? (e, _rng.Next(kernel - pad)) : null),
                _ => new ConvTranspose3d(Filters(), Kernel: (kernel, _rng.Next(1, 3), 2), Stride: (stride, 1, _rng.Next(1, 3)), Pad: (pad, 0, 0),
                    OutputPad: (_rng.Next(stride), 0, 0), UseBias: bias),
            };
        }

        /// <summary>Max or average pooling of the family's rank; windows shrink to fit the padded input.</summary>
        private Layer Pool(Shape input, bool preserve)
        {
            int smallest = input.Skip(1).Min();
            (int Kernel, int Pad, int Stride) Axis()
            {
                if (preserve)
                {
                    int k = _rng.Next(2) == 0 ? 1 : 3;
                    return (k, k / 2, 1);
                }
                int kernel = _rng.Next(1, 4), pad = _rng.Next(kernel / 2 + 1);
                return (Math.Min(kernel, smallest + 2 * pad), pad, _rng.Next(1, 3));
            }
            bool max = _rng.Next(2) == 0, includePad = _rng.Next(2) == 0;
            var a = Axis();
            if (family != Family.Image) return new PoolNd(max ? PoolOp.Max : PoolOp.Average, a.Kernel, a.Stride, a.Pad, includePad);
            if (!max && !preserve && _rng.Next(4) == 0) return UnevenAvgPool(input, includePad);
            var b = preserve ? a : Axis();
            bool ceil = !preserve && _rng.Next(2) == 0;
            if (max && !preserve && !ceil && _rng.Next(3) == 0)
            {
                // Dilated (floor mode): kept where the dilated window fits and every window covers an input element.
                var dilated = new MaxPool2d(a.Kernel, b.Kernel, a.Stride, b.Stride, a.Pad, b.Pad, false, _rng.Next(1, 4), _rng.Next(2, 4));
                try
                {
                    dilated.OutputShape(input, "", false);
                    return dilated;
                }
                catch (ShapeException) { }
            }
            return max
                ? new MaxPool2d(a.Kernel, b.Kernel, a.Stride, b.Stride, a.Pad, b.Pad, ceil)
                : new AvgPool2d(a.Kernel, b.Kernel, a.Stride, b.Stride, a.Pad, b.Pad, ceil, includePad);
        }

        /// <summary>Average pooling with ONNX's padding: each end 0..kernel-1 (ends that differ, beyond half the window), floor mode.</summary>
        private AvgPool2d UnevenAvgPool(Shape input, bool includePad)
        {
            int kh = _rng.Next(1, 4), kw = _rng.Next(1, 4);
            int top = _rng.Next(kh), left = _rng.Next(kw);
            // The padded input must hold a window: a padding below the window always can, with an input of 1.
            int bottom = Math.Max(_rng.Next(kh), kh - input[1] - top), right = Math.Max(_rng.Next(kw), kw - input[2] - left);
            return new AvgPool2d(kh, kw, _rng.Next(1, 3), _rng.Next(1, 3), top, left, false, includePad,
                bottom == top ? null : bottom, right == left ? null : right);
        }

        private Layer ChannelPool(int channels)
        {
            int kernel = _rng.Next(1, Math.Min(3, channels) + 1);
            return _rng.Next(2) == 0 ? new ChannelMaxPool(kernel, _rng.Next(1, 3)) : new ChannelAvgPool(kernel, _rng.Next(1, 3));
        }

        /// <summary>Two or three branches that keep the spatial size, concatenated, or summed after a convolution to common channels.</summary>
        private Layer FanOutLayer(Shape input, int depth)
        {
            if (_rng.Next(3) == 0) return Gated(input, depth);
            bool concat = _rng.Next(2) == 0;
            int target = concat ? 0 : _rng.Next(1, 7);
            var branches = new List<Layer>();
            int n = _rng.Next(2, 4);
            for (int i = 0; i < n; i++)
            {
                var s = input;
                var body = Body(ref s, depth + 1, preserve: true, count: _rng.Next(1, 3));
                if (!concat && s[0] != target) body.Add(Count(Conv(s, preserve: true, filters: target)));
                branches.Add(body.Count == 1 ? body[0] : new Serial(body));
            }
            return new FanOut(concat ? Join.Concat : Join.Sum, branches);
        }

        /// <summary>
        /// A product of a shape-keeping body and a gate broadcast from each channel's global pool (squeeze-and-excitation),
        /// in either order.
        /// </summary>
        private Layer Gated(Shape input, int depth)
        {
            var s = input;
            var body = Body(ref s, depth + 1, preserve: true, count: _rng.Next(1, 3));
            if (s[0] != input[0]) body.Add(Count(Conv(s, preserve: true, filters: input[0])));
            var gate = new Serial(Count(new GlobalPool(_rng.Next(2) == 0 ? PoolOp.Average : PoolOp.Max)), Count(_rng.Next(2) == 0 ? new Sigmoid() : new HardSigmoid()));
            Layer main = body.Count == 1 ? body[0] : new Serial(body);
            return _rng.Next(2) == 0 ? FanOut.Product(main, gate) : FanOut.Product(gate, main);
        }

        /// <summary>A block that keeps the shape with the identity shortcut, or a strided block with a strided 1x1 projection.</summary>
        private Layer ResidualLayer(Shape input, int depth, bool preserve)
        {
            if (preserve || _rng.Next(2) == 0)
            {
                var s = input;
                var body = Body(ref s, depth + 1, preserve: true, count: _rng.Next(1, 4));
                if (s[0] != input[0]) body.Add(Count(Conv(s, preserve: true, filters: input[0])));
                return new Residual(new Serial(body));
            }
            // A 3-wide window at stride 2 and padding 1 gives floor((n-1)/2)+1 outputs, as a 1-wide one at stride 2 does.
            int channels = Filters();
            var first = Count(Conv(input, preserve: false, filters: channels, stride: 2));
            var shape = Network.Create(first, input).OutputShape;
            var rest = Body(ref shape, depth + 1, preserve: true, count: _rng.Next(0, 3));
            if (shape[0] != channels) rest.Add(Count(Conv(shape, preserve: true, filters: channels)));
            Layer projection = family switch
            {
                Family.Signal => new Conv1d(channels, 1, 2),
                Family.Volume => new Conv3d(channels, 1, 2),
                _ => new Conv2d(channels, 1, 1, 2, 2),
            };
            Count(projection);
            Layer shortcut = _rng.Next(2) == 0 ? projection : new Serial(projection, Count(new BatchNorm()));
            return new Residual(new Serial(new[] { first }.Concat(rest)), shortcut);
        }

        private Layer Freeze(Shape input, int depth, bool preserve)
        {
            var s = input;
            var body = Body(ref s, depth + 1, preserve, count: _rng.Next(1, 4));
            // Batch norm under a freeze is the case that matters most (inference mode inside a training pass): make it common.
            if (_rng.Next(2) == 0) body.Add(Count(new BatchNorm()));
            return new Freeze(new Serial(body));
        }

        private Layer NestedSerial(Shape input, int depth, bool preserve)
        {
            var s = input;
            return new Serial(Body(ref s, depth + 1, preserve, count: _rng.Next(1, 4))).Named($"block{++_blocks}");
        }

        /// <summary>Flatten (or a flattening reshape, or global pooling then flatten), maybe a hidden dense layer, then the classes.</summary>
        private List<Layer> Head(ref Shape shape, out LossFunction loss)
        {
            var head = new List<Layer>();
            switch (_rng.Next(3))
            {
                case 0:
                    head.Add(new GlobalPool(_rng.Next(2) == 0 ? PoolOp.Max : PoolOp.Average));
                    head.Add(new Flatten());
                    break;
                case 1:
                    head.Add(new Reshape(shape.Size));
                    break;
                default:
                    head.Add(new Flatten());
                    break;
            }
            if (_rng.Next(2) == 0)
            {
                head.Add(new Dense(_rng.Next(3, 13), _rng.Next(4) != 0));
                if (_rng.Next(2) == 0) head.Add(new BatchNorm());
                head.Add(Activation());
                if (_rng.Next(2) == 0) head.Add(new Dropout(0.3f));
            }
            head.Add(new Dense(_rng.Next(2, 6)));
            switch (_rng.Next(5))
            {
                case 0:
                    head.Add(new LogSoftmax());
                    loss = LossFunction.NegativeLogLikelihood;
                    break;
                case 1:
                    loss = LossFunction.MeanSquaredError;
                    break;
                case 2:
                    loss = LossFunction.SoftmaxCrossEntropyWithLabelSmoothing(_rng.Next(2) == 0 ? 0.1f : 0.7f);
                    break;
                default:
                    loss = LossFunction.SoftmaxCrossEntropy;
                    break;
            }
            return head;
        }
    }
}
