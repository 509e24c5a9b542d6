using Cnn.Core;
using Cnn.Dsl;
using TorchSharp;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// The LibTorch interpreter of the DSL: walks the same resolved <see cref="Network"/> tree as
/// <see cref="Apply"/> and runs it with TorchSharp's functional operations on the same <see cref="Parameters"/> and state.
/// Gradients come from LibTorch's own autograd, end to end, so a comparison with <see cref="Loss"/> checks the
/// composition of our pullbacks as well as our kernels, against code that shares neither.
/// </summary>
/// <remarks>
/// <para>Mode, state and seed mean what they mean for <see cref="Apply"/>: layers under a <see cref="Freeze"/> run in
/// inference mode and get no gradient; batch norm in training normalises with the batch's statistics and returns the
/// running statistics updated as PyTorch updates them (<c>(1 - momentum) * running + momentum * batch</c>, the variance
/// unbiased).</para>
/// <para>Dropout in training is the one thing not left to LibTorch: its random generator cannot draw our masks, so
/// each dropout layer multiplies by the mask <see cref="Apply"/> draws for the same seed and layer path, converted to a
/// LibTorch tensor. The two backends then compute the same function and can be compared element by element; what is
/// checked for dropout is the multiplication and its gradient, not the random draw.</para>
/// <para>Every native tensor a call makes is disposed before it returns; results are copied into <see cref="Tensor"/>s.</para>
/// </remarks>
public static class TorchNetwork
{
    /// <summary>
    /// The network's output for a batch <paramref name="x"/> (batch first), computed by LibTorch. In training mode the
    /// state the pass would produce is not returned; <see cref="Gradient"/> and <see cref="Pullback"/> return it.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="x">The batch, <c>[N, ...input shape]</c>.</param>
    /// <param name="mode">Inference (default) or training.</param>
    /// <param name="state">The state (batch-norm running statistics); required when the network has any.</param>
    /// <param name="seed">Seeds the dropout masks of a training pass, as for <see cref="Apply.Forward"/>.</param>
    /// <exception cref="ShapeException">The batch or a parameter does not have the shape the network expects.</exception>
    /// <exception cref="CnnException">A parameter or state tensor is missing, a layer kind has no LibTorch rule, or LibTorch could not be loaded.</exception>
    public static Tensor Forward(Network network, Parameters parameters, Tensor x, Mode mode = Mode.Eval, Parameters? state = null, int seed = 0)
    {
        CheckArguments(network, parameters, x);
        var st = CheckState(network, state);
        LibTorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var p = ParametersToTorch(network, parameters, _ => false);
        var s = StateToTorch(network, st);
        var y = new TorchRun(p, s, mode, seed).Node(network.RootNode, TorchTensors.ToTorch(x));
        return TorchTensors.FromTorch(y);
    }

    /// <summary>
    /// The loss of the network on a labelled batch with the gradient of every trainable parameter and of the input, computed
    /// by LibTorch's autograd, and the state after the pass: the counterpart of <see cref="Loss.Gradient(Network, Parameters, Tensor, ReadOnlySpan{int}, LossFunction, Mode, Parameters?, int)"/>, which it
    /// mirrors argument for argument.
    /// </summary>
    /// <param name="network">The network; its output must be <c>[classes]</c> per sample.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="x">The batch, <c>[N, ...input shape]</c>.</param>
    /// <param name="labels">One class per sample.</param>
    /// <param name="loss">The loss: LibTorch's <c>cross_entropy</c>, <c>nll_loss</c> or <c>mse_loss</c> against one-hot labels, mean over the batch.</param>
    /// <param name="mode">Training (default) or inference.</param>
    /// <param name="state">The state (batch-norm running statistics); required when the network has any.</param>
    /// <param name="seed">Seeds the dropout masks of a training pass.</param>
    /// <returns>The loss, the output, the gradients of the parameters not under a <see cref="Freeze"/> by path, the input's gradient and the new state.</returns>
    /// <exception cref="ShapeException">The batch or a parameter does not have the shape the network expects, or the output is not <c>[N, classes]</c>.</exception>
    /// <exception cref="CnnException">The label count differs from the batch, a label is outside [0, classes), a parameter or state tensor is missing,
    /// a layer kind has no LibTorch rule, or LibTorch could not be loaded.</exception>
    public static GradientResult Gradient(Network network, Parameters parameters, Tensor x, IReadOnlyList<int> labels, LossFunction loss,
        Mode mode = Mode.Train, Parameters? state = null, int seed = 0) =>
        LabelledGradient(network, parameters, x, labels, loss, mode, state, seed, float64: false);

