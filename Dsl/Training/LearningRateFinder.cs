using Cnn.Core;
using Cnn.Dsl.Data;

namespace Cnn.Dsl;

/// <summary>Settings of a learning-rate sweep.</summary>
/// <param name="StartRate">The first rate tried.</param>
/// <param name="EndRate">The last rate tried (reached on the last step unless the loss diverges first).</param>
/// <param name="Steps">Mini-batches of the sweep; the rate grows by the same factor at every step.</param>
/// <param name="BatchSize">Samples per mini-batch.</param>
/// <param name="Smoothing">β of the exponential moving average of the loss (bias-corrected, as fastai): 0 smooths nothing. The
/// default 0.9 averages over about ten steps; fastai's 0.98 averages over about fifty, which in a sweep of a hundred steps
/// spans four decades of rate: it shifts the curve to higher rates and hides a divergence until long after it began.</param>
/// <param name="DivergeFactor">Stop once the smoothed loss exceeds this multiple of the best smoothed loss so far (or is not finite).</param>
/// <param name="Seed">Seeds the order of the mini-batches and the dropout masks.</param>
/// <param name="Loss">The loss (default: softmax cross-entropy).</param>
public sealed record LearningRateFinderOptions(float StartRate = 1e-7f, float EndRate = 10f, int Steps = 100, int BatchSize = 64,
    float Smoothing = 0.9f, float DivergeFactor = 4f, int Seed = 0, LossFunction? Loss = null);

/// <summary>One step of the sweep.</summary>
/// <param name="Step">1-based step.</param>
/// <param name="Rate">The learning rate of the step.</param>
/// <param name="Loss">The mini-batch loss before the step's update.</param>
/// <param name="SmoothedLoss">The bias-corrected moving average of the loss up to this step.</param>
public sealed record LearningRatePoint(int Step, float Rate, float Loss, float SmoothedLoss);

/// <summary>The loss-versus-rate curve and the suggested rate.</summary>
/// <param name="Curve">One point per step, in increasing rate.</param>
/// <param name="SuggestedRate">The rate of steepest descent of the smoothed loss (see <see cref="LearningRateFinder"/>).</param>
/// <param name="MinimumLossRate">The rate at the lowest smoothed loss.</param>
/// <param name="MinimumOverTen">A tenth of <paramref name="MinimumLossRate"/>: fastai's other rule of thumb, a more cautious choice.</param>
/// <param name="Diverged">True when the sweep stopped early because the loss diverged.</param>
public sealed record LearningRateFinderResult(IReadOnlyList<LearningRatePoint> Curve, float SuggestedRate, float MinimumLossRate, float MinimumOverTen, bool Diverged);

