using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>
/// The output of a forward pass, the state after it, and the pullback that maps an output gradient to
/// input and parameter gradients.
/// </summary>
public sealed class ForwardResult
{
    private readonly Func<Tensor, GradientSink, Tensor> _pullback;

    internal ForwardResult(Tensor output, Parameters state, Func<Tensor, GradientSink, Tensor> pullback, IReadOnlyList<HeadOutput> heads)
    {
        Output = output;
        State = state;
        _pullback = pullback;
        Heads = heads;
    }

    /// <summary>The network's output for the batch.</summary>
    public Tensor Output { get; }

    /// <summary>The state after this pass: updated running statistics in training mode, unchanged in inference.</summary>
    public Parameters State { get; }

    /// <summary>
    /// The outputs of the network's <see cref="AuxiliaryHead"/> layers in execution order: computed by a training-mode pass,
    /// empty in inference (where the heads are the identity).
    /// </summary>
    public IReadOnlyList<HeadOutput> Heads { get; }

    /// <summary>
    /// The vector-Jacobian product: given dL/dOutput, the gradient with respect to the input and to every
    /// trainable parameter (frozen parameters get none). The auxiliary heads' outputs count as not reaching the loss:
    /// their parameters' gradients are zero (see the overload that takes their gradients).
    /// </summary>
    public Pulled Pullback(Tensor outputGradient) => Pullback(outputGradient, Array.Empty<Tensor>());

    /// <summary>
    /// The vector-Jacobian product of the main output and the auxiliary heads' outputs together: each head's gradient is
    /// pulled back through the head and added into the trunk where the head taps it.
    /// </summary>
    /// <param name="outputGradient">dL/dOutput.</param>
    /// <param name="headGradients">dL/dHead for each of <see cref="Heads"/>, in order; empty for none (zero).</param>
    /// <exception cref="ShapeException">A gradient's shape or the number of head gradients does not fit.</exception>
    public Pulled Pullback(Tensor outputGradient, IReadOnlyList<Tensor> headGradients)
    {
        var sink = Sink(outputGradient, headGradients);
        var dx = _pullback(outputGradient, sink);
        return new Pulled(dx, sink.ToParameters());
    }

    /// <summary>
    /// The parameter gradients alone, for a pass built by <see cref="Apply.ForTraining"/>, which skips the input gradient
    /// (a training step never reads it).
    /// </summary>
    internal Parameters PullbackParameters(Tensor outputGradient, IReadOnlyList<Tensor>? headGradients = null)
    {
        var sink = Sink(outputGradient, headGradients ?? Array.Empty<Tensor>());
        _pullback(outputGradient, sink);
        return sink.ToParameters();
    }

    private GradientSink Sink(Tensor outputGradient, IReadOnlyList<Tensor> headGradients)
    {
        ArgumentNullException.ThrowIfNull(outputGradient);
        ArgumentNullException.ThrowIfNull(headGradients);
        if (outputGradient.Shape != Output.Shape)
            throw new ShapeException($"Pullback: expected an output gradient of shape {Output.Shape}; found {outputGradient.Shape}.");
        if (headGradients.Count != 0 && headGradients.Count != Heads.Count)
            throw new ShapeException($"Pullback: expected a gradient for each of the {Heads.Count} auxiliary heads (or none); found {headGradients.Count}.");
        for (int i = 0; i < headGradients.Count; i++)
            if (headGradients[i].Shape != Heads[i].Output.Shape)
                throw new ShapeException($"Pullback: expected the gradient of head '{Heads[i].Path}' of shape {Heads[i].Output.Shape}; found {headGradients[i].Shape}.");
        return new GradientSink(headGradients);
    }
}

/// <summary>Gradients returned by a pullback.</summary>
/// <param name="Input">dL/dInput.</param>
/// <param name="Parameters">dL/dParameter for every trainable parameter, by path.</param>
public sealed record Pulled(Tensor Input, Parameters Parameters);

/// <summary>Collects parameter gradients by path during a pullback.</summary>
internal sealed class GradientSink(IReadOnlyList<Tensor> headGradients)
{
    private readonly List<KeyValuePair<string, Tensor>> _entries = new();

    /// <summary>The gradient of the auxiliary head at <paramref name="index"/> (execution order), or null when none was given.</summary>
    public Tensor? HeadGradient(int index) => index < headGradients.Count ? headGradients[index] : null;

    public void Add(string path, Tensor gradient) => _entries.Add(KeyValuePair.Create(path, gradient));

    public Parameters ToParameters() => Parameters.Of(_entries);
}

