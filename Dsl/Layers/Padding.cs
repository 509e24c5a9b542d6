namespace Cnn.Dsl;

/// <summary>
/// How a convolution or pooling layer pads its input, for the convenience constructors (<c>new Conv2d(6, kernel: 5,
/// padding: Padding.Same)</c>, <c>MaxPool2d.Square(3, stride: 1, padding: Padding.Same)</c>); the F# surface's
/// <c>Padding</c> union means the same.
/// </summary>
/// <remarks>
/// <para><see cref="Same"/> pads <c>dilation * (kernel - 1) / 2</c> on each side. At stride 1 the output has the input's
/// size, exactly as PyTorch's <c>padding='same'</c> (a test compares the two with LibTorch). At stride s the output has
/// <c>ceil(size / s)</c> elements, as TensorFlow's 'same'; TensorFlow pads asymmetrically there (the extra row at the
/// bottom) where this pads symmetrically, so with an odd kernel the sizes agree and the windows are placed as PyTorch
/// places them. Layers pad symmetrically only, so <see cref="Same"/> with an even (dilated) kernel is an
/// <see cref="ArgumentException"/> when the layer is made.</para>
/// <para>The padding is resolved when the layer is made, not stored as a mode: it depends on the kernel and dilation only
/// (never on the input size), and the record then holds plain numbers that every interpreter (apply, ONNX, LibTorch,
/// JSON) already reads. So <c>new Conv2d(6, kernel: 5, padding: Padding.Same)</c> equals <c>new Conv2d(6, 5, 5, PadH: 2, PadW: 2)</c>.</para>
/// </remarks>
public sealed record Padding
{
    private Padding(bool same, int h, int w)
    {
        IsSame = same;
        H = h;
        W = w;
    }

    /// <summary>Whether this is <see cref="Same"/>.</summary>
    public bool IsSame { get; }

    /// <summary>Padding on top and bottom (0 for <see cref="Same"/>, which is resolved per layer).</summary>
    public int H { get; }

    /// <summary>Padding on left and right (0 for <see cref="Same"/>, which is resolved per layer).</summary>
    public int W { get; }

    /// <summary>No padding (PyTorch's <c>padding='valid'</c>, the default).</summary>
    public static Padding Valid { get; } = new(false, 0, 0);

    /// <summary>Keeps the size at stride 1: <c>dilation * (kernel - 1) / 2</c> on each side; odd kernels only.</summary>
    public static Padding Same { get; } = new(true, 0, 0);

    /// <summary><paramref name="pad"/> zeros on every side.</summary>
    /// <param name="pad">Padding on each side (at least 0).</param>
    /// <exception cref="ArgumentOutOfRangeException">The padding is negative.</exception>
    public static Padding Of(int pad) => Of(pad, pad);

    /// <summary><paramref name="h"/> rows on top and bottom, <paramref name="w"/> columns on left and right.</summary>
    /// <param name="h">Vertical padding on each side.</param>
    /// <param name="w">Horizontal padding on each side.</param>
    /// <exception cref="ArgumentOutOfRangeException">A padding is negative.</exception>
    public static Padding Of(int h, int w)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(h);
        ArgumentOutOfRangeException.ThrowIfNegative(w);
        return new Padding(false, h, w);
    }

    /// <summary>The padding on each side along one axis, for a kernel of <paramref name="kernel"/> taps spaced <paramref name="dilation"/> apart.</summary>
    /// <param name="kernel">Kernel taps along the axis.</param>
    /// <param name="dilation">Spacing of the taps.</param>
    /// <param name="axisPad">The explicit padding along the axis (<see cref="H"/> or <see cref="W"/>).</param>
    /// <param name="layer">The layer's type, for the error message.</param>
    /// <exception cref="ArgumentException"><see cref="Same"/> with an even dilated kernel.</exception>
    internal int Resolve(int kernel, int dilation, int axisPad, string layer)
    {
        if (!IsSame) return axisPad;
        int span = dilation * (kernel - 1);
        if (span % 2 != 0)
            throw new ArgumentException($"{layer}: Padding.Same needs an odd kernel (dilated extent {span + 1}); found kernel {kernel}, dilation {dilation}. Use Padding.Of.", "padding");
        return span / 2;
    }

    /// <inheritdoc />
    public override string ToString() => IsSame ? "Same" : H == 0 && W == 0 ? "Valid" : $"Of({H}, {W})";
}
