using Cnn.Core;
using Cnn.Dsl.Data;

namespace Cnn.Dsl;

/// <summary>The evaluation pass of <see cref="Trainer"/>: loss and accuracy on labelled data through the compiled inference model.</summary>
public static partial class Trainer
{
    /// <summary>
    /// Mean loss and accuracy of the network (inference mode, compiled once by <see cref="InferenceModel"/>) on a data set, in
    /// batches. Both are the main output's: auxiliary heads are training devices, the identity in inference.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="data">The labelled data.</param>
    /// <param name="batchSize">Samples per forward pass.</param>
    /// <param name="state">The network's state, when it has any (batch-norm running statistics).</param>
    /// <param name="loss">The loss to report (default: softmax cross-entropy).</param>
    public static Evaluation Evaluate(Network network, Parameters parameters, LabeledData data, int batchSize = 256, Parameters? state = null, LossFunction? loss = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        return EvaluateSource(network, parameters, SampleSource.Of(data), batchSize, state, loss ?? LossFunction.SoftmaxCrossEntropy, null);
    }

    private static Evaluation EvaluateSource(Network network, Parameters parameters, SampleSource data, int batchSize, Parameters? state,
        LossFunction loss, Normalization? normalize)
    {
        CheckFits(network, data, loss, "evaluation data");
        var options = new PipelineOptions(Normalize: normalize);
        options.Check(data.SampleShape);
        double lossSum = 0;
        long correct = 0;
        var model = InferenceModel.Compile(network, parameters, state);
        for (int start = 0; start < data.Count; start += batchSize)
        {
            int count = Math.Min(batchSize, data.Count - start);
            var rows = new int[count];
            for (int i = 0; i < count; i++) rows[i] = start + i;
            var (x, y, t) = BatchPipeline.Assemble(data, rows, options, 0);
            // Nothing of a batch's forward pass outlives it: its arrays are recycled for the next batch.
            var arena = OwnArena;
            try
            {
                using var scope = arena?.Activate();
                var logits = model.Predict(x);
                lossSum += (t is null ? loss.Compute(logits, y) : loss.Compute(logits, t)).Value * count;
                if (t is null) correct += CountCorrect(logits, y);
            }
            finally
            {
                arena?.Recycle();
            }
        }
        return new Evaluation((float)(lossSum / Math.Max(1, data.Count)), data.TargetShape is null ? (float)correct / Math.Max(1, data.Count) : float.NaN, data.Count);
    }

    /// <summary>The arg-max class of each row of <c>[N, K]</c> scores (the first maximum on ties).</summary>
    public static int[] ArgMax(Tensor scores)
    {
        if (scores.Shape.Rank != 2) throw new ShapeException($"ArgMax: expected [N, K] scores; found {scores.Shape}.");
        int n = scores.Shape[0], k = scores.Shape[1];
        var r = new int[n];
        for (int i = 0; i < n; i++) r[i] = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(scores.Span.Slice(i * k, k));
        return r;
    }

    private static long CountCorrect(Tensor logits, ReadOnlySpan<int> labels)
    {
        var pred = ArgMax(logits);
        long c = 0;
        for (int i = 0; i < pred.Length; i++) if (pred[i] == labels[i]) c++;
        return c;
    }
}