/// <summary>
/// The apply interpreter: runs a network forward on the im2col backend and builds its pullback, one rule per
/// layer kind and combinator. Mode, state and the seed of stochastic layers are arguments, so a call is a pure
/// function of its inputs.
/// </summary>
public static partial class Apply
{
    /// <summary>The network's output for a batch <paramref name="x"/> (batch first).</summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="x">The batch, <c>[N, ...input shape]</c>.</param>
    /// <param name="mode">Inference (default) or training.</param>
    /// <param name="state">The state (batch-norm running statistics); required when the network has any.</param>
    /// <param name="seed">Seeds the dropout masks of a training pass.</param>
    public static Tensor Forward(Network network, Parameters parameters, Tensor x, Mode mode = Mode.Eval, Parameters? state = null, int seed = 0) =>
        WithPullback(network, parameters, x, mode, state, seed).Output;

    /// <summary>The examples per pass of <see cref="ForwardInBatches"/> by default.</summary>
    public const int DefaultBatchSize = 256;

    /// <summary>
    /// <see cref="Forward"/> on a large input, <paramref name="batchSize"/> examples at a time, so that the activations'
    /// memory is bounded by the batch size rather than the number of examples; the output is that of one pass up to
    /// float rounding (in inference mode every example is computed on its own, but the GEMM's order of sums depends on
    /// the number of rows). A training-mode pass is one pass, since batch
    /// normalisation then uses the statistics of the whole batch.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="x">The examples, <c>[N, ...input shape]</c>.</param>
    /// <param name="mode">Inference (default, batched) or training (one pass).</param>
    /// <param name="state">The state (batch-norm running statistics); required when the network has any.</param>
    /// <param name="seed">Seeds the dropout masks of a training pass.</param>
    /// <param name="batchSize">Examples per pass (default <see cref="DefaultBatchSize"/>).</param>
    public static Tensor ForwardInBatches(Network network, Parameters parameters, Tensor x, Mode mode = Mode.Eval, Parameters? state = null, int seed = 0, int batchSize = DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        int n = x.Shape.Rank == 0 ? 0 : x.Shape[0];
        if (mode == Mode.Train || n <= batchSize) return Forward(network, parameters, x, mode, state, seed);
        float[]? all = null;
        Shape? outShape = null;
        // Each batch's activations come from an arena and go back to it, so the passes reuse one batch's memory instead
        // of leaving large-object garbage for the collector (measured: 680 MB peak for 20,000 digits without it).
        var arena = TensorArena.ActiveOnThisThread ? null : new TensorArena();
        for (int start = 0; start < n; start += batchSize)
        {
            int count = Math.Min(batchSize, n - start);
            var batch = x.Slice(start, count);
            using (arena?.Activate())
            {
                var y = Forward(network, parameters, batch, mode, state, seed);
                if (all is null)
                {
                    outShape = y.Shape.WithBatch(n);
                    all = new float[outShape.Size];
                }
                y.Span.CopyTo(all.AsSpan(start * (y.Size / count)));
            }
            arena?.Recycle();
        }
        return Tensor.Own(all!, outShape!);
    }

    /// <summary>The network's output for a batch, the updated state, and the pullback.</summary>
    /// <exception cref="ShapeException">The batch's shape is not <c>[N, ...input shape]</c>.</exception>
    /// <exception cref="CnnException">The network has state and none was given, or a parameter is missing.</exception>
    public static ForwardResult WithPullback(Network network, Parameters parameters, Tensor x, Mode mode = Mode.Eval, Parameters? state = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Check(network, x, state);
        var run = new Run(parameters, state ?? Parameters.Empty, mode, seed);
        var (y, back) = run.Node(network.RootNode, x);
        return new ForwardResult(y, run.NewState(), back, run.Heads);
    }

    /// <summary>
    /// A training-mode pass whose pullback computes parameter gradients only (<see cref="ForwardResult.PullbackParameters"/>):
    /// no input gradient is computed where nothing before a layer has a trainable parameter. A frozen prefix (fine-tuning a
    /// pretrained network) gets no pullback at all, and the first trainable convolution after it skips its input gradient,
    /// about a third of its backward pass. The forward pass, the state and the parameter gradients are those of
    /// <see cref="WithPullback"/>, bit for bit: a layer's parameter gradients never depend on the gradients before it.
    /// </summary>
    internal static ForwardResult ForTraining(Network network, Parameters parameters, Tensor x, Parameters? state = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Check(network, x, state);
        var run = new Run(parameters, state ?? Parameters.Empty, Mode.Train, seed);
        var (y, back) = run.Node(network.RootNode, x, needInputGradient: false);
        return new ForwardResult(y, run.NewState(), back, run.Heads);
    }

    /// <summary>Whether any leaf under <paramref name="node"/> gets a parameter gradient (it has parameters and is not frozen).</summary>
    private static bool HasGradients(Node node) =>
        Trainable.GetValue(node, static n => new(n.Leaves().Any(l => !l.Frozen && l.ParameterSpecs().Any()))).Value;

    /// <summary>Each node's <see cref="HasGradients"/>, by node instance (made once per network, not once per step).</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Node, System.Runtime.CompilerServices.StrongBox<bool>> Trainable = new();

    /// <summary>Every state path under a root node, by node instance: a step checks them without listing the layers' specs again.</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Node, string[]> StatePaths = new();

