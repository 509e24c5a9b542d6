using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// A network and its parameters and state compiled once for inference on the im2col backend: convolution weights packed
/// once for the GEMM's micro-kernel, evaluation-mode batch normalisation folded into the convolution or dense layer right
/// before it, the bias and a following ReLU applied while the convolution writes its output (a following tanh or sigmoid
/// in place right after it), dense weights packed once too. Each concurrent caller binds the plan to the input shapes it
/// sees, once per shape: every step's output tensor, the kernels' sizes and their parallel bodies are made then, so that
/// a warm call allocates nothing but the tensor it returns. Layers the compiler does not specialise run by
/// <see cref="Apply"/>'s own rule inside the plan, so every network compiles. Safe to call from several threads at once.
/// </summary>
/// <remarks>
/// <para><b>Where the bits differ from <see cref="Apply.Forward"/> (eval mode).</b> Without batch normalisation after a
/// convolution or dense layer the output is bit for bit that of <see cref="Apply.Forward"/>: the same kernels sum in the
/// same order, the weights are only packed earlier, and ReLU is the same <c>max(y, 0)</c> applied earlier. A folded batch
/// normalisation computes <c>conv(x, w * a) + (b - mean) * a + beta</c> (with <c>a = gamma / sqrt(var + eps)</c>, in
/// double, rounded once to float32) where <see cref="Apply.Forward"/> computes <c>(conv(x, w) + b) * a + (beta - mean *
/// a)</c>: the scale is multiplied into every weight before the sum instead of into the sum, so each product and the final
/// sum round differently, a relative difference of a few float32 ulps of the pre-activation's magnitude per folded layer,
/// which propagates (and can be amplified by later layers) to the output. The tests bound it relative to the output's
/// scale.</para>
/// <para><b>Channel-blocked regions.</b> On a CPU with AVX-512, a run of layers that starts with a convolution of whole
/// panels of 32 filters (2-d, one group, no dilation, horizontal stride 1 or 2) keeps its activations channel-blocked
/// (NCHWc, 16 channels of a pixel in one vector) between layers, as ONNX Runtime does: convolutions run a direct kernel
/// over buffers with a zero border as wide as the padding (no im2col, no transposed write-out), max pooling, dropout and
/// residual sums (the ReLU after them fused) stay blocked, and the region's output is copied back to NCHW for the layer
/// that follows it (flatten, global pooling). <see cref="BlockedConvolutions"/> counts the convolutions it takes. The
/// blocked convolution sums in the GEMM path's order (its depth blocks, then bias, then ReLU; a residual's shortcut added
/// after the bias and before the ReLU, as the sum layer adds it), and the pooling and sums are the NCHW kernels'
/// operations, so the blocked plan gives the bits of the plan without it: the statements above hold unchanged.</para>
/// <para><b>Allocation.</b> A warm call (one whose input shape the pooled caller it runs on has bound already: when calls
/// do not overlap, every call after the first of each shape) allocates exactly its output: one tensor object and its
/// array (the output's shape object is made at binding and shared by the calls). The
/// specialised steps are convolution (fused GEMM, per-image GEMM, depthwise) and dense layers with what they absorb, ReLU,
/// tanh, sigmoid, hard tanh (ReLU6), 2-d max and average pooling, global average pooling, flatten and reshape, dropout,
/// identity, auxiliary heads, and the sum, concatenation and product joins. Any other layer falls back to
/// <see cref="Apply"/>'s rule and allocates its output and its interpreter's bookkeeping on every call (the output from
/// the caller's arena, recycled after the call).</para>
/// <para><b>Memory.</b> Each concurrent caller (a pool of them, one per thread that has called at once) keeps the plan
/// bound to its last two input shapes, a batch size and a short last batch: about two forward passes' activations per
/// such thread. A third shape replaces the one used least recently.</para>
/// </remarks>
public sealed class InferenceModel
{
    private readonly Step _root;

    // Callers not in use; a lock rather than a concurrent collection, whose take and add allocate.
    private readonly Stack<InferenceCaller> _callers = new();

