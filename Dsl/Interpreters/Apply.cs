using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

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

    /// <summary>A dilated max pooling's window in N-d form, for <see cref="PoolNdKernel"/>.</summary>
    internal static ConvGeometry MaxPool2dGeometry(MaxPool2d m) =>
        ConvGeometry.Create(new[] { m.KernelH, m.KernelW }, new[] { m.StrideH, m.StrideW }, new[] { m.PadH, m.PadW }, new[] { m.PadH, m.PadW }, new[] { m.DilationH, m.DilationW });

    /// <summary>A convolution layer's options in N-d form (made once per layer).</summary>
    internal static ConvSpec ConvolutionSpec(ConvolutionLayer c) => Specs.GetValue(c, static l => l.Spec());

    /// <summary>Each convolution layer's options, by layer instance (a network's layers live as long as the network).</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ConvolutionLayer, ConvSpec> Specs = new();
}