    /// <summary>
    /// Each leaf's full parameter and state paths by name (<c>weight</c> to <c>block1/conv/weight</c>), by node instance:
    /// joined once, where joining them in every step was a string per parameter per step. Read-only once made, so concurrent
    /// passes over one network may share it.
    /// </summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Node, Dictionary<string, string>> LeafPaths = new();

    /// <summary>The full path of a leaf's parameter or state <paramref name="name"/>.</summary>
    private static string PathOf(Node node, string name)
    {
        var paths = LeafPaths.GetValue(node, static n => n.Layer is LeafLayer leaf
            ? leaf.ParameterSpecs(n.Input).Select(s => s.Name).Concat(leaf.StateSpecs(n.Input).Select(s => s.Name)).Distinct()
                .ToDictionary(k => k, k => Network.Join(n.Path, k), StringComparer.Ordinal)
            : new Dictionary<string, string>(StringComparer.Ordinal));
        return paths.TryGetValue(name, out var path) ? path : Network.Join(node.Path, name);
    }

    private static void Check(Network network, Tensor x, Parameters? state)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(x);
        if (x.Shape.Rank != network.InputShape.Rank + 1 || x.Shape.DropBatch() != network.InputShape)
            throw new ShapeException($"Network input: expected a batch [N, {string.Join(", ", network.InputShape)}]; found {x.Shape}.");
        if (x.Shape[0] < 1) throw new ShapeException($"Network input: the batch is empty ({x.Shape}).");
        var st = state ?? Parameters.Empty;
        string? missing = null;
        foreach (var path in StatePaths.GetValue(network.RootNode, static n => n.Leaves().SelectMany(l => l.StateSpecs()).Select(s => s.Path).ToArray()))
            if (!st.Contains(path))
            {
                missing = path;
                break;
            }
        if (missing is not null)
            throw new CnnException($"The network has state ('{missing}', batch-norm running statistics): pass the state from Initializer.InitState or from training.");
    }

    /// <summary>Like <see cref="WithPullback"/>, recording the output of the node at <paramref name="tap"/>'s path and, during the pullback, the gradient that reaches it.</summary>
    internal static ForwardResult WithTap(Network network, Parameters parameters, Tensor x, LayerTap tap, Mode mode = Mode.Eval, Parameters? state = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Check(network, x, state);
        var run = new Run(parameters, state ?? Parameters.Empty, mode, seed, tap: tap);
        var (y, back) = run.Node(network.RootNode, x);
        return new ForwardResult(y, run.NewState(), back, run.Heads);
    }

    /// <summary>
    /// Runs the network forward and returns every leaf's output by path, in execution order: for pictures of
    /// feature maps, and to find the first layer whose output is not finite.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, Tensor>> Trace(Network network, Parameters parameters, Tensor x, Mode mode = Mode.Eval, Parameters? state = null, int seed = 0)
    {
        var trace = new List<KeyValuePair<string, Tensor>>();
        Check(network, x, state);
        new Run(parameters, state ?? Parameters.Empty, mode, seed, trace).Node(network.RootNode, x);
        return trace;
    }

    /// <summary>
    /// Where a non-finite value first appears in a forward pass: <c>"input"</c> when the batch itself holds NaN or
    /// infinity, else the path of the first layer whose output does; null when every value is finite.
    /// </summary>
    public static string? FirstNonFinite(Network network, Parameters parameters, Tensor x, Mode mode = Mode.Eval, Parameters? state = null, int seed = 0)
    {
        if (!IsFinite(x)) return "input";
        foreach (var (path, y) in Trace(network, parameters, x, mode, state, seed))
            if (!IsFinite(y)) return path;
        return null;
    }

    private static bool IsFinite(Tensor t)
    {
        foreach (var v in t.Span) if (!float.IsFinite(v)) return false;
        return true;
    }

    /// <summary>One leaf's output in inference mode, by this interpreter's rule for it: the fallback of <see cref="InferenceModel"/>.</summary>
    internal static Tensor EvalLeaf(Node leaf, Parameters parameters, Parameters state, Tensor x) =>
        new Run(parameters, state, Mode.Eval, 0).Node(leaf, x).Item1;

    /// <summary>A convolution layer's options in N-d form (made once per layer).</summary>
    /// <summary>A dilated max pooling's window in N-d form, for <see cref="PoolNdKernel"/>.</summary>
    internal static ConvGeometry MaxPool2dGeometry(MaxPool2d m) =>
        ConvGeometry.Create(new[] { m.KernelH, m.KernelW }, new[] { m.StrideH, m.StrideW }, new[] { m.PadH, m.PadW }, new[] { m.PadH, m.PadW }, new[] { m.DilationH, m.DilationW });

    internal static ConvSpec ConvolutionSpec(ConvolutionLayer c) => Specs.GetValue(c, static l => l.Spec());

    /// <summary>Each convolution layer's options, by layer instance (a network's layers live as long as the network).</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ConvolutionLayer, ConvSpec> Specs = new();

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
