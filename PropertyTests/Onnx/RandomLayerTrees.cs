using Cnn.Core;
using Cnn.Dsl;

namespace Cnn.Tests.Onnx;

/// <summary>
/// Random networks over every layer kind and combinator, valid by construction: each layer is drawn knowing the
/// shape that reaches it. Images (2-d), signals (1-d) and volumes (3-d); spatial layers, shape-preserving
/// branches joined by sum or residual addition, channel-changing branches joined by concatenation, frozen and
/// nested (named or unnamed) sub-networks, dropout, and a dense head; sometimes an auxiliary head, which export leaves out.
/// </summary>
public static class RandomLayerTrees
{
    public static Network Create(int seed)
    {
        var rng = new Random(seed);
        Shape input = rng.Next(5) switch
        {
            0 => new Shape(rng.Next(1, 5), rng.Next(3, 13)),
            1 => new Shape(rng.Next(1, 4), rng.Next(2, 6), rng.Next(2, 6), rng.Next(2, 6)),
            _ => new Shape(rng.Next(1, 5), rng.Next(2, 10), rng.Next(2, 10)),
        };
        var g = new Generator(rng);
        var shape = input;
        var layers = g.Sequence(ref shape, rng.Next(1, 6), depth: 0);
        if (rng.Next(3) > 0)
        {
            layers.Add(new Flatten());
            shape = new Shape(shape.Size);
            layers.AddRange(g.Head(ref shape));
        }
        if (layers.All(l => l is Dropout)) layers.Add(new Relu());
        if (layers[^1] is Dropout) layers.Add(new Identity());
        Layer root = new Serial(layers);
        if (rng.Next(6) == 0) root = root.Named("net");
        var net = Network.Create(root, input);
        // A generator of its own, so that the trees without heads are those drawn before heads existed.
        var heads = new Random(unchecked(seed * 7 + 5));
        return heads.Next(5) == 0 ? WithHead(net, heads) : net;
    }

    /// <summary>
    /// The network with an auxiliary head at a random place of its top-level serial: flatten, dense to the output's size, and
    /// a reshape to the output's shape. Export leaves it out; the trunk's paths are those of <paramref name="net"/>.
    /// </summary>
    public static Network WithHead(Network net, Random rng)
    {
        var layers = ((Serial)net.Root).Layers.ToList();
        var output = net.OutputShape;
        int at = rng.Next(layers.Count + 1);
        Layer head = new Serial(new Flatten(), new Dense(output.Size), new Reshape(output));
        layers.Insert(at, new AuxiliaryHead(head, (float)rng.NextDouble()));
        return Network.Create(new Serial(layers) { Name = net.Root.Name, WeightInit = net.Root.WeightInit }, net.InputShape);
    }

    private sealed class Generator(Random rng)
    {
        private int _names;

        public List<Layer> Sequence(ref Shape shape, int count, int depth)
        {
            var layers = new List<Layer>();
            for (int i = 0; i < count; i++) layers.Add(Maybe(Any(ref shape, depth)));
            return layers;
        }

        /// <summary>Sometimes gives the layer a name of its own, or wraps it in a frozen or a nested serial.</summary>
        private Layer Maybe(Layer layer) => rng.Next(10) switch
        {
            0 => layer.Named($"n{++_names}"),
            1 => new Freeze(layer),
            2 => new Serial(layer, new Dropout(0.1f)),
            _ => layer,
        };

        private Layer Any(ref Shape shape, int depth)
        {
            int pick = rng.Next(depth < 2 ? 15 : 10);
            if (pick >= 10)
            {
                var d = depth + 1;
                var s = shape;
                Layer result = (pick - 10) switch
                {
                    0 => FanOut.Sum(Enumerable.Range(0, rng.Next(1, 4)).Select(_ => Preserving(s, d)).ToArray()),
                    1 => Concat(ref s, d),
                    2 => new Residual(Preserving(s, d), rng.Next(3) switch { 0 => null, 1 => new Identity(), _ => Preserving(s, d) }),
                    // Squeeze-and-excitation: the input times a per-channel gate broadcast over the other axes.
                    3 => FanOut.Product(Preserving(s, d), new Serial(new GlobalPool(), rng.Next(2) == 0 ? new Sigmoid() : new HardSigmoid())),
                    _ => new Serial(Sequence(ref s, rng.Next(1, 4), d)).Named($"s{++_names}"),
                };
                shape = s;
                return result;
            }
            return Leaf(ref shape);
        }