    /// <summary>
    /// <see cref="Gradient"/> computed by LibTorch in float64 from the same float32 values (parameters, state and batch
    /// widened exactly), the results rounded to float32 once at the end. A reference for rounding: a float32 engine's
    /// distance from it is that engine's own rounding, so two float32 engines can be judged each against the same truth
    /// rather than against each other (a sum with heavy cancellation, such as a batch-norm bias gradient, differs between
    /// any two float32 summation orders by far more than its size suggests).
    /// </summary>
    /// <exception cref="ShapeException">As for <see cref="Gradient"/>.</exception>
    /// <exception cref="CnnException">As for <see cref="Gradient"/>.</exception>
    public static GradientResult GradientInFloat64(Network network, Parameters parameters, Tensor x, IReadOnlyList<int> labels, LossFunction loss,
        Mode mode = Mode.Train, Parameters? state = null, int seed = 0) =>
        LabelledGradient(network, parameters, x, labels, loss, mode, state, seed, float64: true);

    private static GradientResult LabelledGradient(Network network, Parameters parameters, Tensor x, IReadOnlyList<int> labels, LossFunction loss,
        Mode mode, Parameters? state, int seed, bool float64)
    {
        CheckArguments(network, parameters, x);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(loss);
        var targets = CheckLabels(network, x, labels, loss);
        return Differentiate(network, parameters, x, mode, state, seed,
            (output, heads) => TotalLossOf(output, heads, o => LossOf(o, targets, loss, network.OutputShape[0])), float64);
    }

    /// <summary>
    /// The vector-Jacobian product of the network at a batch, by LibTorch's autograd: the gradients of every trainable
    /// parameter and of the input for a given gradient of the output, the counterpart of <see cref="ForwardResult.Pullback(Tensor)"/>.
    /// For networks whose output is not a vector of class scores (a generator's image), where no labelled loss applies.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="x">The batch, <c>[N, ...input shape]</c>.</param>
    /// <param name="outputGradient">dL/dOutput, the output's shape.</param>
    /// <param name="mode">Inference (default, as <see cref="Apply.WithPullback"/>) or training.</param>
    /// <param name="state">The state (batch-norm running statistics); required when the network has any.</param>
    /// <param name="seed">Seeds the dropout masks of a training pass.</param>
    /// <returns>As <see cref="Gradient"/>, with <see cref="GradientResult.Loss"/> the inner product of the output and
    /// <paramref name="outputGradient"/>: the scalar whose gradient this is.</returns>
    /// <exception cref="ShapeException">The batch, a parameter or the output gradient does not have the expected shape.</exception>
    /// <exception cref="CnnException">A parameter or state tensor is missing, a layer kind has no LibTorch rule, or LibTorch could not be loaded.</exception>
    public static GradientResult Pullback(Network network, Parameters parameters, Tensor x, Tensor outputGradient,
        Mode mode = Mode.Eval, Parameters? state = null, int seed = 0)
    {
        CheckArguments(network, parameters, x);
        ArgumentNullException.ThrowIfNull(outputGradient);
        var expected = network.OutputShape.PrependBatch(x.Shape[0]);
        if (outputGradient.Shape != expected)
            throw new ShapeException($"Pullback: expected an output gradient of shape {expected}; found {outputGradient.Shape}.");
        return Differentiate(network, parameters, x, mode, state, seed, (output, _) => (output * TorchTensors.ToTorch(outputGradient)).sum());
    }

    /// <summary>
    /// Softmax cross-entropy (mean over the batch) of the network's logits against integer labels, with the gradient of
    /// every trainable parameter and of the input: <see cref="Gradient"/> with <see cref="LossFunction.SoftmaxCrossEntropy"/>,
    /// less the state (use <see cref="Gradient"/> for a network with batch norm in training).
    /// </summary>
    /// <exception cref="ShapeException">The batch or a parameter does not have the shape the network expects, or the output is not <c>[N, classes]</c>.</exception>
    /// <exception cref="CnnException">The label count differs from the batch, a label is outside [0, classes), a parameter is missing,
    /// a layer kind has no LibTorch rule, or LibTorch could not be loaded.</exception>
    public static TorchGradientResult SoftmaxCrossEntropy(Network network, Parameters parameters, Tensor x, IReadOnlyList<int> labels,
        Mode mode = Mode.Train, Parameters? state = null, int seed = 0)
    {
        var r = Gradient(network, parameters, x, labels, LossFunction.SoftmaxCrossEntropy, mode, state, seed);
        return new TorchGradientResult(r.Loss, r.Output, r.Gradients, r.InputGradient);
    }

