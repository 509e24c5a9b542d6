namespace Cnn.Dsl;

/// <summary>
/// A learning-rate schedule: the rate of every step as a pure function of the base rate, the step (1-based
/// optimizer step) and the epoch (1-based), so a resumed run follows the same curve.
/// </summary>
public abstract record Schedule
{
    private Schedule() { }

    /// <summary>The learning rate at an optimizer step.</summary>
    /// <param name="baseRate">The optimizer's configured rate.</param>
    /// <param name="step">1-based optimizer step.</param>
    /// <param name="epoch">1-based epoch.</param>
    /// <param name="stepsPerEpoch">Optimizer steps in one epoch.</param>
    /// <param name="epochs">Epochs of the whole run.</param>
    public abstract float Rate(float baseRate, long step, int epoch, int stepsPerEpoch, int epochs);

    /// <summary>
    /// The momentum (SGD's momentum, Adam's β1) at an optimizer step, for schedules that cycle it; null leaves the
    /// optimizer's own value.
    /// </summary>
    /// <param name="step">1-based optimizer step.</param>
    /// <param name="stepsPerEpoch">Optimizer steps in one epoch.</param>
    /// <param name="epochs">Epochs of the whole run.</param>
    public virtual float? Momentum(long step, int stepsPerEpoch, int epochs) => null;

    /// <summary>The base rate throughout.</summary>
    public static Schedule Constant { get; } = new ConstantRate();

    /// <summary>PyTorch's <c>StepLR</c>: the rate times <paramref name="gamma"/> every <paramref name="epochs"/> epochs.</summary>
    public static Schedule StepDecay(int epochs, float gamma) =>
        epochs >= 1 && gamma > 0 ? new StepRate(epochs, gamma) : throw new Core.CnnException($"A step schedule needs epochs >= 1 and gamma > 0; found {epochs} and {gamma}.");

    /// <summary>PyTorch's <c>ExponentialLR</c>: the rate times <paramref name="gamma"/> after every epoch.</summary>
    public static Schedule Exponential(float gamma) =>
        gamma > 0 ? new ExponentialRate(gamma) : throw new Core.CnnException($"An exponential schedule needs gamma > 0; found {gamma}.");

    /// <summary>Keras's legacy <c>decay</c>: <c>lr / (1 + decay * iterations)</c>, iterations counted from 0.</summary>
    public static Schedule KerasDecay(float decay) =>
        decay >= 0 ? new KerasRate(decay) : throw new Core.CnnException($"Keras decay must be >= 0; found {decay}.");

    /// <summary>
    /// One-cycle (Smith): a warm-up from <c>max/div</c> to the maximum over <paramref name="warmupFraction"/> of all steps,
    /// then cosine annealing to <c>max/(div*finalDiv)</c>, as fastai's and PyTorch's <c>OneCycleLR</c>. The optimizer's
    /// rate is the maximum. Momentum cycles the other way, as theirs does: from <paramref name="maxMomentum"/> down to
    /// <paramref name="minMomentum"/> while the rate rises, and back while it falls (SGD with momentum, and Adam's β1).
    /// </summary>
    public static Schedule OneCycle(float warmupFraction = 0.25f, float div = 25f, float finalDiv = 1e4f, float maxMomentum = 0.95f, float minMomentum = 0.85f) =>
        warmupFraction is > 0 and < 1 && div >= 1 && finalDiv >= 1 && minMomentum is >= 0 and < 1 && maxMomentum is >= 0 and < 1 && minMomentum <= maxMomentum
            ? new OneCycleRate(warmupFraction, div, finalDiv, maxMomentum, minMomentum)
            : throw new Core.CnnException($"One-cycle needs 0 < warm-up fraction < 1, divisors >= 1 and 0 <= min momentum <= max momentum < 1; found {warmupFraction}, {div}, {finalDiv}, {minMomentum}, {maxMomentum}.");