        /// <summary>A layer (or short chain) that keeps the shape, for summed and residual branches.</summary>
        private Layer Preserving(Shape shape, int depth)
        {
            var layers = new List<Layer>();
            for (int i = rng.Next(1, 3); i > 0; i--)
            {
                layers.Add(rng.Next(8) switch
                {
                    0 when shape.Rank == 3 => new Conv2d(shape[0], 3, 3, PadH: 1, PadW: 1, UseBias: rng.Next(2) == 0),
                    1 when shape.Rank == 2 => new Conv1d(shape[0], 3, Pad: 1),
                    2 when shape.Rank == 3 => new MaxPool2d(3, 3, 1, 1, 1, 1),
                    3 => new BatchNorm(Momentum: Momenta[rng.Next(Momenta.Length)], Epsilon: rng.Next(2) == 0 ? 1e-5f : 1e-3f),
                    4 => new Dropout(0.5f),
                    5 when depth < 3 => FanOut.Sum(Preserving(shape, depth + 1), new Identity()),
                    _ => Activation(shape),
                });
            }
            return layers.Count == 1 && rng.Next(2) == 0 ? layers[0] : new Serial(layers);
        }

        private static readonly float[] Momenta = { 0.1f, 0.01f, 0.05f, 0.3f, 0.001f, 0.9f };

        private Layer Concat(ref Shape shape, int depth)
        {
            var branches = new List<Layer>();
            int channels = 0;
            for (int i = rng.Next(1, 4); i > 0; i--)
            {
                int filters = rng.Next(1, 4);
                branches.Add(shape.Rank switch
                {
                    3 => new Serial(new Conv2d(filters, 1, 1), Activation(shape)),
                    2 => new Conv1d(filters, 3, Pad: 1),
                    _ => new Conv3d(filters, 1),
                });
                channels += filters;
            }
            if (rng.Next(2) == 0)
            {
                branches.Add(Preserving(shape, depth));
                channels += shape[0];
            }
            var dims = shape.ToArray();
            dims[0] = channels;
            shape = new Shape(dims);
            return new FanOut(Join.Concat, branches);
        }

        private Layer Activation(Shape shape) => rng.Next(14) switch
        {
            9 => new HardTanh(-(float)rng.NextDouble(), rng.Next(4) == 0 ? float.PositiveInfinity : (float)rng.NextDouble() + 0.01f),
            10 => rng.Next(2) == 0 ? new HardSigmoid() : new HardSigmoid((float)(0.1 + rng.NextDouble()), (float)rng.NextDouble()),
            11 => new HardSwish(),
            12 => new Silu(),
            13 => new Gelu(),
            0 => new Relu(),
            1 => new LeakyRelu(0.01f + (float)rng.NextDouble() * 0.3f),
            2 => new Elu(0.5f + (float)rng.NextDouble()),
            3 => new Sigmoid(),
            4 => new Tanh(),
            5 => new Softmax(rng.Next(1, shape.Rank + 1) is var axis && rng.Next(2) == 0 ? axis : axis - shape.Rank - 1),
            6 => new LogSoftmax(-1),
            7 when shape.Rank >= 2 => new Lrn(2 * rng.Next(0, 3) + 1, 1e-4f + (float)rng.NextDouble(), 0.5f + (float)rng.NextDouble() * 0.5f, 1f + (float)rng.NextDouble()),
            _ => new Identity(),
        };

        /// <summary>
        /// Any operation with a value that keeps one spatial axis of more than one element, and each other axis or not: a value of
        /// one per channel (or one in all) would import folded into a convolution, Dense or batch norm before it.
        /// </summary>
        private Layer ConstantOperand(Shape shape)
        {
            var dims = shape.Select(d => rng.Next(2) == 0 ? 1 : d).ToArray();
            int kept = Enumerable.Range(1, shape.Rank - 1).Where(i => shape[i] > 1).OrderBy(_ => rng.Next()).First();
            dims[kept] = shape[kept];
            return new ConstantOperand((Cnn.Core.Kernels.BinaryOp)rng.Next(4), dims);
        }