    /// <summary>
    /// Runs the network on TorchSharp tensors, with parameters and state given as TorchSharp tensors by path. The result is
    /// recorded by autograd when the inputs require gradients. In training, batch norm updates the running statistics in
    /// <paramref name="state"/> in place, as PyTorch's <c>batch_norm</c> does. Nothing is disposed here: run it inside a
    /// <c>torch.NewDisposeScope()</c>.
    /// </summary>
    /// <param name="network">The resolved network.</param>
    /// <param name="parameters">The parameters by path (<c>conv1/weight</c>), as float32 TorchSharp tensors.</param>
    /// <param name="x">A batch <c>[N, ...input shape]</c>.</param>
    /// <param name="mode">Inference (default) or training.</param>
    /// <param name="state">The state tensors by path (<c>bn1/running_mean</c>); needed only when the network has batch norm.</param>
    /// <param name="seed">Seeds the dropout masks of a training pass.</param>
    /// <exception cref="CnnException">A parameter or state tensor is missing, or a layer kind has no LibTorch rule; the message names the layer's path and type.</exception>
    public static TorchTensor ForwardTorch(Network network, IReadOnlyDictionary<string, TorchTensor> parameters, TorchTensor x,
        Mode mode = Mode.Eval, IReadOnlyDictionary<string, TorchTensor>? state = null, int seed = 0) =>
        ForwardTorchWithHeads(network, parameters, x, mode, state, seed).Output;

    /// <summary>
    /// <see cref="ForwardTorch"/> with the outputs of the auxiliary heads (<see cref="AuxiliaryHead"/>) that a training-mode
    /// pass computes, each with its loss weight, in execution order; none in inference. Run it inside a dispose scope.
    /// </summary>
    /// <exception cref="CnnException">As for <see cref="ForwardTorch"/>.</exception>
    public static TorchForward ForwardTorchWithHeads(Network network, IReadOnlyDictionary<string, TorchTensor> parameters, TorchTensor x,
        Mode mode = Mode.Eval, IReadOnlyDictionary<string, TorchTensor>? state = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(x);
        LibTorchRuntime.EnsureLoaded();
        var run = new TorchRun(parameters, state ?? new Dictionary<string, TorchTensor>(), mode, seed);
        var output = run.Node(network.RootNode, x);
        return new TorchForward(output, run.Heads.Select(h => new TorchHeadOutput(h.Weight, h.Output)).ToArray());
    }

    private static GradientResult Differentiate(Network network, Parameters parameters, Tensor x, Mode mode, Parameters? state, int seed,
        Func<TorchTensor, IReadOnlyList<(float Weight, TorchTensor Output)>, TorchTensor> scalar, bool float64 = false)
    {
        var st = CheckState(network, state);
        LibTorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        var trainable = Trainable(network);
        var p = ParametersToTorch(network, parameters, trainable.Contains, float64);
        var s = StateToTorch(network, st, float64);
        var input = Leaf(x, requiresGrad: true, float64);
        var run = new TorchRun(p, s, mode, seed);
        var output = run.Node(network.RootNode, input);
        var loss = scalar(output, run.Heads);
        loss.backward();
        var gradients = Parameters.Of(p.Where(kv => trainable.Contains(kv.Key)).Select(kv => KeyValuePair.Create(kv.Key, GradientOf(kv.Value))));
        var newState = Parameters.Of(st.Entries.Select(kv => KeyValuePair.Create(kv.Key, s.TryGetValue(kv.Key, out var t) ? TorchTensors.FromTorch(t) : kv.Value)));
        return new GradientResult(loss.to_type(torch.ScalarType.Float32).item<float>(), TorchTensors.FromTorch(output), gradients, GradientOf(input), newState);
    }

    /// <summary>
    /// The main output's loss plus each auxiliary head's, times its weight, summed in that order as <see cref="TotalLoss"/>
    /// sums them (torchvision's <c>loss + 0.3 * aux1 + 0.3 * aux2</c>).
    /// </summary>
    internal static TorchTensor TotalLossOf(TorchTensor output, IReadOnlyList<(float Weight, TorchTensor Output)> heads, Func<TorchTensor, TorchTensor> lossOf)
    {
        var total = lossOf(output);
        foreach (var (weight, head) in heads) total = total + weight * lossOf(head);
        return total;
    }

    /// <summary>The mean loss of <paramref name="output"/> against class <paramref name="targets"/>, on the output's device.</summary>
    internal static TorchTensor LossOf(TorchTensor output, long[] targets, LossFunction loss, int classes)
    {
        var t = torch.tensor(targets, device: output.device);
        if (loss.Equals(LossFunction.SoftmaxCrossEntropy)) return cross_entropy(output, t, reduction: torch.nn.Reduction.Mean);
        if (loss.LabelSmoothing > 0) return cross_entropy(output, t, reduction: torch.nn.Reduction.Mean, label_smoothing: loss.LabelSmoothing);
        if (loss.Equals(LossFunction.NegativeLogLikelihood)) return nll_loss(output, t, reduction: torch.nn.Reduction.Mean);
        if (loss.Equals(LossFunction.MeanSquaredError)) return mse_loss(output, one_hot(t, classes).to_type(output.dtype), torch.nn.Reduction.Mean);
        throw new CnnException($"The LibTorch interpreter has no rule for the loss '{loss}'.");
    }

