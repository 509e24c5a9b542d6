namespace Cnn.Dsl;

/// <summary>
/// A weight initialisation scheme. Fans come from the layer (<c>fan_in = C*k</c>, <c>fan_out = F*k</c> for a
/// convolution). Each scheme also says how biases start.
/// </summary>
public abstract record Init
{
    /// <summary>PyTorch's default for Conv and Linear: weights and biases uniform in <c>±1/sqrt(fan_in)</c>.</summary>
    public static Init PyTorch { get; } = new PyTorchDefault();

    /// <summary>Keras's default: Glorot (Xavier) uniform weights in <c>±sqrt(6/(fan_in+fan_out))</c>, zero biases.</summary>
    public static Init GlorotUniform { get; } = new Glorot();

    /// <summary>He (Kaiming) normal weights with standard deviation <c>sqrt(2/fan_in)</c>, zero biases: for ReLU networks.</summary>
    public static Init HeNormal { get; } = new He();

    /// <summary>Zero weights and biases.</summary>
    public static Init Zeros { get; } = new Constant();

    /// <summary>Normal weights with the given standard deviation (DCGAN uses 0.02), zero biases.</summary>
    public static Init Normal(float std) => new NormalStd(std);

    /// <summary>
    /// The scheme's name as network descriptions write it (<see cref="IO.NetworkJson"/>): <c>pytorch</c>,
    /// <c>glorot_uniform</c>, <c>he_normal</c>, <c>zeros</c> or <c>normal</c>.
    /// </summary>
    public abstract string Scheme { get; }

    /// <summary>The standard deviation of a <see cref="Normal"/> scheme; null for the other schemes.</summary>
    public virtual float? Std => null;

    /// <summary>Draws one weight.</summary>
    internal abstract float Weight(Random rng, int fanIn, int fanOut);

    /// <summary>Draws one bias.</summary>
    internal virtual float Bias(Random rng, int fanIn) => 0f;

    private sealed record PyTorchDefault : Init
    {
        public override string Scheme => "pytorch";
        internal override float Weight(Random rng, int fanIn, int fanOut) => Uniform(rng, 1 / Math.Sqrt(fanIn));
        internal override float Bias(Random rng, int fanIn) => Uniform(rng, 1 / Math.Sqrt(fanIn));
    }

    private sealed record Glorot : Init
    {
        public override string Scheme => "glorot_uniform";
        internal override float Weight(Random rng, int fanIn, int fanOut) => Uniform(rng, Math.Sqrt(6.0 / (fanIn + fanOut)));
    }

    private sealed record He : Init
    {
        public override string Scheme => "he_normal";
        internal override float Weight(Random rng, int fanIn, int fanOut) => (float)(Gaussian(rng) * Math.Sqrt(2.0 / fanIn));
    }

    private sealed record Constant : Init
    {
        public override string Scheme => "zeros";
        internal override float Weight(Random rng, int fanIn, int fanOut) => 0f;
    }

    private sealed record NormalStd(float Deviation) : Init
    {
        public override string Scheme => "normal";
        public override float? Std => Deviation;
        internal override float Weight(Random rng, int fanIn, int fanOut) => (float)(Gaussian(rng) * Deviation);
    }

    private static float Uniform(Random rng, double bound) => (float)((rng.NextDouble() * 2 - 1) * bound);

    /// <summary>Box–Muller: two uniforms to one standard normal.</summary>
    internal static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
