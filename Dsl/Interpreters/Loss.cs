using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>
/// A loss over a batch of integer class labels or of float targets (<see cref="Data.TargetData"/>), as a value (a
/// closed choice: use the static members). Every loss is averaged over the batch, as PyTorch's <c>reduction='mean'</c>.
/// </summary>
public abstract partial record LossFunction
{
    private LossFunction() { }

    /// <summary>Softmax cross-entropy on logits (PyTorch's <c>cross_entropy</c>; Keras's sparse categorical cross-entropy from logits).</summary>
    public static LossFunction SoftmaxCrossEntropy { get; } = new CrossEntropy();

    /// <summary>Negative log-likelihood on log-probabilities (a network ending in <see cref="LogSoftmax"/>), PyTorch's <c>nll_loss</c>.</summary>
    public static LossFunction NegativeLogLikelihood { get; } = new Nll();

    /// <summary>
    /// Mean squared error between the output and the one-hot encoding of the labels (the textbook's classification with
    /// MSE), or the float targets (regression), over every element, as PyTorch's <c>mse_loss</c>.
    /// </summary>
    public static LossFunction MeanSquaredError { get; } = new Mse();

    /// <summary>
    /// Softmax cross-entropy against labels smoothed towards the uniform distribution: the target of a row is
    /// <c>1 - smoothing + smoothing / K</c> at its label and <c>smoothing / K</c> elsewhere (Szegedy et al., 2016), as PyTorch's
    /// <c>cross_entropy(..., label_smoothing=smoothing)</c>. It keeps the logits from growing without bound on labels the network
    /// already gets right.
    /// </summary>
    /// <param name="smoothing">The probability mass spread over all K classes, from 0 (<see cref="SoftmaxCrossEntropy"/> itself) up to but not including 1; 0.1 is usual.</param>
    /// <exception cref="CnnException">The smoothing is outside [0, 1).</exception>
    public static LossFunction SoftmaxCrossEntropyWithLabelSmoothing(float smoothing) =>
        smoothing == 0f ? SoftmaxCrossEntropy
        : smoothing is > 0f and < 1f ? new SmoothedCrossEntropy(smoothing)
            : throw new CnnException($"Label smoothing is from 0 up to but not including 1 (0.1 is usual); found {smoothing}.");

    /// <summary>The label smoothing of softmax cross-entropy (0 for every other loss and for plain cross-entropy).</summary>
    public virtual float LabelSmoothing => 0f;

    /// <summary>The loss of <paramref name="output"/> against <paramref name="labels"/>, and its gradient.</summary>
    public abstract LossResult Compute(Tensor output, ReadOnlySpan<int> labels);

    private sealed record CrossEntropy : LossFunction
    {
        public override LossResult Compute(Tensor output, ReadOnlySpan<int> labels) => Losses.SoftmaxCrossEntropy(output, labels);

        public override string ToString() => "softmax cross-entropy";
    }

    private sealed record SmoothedCrossEntropy(float Smoothing) : LossFunction
    {
        public override float LabelSmoothing => Smoothing;

        public override LossResult Compute(Tensor output, ReadOnlySpan<int> labels)
        {
            const string op = "Softmax cross-entropy with label smoothing";
            if (output.Shape.Rank != 2) throw new ShapeException($"{op}: expected [N, K] logits; found {output.Shape}.");
            int n = output.Shape[0], k = output.Shape[1];
            if (labels.Length != n) throw new CnnException($"{op}: expected {n} labels (one per row of logits {output.Shape}); found {labels.Length}.");
            // PyTorch's targets, formed in float: smoothing / K everywhere, plus 1 - smoothing at the label.
            float off = Smoothing / k, on = 1f - Smoothing + off;
            var targets = new float[n * k];
            Array.Fill(targets, off);
            for (int i = 0; i < n; i++)
            {
                if ((uint)labels[i] >= (uint)k) throw new CnnException($"{op}: label {labels[i]} at batch row {i} is outside [0, {k}).");
                targets[i * k + labels[i]] = on;
            }
            return Losses.SoftmaxCrossEntropy(output, Tensor.Own(targets, output.Shape));
        }

        public override string ToString() => $"softmax cross-entropy with label smoothing {Smoothing.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
    }

    private sealed record Nll : LossFunction
    {
        public override LossResult Compute(Tensor output, ReadOnlySpan<int> labels) => Losses.NegativeLogLikelihood(output, labels);

        public override string ToString() => "negative log-likelihood";
    }

    private sealed record Mse : LossFunction
    {
        public override LossResult Compute(Tensor output, ReadOnlySpan<int> labels)
        {
            if (output.Shape.Rank != 2) throw new ShapeException($"Mean squared error on labels: expected [N, K] outputs; found {output.Shape}.");
            int n = output.Shape[0], k = output.Shape[1];
            if (labels.Length != n) throw new CnnException($"Mean squared error: expected {n} labels; found {labels.Length}.");
            var onehot = new float[n * k];
            for (int i = 0; i < n; i++)
            {
                if ((uint)labels[i] >= (uint)k) throw new CnnException($"Mean squared error: label {labels[i]} at batch row {i} is outside [0, {k}).");
                onehot[i * k + labels[i]] = 1f;
            }
            return Losses.MeanSquaredError(output, Tensor.Own(onehot, output.Shape));
        }

        public override LossResult Compute(Tensor output, Tensor targets) => Losses.MeanSquaredError(output, targets);

        public override string ToString() => "mean squared error";
    }
}

/// <summary>The loss of a batch, the network's output, the gradients, and the state after the pass.</summary>
/// <param name="Loss">The mean loss over the batch (in training, the total over the main output and the auxiliary heads).</param>
/// <param name="Output">The network's (main) output.</param>
/// <param name="Gradients">dLoss/dParameter for every trainable parameter, by path.</param>
/// <param name="InputGradient">dLoss/dInput.</param>
/// <param name="State">The state after the pass (updated running statistics in training mode).</param>
public sealed record GradientResult(float Loss, Tensor Output, Parameters Gradients, Tensor InputGradient, Parameters State);

/// <summary>Loss and gradient of a network on a labelled batch.</summary>
public static partial class Loss
{
    /// <summary>
    /// The loss of the network on a batch and the gradient of every trainable parameter; in training mode, the total loss
    /// of a network with auxiliary heads (<see cref="TotalLoss"/>).
    /// </summary>
    /// <exception cref="CnnException">A label is outside [0, classes), or the label count differs from the batch.</exception>
    public static GradientResult Gradient(Network network, Parameters parameters, Tensor x, ReadOnlySpan<int> labels, LossFunction loss,
        Mode mode = Mode.Train, Parameters? state = null, int seed = 0)
    {
        var fwd = Apply.WithPullback(network, parameters, x, mode, state, seed);
        var l = TotalLoss.Of(fwd, loss, labels);
        var pulled = l.Pullback(fwd);
        return new GradientResult(l.Value, fwd.Output, pulled.Parameters, pulled.Input, fwd.State);
    }

    /// <summary>Softmax cross-entropy of the network's logits against integer labels, with every trainable parameter's gradient.</summary>
    /// <exception cref="CnnException">A label is outside [0, classes), or the label count differs from the batch.</exception>
    public static GradientResult SoftmaxCrossEntropy(Network network, Parameters parameters, Tensor x, ReadOnlySpan<int> labels,
        Mode mode = Mode.Train, Parameters? state = null, int seed = 0) =>
        Gradient(network, parameters, x, labels, LossFunction.SoftmaxCrossEntropy, mode, state, seed);
}
