namespace Cnn.Core.Kernels;

/// <summary>
/// A convolution whose weights are fixed (inference): packed once for the GEMM's micro-kernel when it is made, instead of
/// once per call as <see cref="ConvKernel.Forward(Tensor, Tensor, Tensor?, ConvGeometry)"/> packs them, with the bias and
/// optionally a ReLU applied while each strip of the output is written (tanh or the sigmoid in place once the output is
/// complete). Immutable and safe to call from several threads.
/// </summary>
/// <remarks>
/// The output has the bits of <see cref="ConvKernel.Forward(Tensor, Tensor, Tensor?, ConvGeometry)"/> followed by the
/// activation's kernel (<see cref="Activations.Relu"/>, <see cref="Activations.Tanh"/>, <see cref="Activations.Sigmoid"/>):
/// the packing is the same, only done earlier, and the activation's element function is the same. Layers with few output
/// positions for their filters (ResNet's 7x7 stage) run <see cref="ChannelTileConv"/>, which sums in the GEMM's order.
/// </remarks>
public sealed class PackedConvolution
{
    private readonly Tensor _weight;
    private readonly Tensor? _bias;
    private readonly ConvGeometry _geometry;
    private readonly GemmInstructionSet _isa;
    private readonly float[]? _packed;
    /// <summary>The weights packed for <see cref="ChannelTileConv"/>, made by the first input shape that takes it (most take none).</summary>
    private readonly Lazy<(float[] Weights, float[]? Bias)>? _tiles;

    private PackedConvolution(Tensor weight, Tensor? bias, ConvGeometry geometry, FusedActivation activation)
    {
        _weight = weight;
        _bias = bias;
        _geometry = geometry;
        Activation = activation;
        _isa = Gemm.Resolve(GemmInstructionSet.Auto);
        _packed = ConvKernel.PackWeights(weight, geometry.Groups, _isa);
        int filters = weight.Shape[0];
        if (_isa == GemmInstructionSet.Vector512 && ChannelTileConv.Covers(geometry.Groups, filters))
            _tiles = new(() => ChannelTileConv.Pack(weight.Span, bias, filters));
    }

    /// <summary>Whether <c>max(y, 0)</c> is applied to the output.</summary>
    public bool Relu => Activation == FusedActivation.Relu;

    /// <summary>The activation applied to the output.</summary>
    public FusedActivation Activation { get; }

    /// <summary>Packs <paramref name="weight"/> for repeated calls of <see cref="Forward(Tensor)"/>.</summary>
    /// <param name="weight">Weight <c>[F, C/groups, kernel...]</c>.</param>
    /// <param name="bias">Bias <c>[F]</c>, or null.</param>
    /// <param name="geometry">The window and the number of groups.</param>
    /// <param name="relu">Apply <c>max(y, 0)</c> to the output as it is written.</param>
    /// <exception cref="ShapeException">The weight does not fit the window.</exception>
    public static PackedConvolution Create(Tensor weight, Tensor? bias, ConvGeometry geometry, bool relu = false) =>
        Create(weight, bias, geometry, relu ? FusedActivation.Relu : FusedActivation.None);

    /// <summary>Packs <paramref name="weight"/> for repeated calls of <see cref="Forward(Tensor)"/>, with an activation after it.</summary>
    /// <param name="weight">Weight <c>[F, C/groups, kernel...]</c>.</param>
    /// <param name="bias">Bias <c>[F]</c>, or null.</param>
    /// <param name="geometry">The window and the number of groups.</param>
    /// <param name="activation">The activation applied to the output.</param>
    /// <exception cref="ShapeException">The weight does not fit the window.</exception>
    public static PackedConvolution Create(Tensor weight, Tensor? bias, ConvGeometry geometry, FusedActivation activation)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(geometry);
        if (weight.Shape.Rank != geometry.Rank + 2 || weight.Shape[0] < 1 || weight.Shape[0] % geometry.Groups != 0)
            throw new ShapeException($"PackedConvolution: expected a weight [F, C/groups, {string.Join(", ", geometry.Kernel)}] with F a multiple of {geometry.Groups} groups; found {weight.Shape}.");
        return new PackedConvolution(weight, bias, geometry, activation);
    }

    /// <summary>y = conv(x, w) + b, then <see cref="Activation"/>.</summary>
    /// <param name="x">Input <c>[N, C, spatial...]</c>.</param>
    /// <exception cref="ShapeException">The input does not fit the weight or the window.</exception>
    public Tensor Forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var call = Bind(x.Shape);
        var y = TensorArena.Uninitialized<float>(call.OutputShape.Size);
        Forward(call, x, y);
        return Tensor.Own(y, call.OutputShape);
    }

    /// <summary>The forward pass bound to inputs of shape <paramref name="x"/> (an inference plan makes it once per shape).</summary>
    /// <exception cref="ShapeException">The input shape does not fit the weight or the window.</exception>
    internal ConvForward Bind(Shape x) => new(x, _weight, _bias, _geometry, _isa, Relu, _packed, _tiles);

    /// <summary><see cref="Forward(Tensor)"/> through <paramref name="call"/> (from <see cref="Bind"/>) into <paramref name="y"/>.</summary>
    internal void Forward(ConvForward call, Tensor x, float[] y)
    {
        call.Run(x, y);
        if (Activation is not (FusedActivation.None or FusedActivation.Relu)) Activation.ApplyInPlace(y);
    }
}