    /// <summary>The labels as LibTorch's class targets, after checking that they fit the batch and the network's classes.</summary>
    internal static long[] CheckLabels(Network network, Tensor x, IReadOnlyList<int> labels, LossFunction loss)
    {
        if (network.OutputShape.Rank != 1)
            throw new ShapeException($"{Capitalised(loss)}: expected the network to output [classes] per sample; it outputs {network.OutputShape}.");
        int n = x.Shape[0], classes = network.OutputShape[0];
        if (labels.Count != n)
            throw new CnnException($"{Capitalised(loss)}: expected {n} labels (one per sample of the batch {x.Shape}); found {labels.Count}.");
        var targets = new long[n];
        for (int i = 0; i < n; i++)
        {
            if ((uint)labels[i] >= (uint)classes)
                throw new CnnException($"{Capitalised(loss)}: label {labels[i]} at batch row {i} is outside [0, {classes}).");
            targets[i] = labels[i];
        }
        return targets;
    }

    private static string Capitalised(LossFunction loss)
    {
        var s = loss.ToString();
        return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
    }

    /// <summary>The paths of parameters that get gradients: those of leaves not under a <see cref="Freeze"/>.</summary>
    private static HashSet<string> Trainable(Network network) =>
        network.RootNode.Leaves().Where(l => !l.Frozen).SelectMany(l => l.ParameterSpecs()).Select(s => s.Path).ToHashSet(StringComparer.Ordinal);

    /// <summary>The parameters the network declares, as TorchSharp tensors (registered in the caller's dispose scope).</summary>
    /// <summary>A tensor as an autograd leaf, widened to float64 (exactly) when asked.</summary>
    private static TorchTensor Leaf(Tensor value, bool requiresGrad, bool float64)
    {
        if (!float64) return TorchTensors.ToTorch(value, requiresGrad);
        var t = TorchTensors.ToTorch(value).to_type(torch.ScalarType.Float64);
        if (requiresGrad) t.requires_grad_(true);
        return t;
    }

    private static Dictionary<string, TorchTensor> ParametersToTorch(Network network, Parameters parameters, Func<string, bool> requiresGrad, bool float64 = false)
    {
        var result = new Dictionary<string, TorchTensor>(StringComparer.Ordinal);
        foreach (var (path, spec) in network.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()))
        {
            var value = parameters[path];
            if (value.Shape != spec.Shape)
                throw new ShapeException($"Parameter '{path}': expected shape {spec.Shape}; found {value.Shape}.");
            result.Add(path, Leaf(value, requiresGrad(path), float64));
        }
        return result;
    }

    /// <summary>Copies of the state tensors the network declares, which batch norm in training updates in place.</summary>
    private static Dictionary<string, TorchTensor> StateToTorch(Network network, Parameters state, bool float64 = false)
    {
        var result = new Dictionary<string, TorchTensor>(StringComparer.Ordinal);
        foreach (var (path, spec) in network.RootNode.Leaves().SelectMany(l => l.StateSpecs()))
        {
            var value = state[path];
            if (value.Shape != spec.Shape)
                throw new ShapeException($"State '{path}': expected shape {spec.Shape}; found {value.Shape}.");
            result.Add(path, Leaf(value, requiresGrad: false, float64));
        }
        return result;
    }

    /// <summary>The state, or an error as <see cref="Apply"/> gives when the network has state and none was passed.</summary>
    private static Parameters CheckState(Network network, Parameters? state)
    {
        var st = state ?? Parameters.Empty;
        var missing = network.RootNode.Leaves().SelectMany(n => n.StateSpecs()).Select(s => s.Path).FirstOrDefault(p => !st.Contains(p));
        if (missing is not null)
            throw new CnnException($"The network has state ('{missing}', batch-norm running statistics): pass the state from Initializer.InitState or from training.");
        return st;
    }

    private static Tensor GradientOf(TorchTensor leaf)
    {
        var grad = leaf.grad;
        // A leaf that did not reach the loss gets no gradient from autograd; its gradient is zero.
        return grad is null ? Tensor.Zeros(new Shape(leaf.shape.Select(d => (int)d).ToArray())) : TorchTensors.FromTorch(grad);
    }

    private static void CheckArguments(Network network, Parameters parameters, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(x);
        if (x.Shape.Rank != network.InputShape.Rank + 1 || x.Shape.DropBatch() != network.InputShape)
            throw new ShapeException($"Network input: expected a batch [N, {string.Join(", ", network.InputShape)}]; found {x.Shape}.");
        if (x.Shape[0] < 1) throw new ShapeException($"Network input: the batch is empty ({x.Shape}).");
    }
}