        private Layer Leaf(ref Shape shape)
        {
            var layer = (shape.Rank, rng.Next(12)) switch
            {
                (3, 0 or 1) => Conv2d(shape),
                (3, 2) => ConvTranspose(shape),
                (3, 3) => Pool2d(shape),
                (2, 0) when rng.Next(2) == 0 => new ConvTranspose1d(rng.Next(1, 4), rng.Next(1, 4), rng.Next(1, 3), 0, 0, rng.Next(2) == 0, rng.Next(1, 3)),
                (4, 0) when rng.Next(2) == 0 && shape.Skip(1).All(d => d <= 6) =>
                    new ConvTranspose3d(rng.Next(1, 3), Kernel: (rng.Next(1, 3), 1, 2), Stride: (1, 2, 1), OutputPad: (0, rng.Next(2), 0), UseBias: rng.Next(2) == 0),
                (2, 0 or 1) => new Conv1d(rng.Next(1, 5), Math.Min(shape[1], rng.Next(1, 4)), rng.Next(1, 3), 0, rng.Next(2) == 0),
                (4, 0 or 1) => new Conv3d(rng.Next(1, 4), Math.Min(Math.Min(shape[1], shape[2]), Math.Min(shape[3], 2)), 1, rng.Next(2)),
                (2 or 4, 2 or 3) => PoolNd(shape),
                (_, 4) when rng.Next(2) == 0 => new ChannelMaxPool(Math.Min(shape[0], rng.Next(1, 3)), rng.Next(1, 3)),
                (_, 4) => new ChannelAvgPool(Math.Min(shape[0], rng.Next(1, 4)), rng.Next(1, 3)),
                (_, 5) => new BatchNorm(Momentum: Momenta[rng.Next(Momenta.Length)]),
                (_, 6) => new GlobalPool(rng.Next(2) == 0 ? PoolOp.Average : PoolOp.Max),
                (_, 7) => new Dropout(0.25f),
                (>= 2, 8) when rng.Next(3) == 0 => new MatMul(rng.Next(1, 5)),
                (>= 2, 8) when rng.Next(2) == 0 => Permutation(shape.Rank),
                (_, 8) => new Reshape(Reversed(shape)),
                (_, 10) when shape.Skip(1).Any(d => d > 1) && (shape.Rank != 3 || rng.Next(2) == 0) => ConstantOperand(shape),
                (3, 10) => Padding(shape),
                (_, 11) when shape[0] >= 2 => Slice(shape),
                (_, 9) when shape[0] % 2 == 0 => new ChannelShuffle(shape[0] % 4 == 0 && rng.Next(2) == 0 ? 4 : 2),
                _ => Activation(shape),
            };
            shape = ((LeafLayer)layer).OutputShape(shape, "", false);
            return layer;
        }

        /// <summary>A permutation of the sample's axes other than the identity (which the importer rightly reads as Identity).</summary>
        private Layer Permutation(int rank)
        {
            var axes = Enumerable.Range(0, rank).OrderBy(_ => rng.Next()).ToArray();
            if (axes.Select((a, i) => a == i).All(same => same)) (axes[0], axes[1]) = (axes[1], axes[0]);
            return new Permute(axes);
        }

        /// <summary>
        /// Explicit padding in any mode, each side below the axis's size (as reflection needs), a constant other than 0 at
        /// times. Never zero on every side: that pads nothing, and the importer rightly leaves such a Pad out (torch writes
        /// them), so it would not round-trip as a layer.
        /// </summary>
        private Layer Padding(Shape shape)
        {
            var mode = (PadMode)rng.Next(3);
            float value = mode == PadMode.Constant && rng.Next(2) == 0 ? (float)rng.NextDouble() : 0f;
            var pad = new Pad2d(rng.Next(0, shape[1]), rng.Next(0, shape[1]), rng.Next(0, shape[2]), rng.Next(0, shape[2]), mode, value);
            return pad is { Top: 0, Bottom: 0, Left: 0, Right: 0 } ? pad with { Top = 1, Mode = PadMode.Constant } : pad;
        }

        /// <summary>A run of channels, from any channel to any later one.</summary>
        private Layer Slice(Shape shape)
        {
            int start = rng.Next(0, shape[0]);
            return new ChannelSlice(start, rng.Next(1, shape[0] - start + 1));
        }

        private static Shape Reversed(Shape shape) => new(new[] { shape[0] }.Concat(shape.Skip(1).Reverse()).ToArray());