    private InferenceModel(Network network, Step root, int foldedBatchNorms, int fusedRelus, int fusedTanhAndSigmoids, int blockedConvolutions)
    {
        Network = network;
        _root = root;
        FoldedBatchNorms = foldedBatchNorms;
        FusedRelus = fusedRelus;
        FusedTanhAndSigmoids = fusedTanhAndSigmoids;
        BlockedConvolutions = blockedConvolutions;
    }

    /// <summary>The network this model was compiled from.</summary>
    public Network Network { get; }

    /// <summary>How many batch normalisations were folded into the convolution or dense layer before them.</summary>
    public int FoldedBatchNorms { get; }

    /// <summary>How many ReLUs were fused into the convolution or dense layer before them.</summary>
    public int FusedRelus { get; }

    /// <summary>How many tanh and sigmoid layers were applied in place by the convolution or dense layer before them.</summary>
    public int FusedTanhAndSigmoids { get; }

    /// <summary>How many convolutions run on the channel-blocked direct kernel (zero on a CPU without AVX-512).</summary>
    public int BlockedConvolutions { get; }

    /// <summary>Compiles <paramref name="network"/> with its parameters and state for repeated inference.</summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters (copied where folded or packed: later changes to them are not seen).</param>
    /// <param name="state">Its state (batch-norm running statistics); required when the network has any.</param>
    /// <exception cref="CnnException">A parameter or a state tensor is missing.</exception>
    public static InferenceModel Compile(Network network, Parameters parameters, Parameters? state = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        var st = state ?? Parameters.Empty;
        var missing = network.RootNode.Leaves().SelectMany(n => n.StateSpecs()).Select(s => s.Path).FirstOrDefault(p => !st.Contains(p));
        if (missing is not null)
            throw new CnnException($"The network has state ('{missing}', batch-norm running statistics): pass the state from Initializer.InitState or from training.");
        var absent = network.RootNode.Leaves().SelectMany(n => n.ParameterSpecs()).Select(s => s.Path).FirstOrDefault(p => !parameters.Contains(p));
        if (absent is not null) throw new CnnException($"InferenceModel.Compile: the parameter '{absent}' is missing.");
        var compiler = new PlanCompiler(parameters, st);
        var root = compiler.Compile(network.RootNode);
        return new InferenceModel(network, root, compiler.FoldedBatchNorms, compiler.FusedRelus, compiler.FusedOtherActivations, compiler.BlockedConvolutions);
    }

    /// <summary>
    /// The network's output for a batch <paramref name="x"/> in inference mode: <see cref="Apply.Forward"/>'s within float32
    /// rounding (see the remarks).
    /// </summary>
    /// <param name="x">The batch, <c>[N, ...input shape]</c>.</param>
    /// <returns>A tensor of its own (not from any arena, valid after later calls), <c>[N, ...output shape]</c>; when an arena
    /// is active on the calling thread, fallback steps allocate from it and the output is that arena's, as any kernel's.</returns>
    /// <exception cref="ShapeException">The batch's shape is not <c>[N, ...input shape]</c> with N at least 1.</exception>
    public Tensor Predict(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!FitsInput(x.Shape))
            throw new ShapeException($"Network input: expected a batch [N, {string.Join(", ", Network.InputShape)}] with N >= 1; found {x.Shape}.");
        InferenceCaller? caller;
        lock (_callers) _callers.TryPop(out caller);
        caller ??= new InferenceCaller();
        try
        {
            return caller.Predict(_root, x);
        }
        finally
        {
            lock (_callers) _callers.Push(caller);
        }
    }

    /// <summary>Whether <paramref name="x"/> is <c>[N, ...input shape]</c> with N at least 1 (checked without allocating).</summary>
    private bool FitsInput(Shape x)
    {
        var input = Network.InputShape;
        if (x.Rank != input.Rank + 1 || x[0] < 1) return false;
        for (int i = 0; i < input.Rank; i++)
            if (x[i + 1] != input[i]) return false;
        return true;
    }
}