    /// <summary>
    /// The base rate, then a straight line down to zero over the last <paramref name="fraction"/> of the run's steps, as
    /// pix2pix and CycleGAN decay theirs over the second half: adversarial training oscillates at a constant rate, and
    /// the falling rate lets the last steps settle (measured on <c>cnn gan</c>: README, "Generative adversarial
    /// training"). A double, so that a fraction written in decimal (0.4) is the number the measured runs used.
    /// </summary>
    /// <param name="fraction">The share of all steps over which the rate falls, above 0 and at most 1 (1: from the first step).</param>
    /// <exception cref="Core.CnnException">The fraction is outside (0, 1].</exception>
    public static Schedule LinearDecay(double fraction) =>
        fraction is > 0 and <= 1 ? new LinearDecayRate(fraction) : throw new Core.CnnException($"A linear decay needs a fraction of the steps above 0 and at most 1; found {fraction}.");

    /// <summary>
    /// <paramref name="optimizer"/> with this schedule's rate at a step, times <paramref name="scale"/> (a plateau's
    /// reductions), and its momentum where the schedule cycles it.
    /// </summary>
    internal Optimizer At(Optimizer optimizer, long step, int epoch, int stepsPerEpoch, int epochs, float scale = 1f)
    {
        float rate = Rate(optimizer.LearningRate, step, epoch, stepsPerEpoch, epochs) * scale;
        return Momentum(step, stepsPerEpoch, epochs) is float momentum
            ? optimizer.WithMomentum(momentum) with { LearningRate = rate }
            : optimizer with { LearningRate = rate };
    }

    private sealed record ConstantRate : Schedule
    {
        public override float Rate(float baseRate, long step, int epoch, int stepsPerEpoch, int epochs) => baseRate;
    }

    private sealed record StepRate(int Every, float Gamma) : Schedule
    {
        public override float Rate(float baseRate, long step, int epoch, int stepsPerEpoch, int epochs) =>
            baseRate * MathF.Pow(Gamma, (epoch - 1) / Every);
    }

    private sealed record ExponentialRate(float Gamma) : Schedule
    {
        public override float Rate(float baseRate, long step, int epoch, int stepsPerEpoch, int epochs) =>
            baseRate * MathF.Pow(Gamma, epoch - 1);
    }

    private sealed record KerasRate(float Decay) : Schedule
    {
        public override float Rate(float baseRate, long step, int epoch, int stepsPerEpoch, int epochs) =>
            baseRate / (1f + Decay * (step - 1));
    }

    private sealed record LinearDecayRate(double Fraction) : Schedule
    {
        public override float Rate(float baseRate, long step, int epoch, int stepsPerEpoch, int epochs)
        {
            // How far through the run the step starts, 0 at the first step.
            double done = (step - 1) / (double)Math.Max(1, (long)stepsPerEpoch * epochs);
            return done < 1 - Fraction ? baseRate : (float)(baseRate * (Math.Max(0, 1 - done) / Fraction));
        }
    }

    private sealed record OneCycleRate(float Warmup, float Div, float FinalDiv, float MaxMomentum, float MinMomentum) : Schedule
    {
        public override float Rate(float baseRate, long step, int epoch, int stepsPerEpoch, int epochs)
        {
            double start = baseRate / Div, end = start / FinalDiv;
            var (rising, f) = Phase(step, stepsPerEpoch, epochs);
            return rising ? (float)(start + (baseRate - start) * (1 - Math.Cos(Math.PI * f)) / 2)
                : (float)(end + (baseRate - end) * (1 + Math.Cos(Math.PI * f)) / 2);
        }

        public override float? Momentum(long step, int stepsPerEpoch, int epochs)
        {
            var (rising, f) = Phase(step, stepsPerEpoch, epochs);
            return rising ? (float)(MaxMomentum - (MaxMomentum - MinMomentum) * (1 - Math.Cos(Math.PI * f)) / 2)
                : (float)(MaxMomentum - (MaxMomentum - MinMomentum) * (1 + Math.Cos(Math.PI * f)) / 2);
        }

        /// <summary>Whether the step is in the warm-up, and how far through its phase (0 to 1) it is.</summary>
        private (bool Rising, double Fraction) Phase(long step, int stepsPerEpoch, int epochs)
        {
            double total = Math.Max(2, (long)stepsPerEpoch * epochs), up = Math.Max(1, Math.Floor(Warmup * total)), t = step - 1;
            return t <= up ? (true, t / up) : (false, Math.Min(1, (t - up) / Math.Max(1, total - 1 - up)));
        }
    }
}