        private Layer Conv2d(Shape shape)
        {
            int groups = shape[0] % 2 == 0 && rng.Next(3) == 0 ? 2 : 1;
            int ph = rng.Next(0, 2), pw = rng.Next(0, 2), dh = rng.Next(1, 3), dw = 1;
            int kh = Math.Max(1, Math.Min(rng.Next(1, 4), (shape[1] + 2 * ph - 1) / dh + 1));
            int kw = Math.Max(1, Math.Min(rng.Next(1, 4), shape[2] + 2 * pw));
            return new Conv2d(groups * rng.Next(1, 3), kh, kw, rng.Next(1, 3), rng.Next(1, 3), ph, pw, rng.Next(2) == 0, dh, dw, groups);
        }

        private Layer ConvTranspose(Shape shape)
        {
            int stride = rng.Next(1, 3), kernel = rng.Next(1, 4);
            int pad = rng.Next(0, Math.Min(kernel, 2));
            // A third of the time an end padding of its own (ONNX's SAME_UPPER), per axis.
            Size2? padEnd = rng.Next(3) == 0 ? (rng.Next(kernel), rng.Next(kernel)) : null;
            var layer = new ConvTranspose2d(rng.Next(1, 4), kernel, stride, pad, rng.Next(0, stride), rng.Next(2) == 0, PadEnd: padEnd);
            try
            {
                layer.OutputShape(shape, "", false);
                return layer;
            }
            catch (ShapeException)
            {
                return new ConvTranspose2d(rng.Next(1, 4), kernel, stride);
            }
        }

        private Layer Pool2d(Shape shape)
        {
            int kh = Math.Min(rng.Next(1, 4), shape[1]), kw = Math.Min(rng.Next(1, 4), shape[2]);
            int ph = rng.Next(0, kh / 2 + 1), pw = rng.Next(0, kw / 2 + 1), sh = rng.Next(1, 4), sw = rng.Next(1, 4);
            bool ceil = rng.Next(2) == 0, countPad = rng.Next(2) == 0;
            if (rng.Next(2) == 0)
            {
                // Dilated a third of the time (floor mode), where the dilated window fits and every window covers an input element.
                var dilated = new MaxPool2d(kh, kw, sh, sw, ph, pw, false, rng.Next(1, 3), rng.Next(2, 4));
                if (rng.Next(3) == 0)
                    try
                    {
                        dilated.OutputShape(shape, "", false);
                        return dilated;
                    }
                    catch (ShapeException) { }
                return new MaxPool2d(kh, kw, sh, sw, ph, pw, ceil);
            }
            // ONNX's own padding half the time: each end 0..kernel-1, floor mode (a padded input of 1 holds a window).
            if (rng.Next(2) == 0)
            {
                int top = rng.Next(kh), left = rng.Next(kw);
                int bottom = Math.Max(rng.Next(kh), kh - shape[1] - top), right = Math.Max(rng.Next(kw), kw - shape[2] - left);
                return new AvgPool2d(kh, kw, sh, sw, top, left, false, countPad, bottom == top ? null : bottom, right == left ? null : right);
            }
            // Ceil mode with an average that counts padding has no ONNX form for a few windows (the exporter says so; a test checks it).
            if (Cnn.Onnx.PoolWindows.ToOnnx(new[] { shape[1], shape[2] }, new[] { kh, kw }, new[] { sh, sw }, new[] { ph, pw }, ceil, countPad) is null) countPad = false;
            return new AvgPool2d(kh, kw, sh, sw, ph, pw, ceil, countPad);
        }

        private Layer PoolNd(Shape shape)
        {
            int k = Math.Min(rng.Next(1, 4), shape.Skip(1).Min());
            return new PoolNd(rng.Next(2) == 0 ? PoolOp.Max : PoolOp.Average, k, rng.Next(1, 3), rng.Next(0, k / 2 + 1), rng.Next(2) == 0);
        }

        public List<Layer> Head(ref Shape shape)
        {
            var layers = new List<Layer>();
            for (int i = rng.Next(0, 3); i > 0; i--)
            {
                int units = rng.Next(1, 7);
                layers.Add(new Dense(units, rng.Next(3) > 0));
                shape = new Shape(units);
                if (rng.Next(2) == 0) layers.Add(rng.Next(3) == 0 ? new BatchNorm() : Activation(shape));
                if (rng.Next(4) == 0) layers.Add(new Dropout(0.5f));
            }
            if (rng.Next(3) == 0) layers.Add(rng.Next(2) == 0 ? new Softmax() : new LogSoftmax());
            return layers;
        }
    }
}