/// <summary>
/// The learning-rate range test (Smith, 2017; fastai's <c>lr_find</c>): train for a few mini-batches with the rate
/// growing exponentially from <see cref="LearningRateFinderOptions.StartRate"/> to
/// <see cref="LearningRateFinderOptions.EndRate"/>, record the loss, stop when it diverges. Pure: the parameters,
/// state and optimizer passed in are values and are never changed, so the sweep "restores the weights" by
/// construction — train afterwards from the same <c>initial</c>.
/// <para>
/// The suggestion is the rate at the steepest descent of the smoothed loss against log(rate) (the most negative
/// central difference), taken among the points before the smoothed loss's minimum, so the loss is still falling
/// fast there and the rate is well below the one at which training blows up. With a one-cycle schedule it is used
/// as the maximum rate. The rate at the minimum divided by ten is returned too.
/// </para>
/// </summary>
public static class LearningRateFinder
{
    /// <summary>Runs the sweep.</summary>
    /// <param name="network">The network.</param>
    /// <param name="initial">The parameters to start from (unchanged).</param>
    /// <param name="train">The training data; mini-batches are drawn from it in shuffled order, epoch after epoch.</param>
    /// <param name="optimizer">The update rule; its own rate is replaced by the sweep's.</param>
    /// <param name="options">Range, steps, batch size, smoothing and divergence threshold.</param>
    /// <param name="initialState">The network's state (default <see cref="Initializer.InitState"/>).</param>
    /// <param name="cancellation">Stops the sweep after the current step; the result holds the points so far.</param>
    /// <exception cref="CnnException">The options are out of range, or the data does not fit the network.</exception>
    public static LearningRateFinderResult Find(Network network, Parameters initial, LabeledData train, Optimizer optimizer,
        LearningRateFinderOptions? options = null, Parameters? initialState = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(initial);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(optimizer);
        var o = options ?? new LearningRateFinderOptions();
        if (!(o.StartRate > 0 && o.EndRate > o.StartRate && float.IsFinite(o.EndRate)))
            throw new CnnException($"The learning-rate sweep needs 0 < start < end; found {o.StartRate} and {o.EndRate}.");
        if (o.Steps < 2 || o.BatchSize < 1) throw new CnnException($"The learning-rate sweep needs steps >= 2 and batch size >= 1; found {o.Steps} and {o.BatchSize}.");
        if (o.Smoothing is < 0 or >= 1) throw new CnnException($"The smoothing β must be in [0, 1); found {o.Smoothing}.");
        if (!(o.DivergeFactor > 1)) throw new CnnException($"The divergence factor must be > 1; found {o.DivergeFactor}.");
        if (train.Images.Shape.DropBatch() != network.InputShape)
            throw new ShapeException($"The training data has samples of shape {train.Images.Shape.DropBatch()}; the network expects {network.InputShape}.");

        var loss = o.Loss ?? LossFunction.SoftmaxCrossEntropy;
        var trainable = Trainer.TrainablePaths(network);
        var p = initial;
        var netState = initialState ?? Initializer.InitState(network);
        var state = optimizer.Init(Parameters.Of(p.Entries.Where(kv => trainable.Contains(kv.Key))));
        int n = train.Count, batch = Math.Min(o.BatchSize, n), perEpoch = Math.Max(1, n / batch);
        double ratio = Math.Log((double)o.EndRate / o.StartRate) / (o.Steps - 1);
        var curve = new List<LearningRatePoint>(o.Steps);
        double avg = 0, best = double.PositiveInfinity;
        bool diverged = false;
        int[] order = Array.Empty<int>();
        for (int step = 1; step <= o.Steps && !cancellation.IsCancellationRequested; step++)
        {
            int epoch = (step - 1) / perEpoch + 1, b = (step - 1) % perEpoch;
            if (b == 0) order = Trainer.EpochOrder(n, o.Seed, epoch);
            var rows = order.AsSpan(b * batch, batch);
            var x = train.Images.Gather(rows);
            var y = new int[batch];
            for (int i = 0; i < batch; i++) y[i] = train.Labels[rows[i]];
            float rate = (float)(o.StartRate * Math.Exp(ratio * (step - 1)));
            var g = Loss.Gradient(network, p, x, y, loss, Mode.Train, netState, unchecked(o.Seed * 1_000_003 + step));
            avg = o.Smoothing * avg + (1 - o.Smoothing) * g.Loss;
            double smoothed = avg / (1 - Math.Pow(o.Smoothing, step));
            if (!double.IsFinite(smoothed) || !float.IsFinite(g.Loss))
            {
                diverged = true;
                break;
            }
            curve.Add(new LearningRatePoint(step, rate, g.Loss, (float)smoothed));
            if (step > 1 && smoothed > o.DivergeFactor * best)
            {
                diverged = true;
                break;
            }
            best = Math.Min(best, smoothed);
            var next = (optimizer with { LearningRate = rate }).Step(p, g.Gradients, state);
            (p, state, netState) = (next.Parameters, next.State, g.State);
        }
        if (curve.Count == 0) throw new CnnException("The learning-rate sweep produced no finite loss: check the data for NaN.");
        var (suggested, atMin) = Suggest(curve);
        return new LearningRateFinderResult(curve, suggested, atMin, atMin / 10f, diverged);
    }

    /// <summary>
    /// The suggestion from a curve: the rate of the most negative slope of the smoothed loss against log(rate)
    /// (central differences) among the points up to the smoothed loss's minimum, and the rate at that minimum.
    /// With fewer than three points before the minimum, the suggestion is a tenth of the minimum's rate.
    /// </summary>
    public static (float Suggested, float AtMinimum) Suggest(IReadOnlyList<LearningRatePoint> curve)
    {
        ArgumentNullException.ThrowIfNull(curve);
        if (curve.Count == 0) throw new CnnException("An empty learning-rate curve has no suggestion.");
        int min = 0;
        for (int i = 1; i < curve.Count; i++) if (curve[i].SmoothedLoss < curve[min].SmoothedLoss) min = i;
        float atMin = curve[min].Rate;
        if (min < 2) return (atMin / 10f, atMin);
        int steepest = -1;
        double slope = double.PositiveInfinity;
        for (int i = 1; i < min; i++)
        {
            double d = (curve[i + 1].SmoothedLoss - curve[i - 1].SmoothedLoss) / (Math.Log(curve[i + 1].Rate) - Math.Log(curve[i - 1].Rate));
            if (d < slope) (slope, steepest) = (d, i);
        }
        return steepest < 0 || !(slope < 0) ? (atMin / 10f, atMin) : (curve[steepest].Rate, atMin);
    }
}
