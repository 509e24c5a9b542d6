namespace Cnn.Core.Kernels;

/// <summary>
/// The window of a convolution or pooling over 1, 2 or 3 spatial axes (in the order of the input's trailing axes:
/// L; H, W; or D, H, W): kernel, stride, zero padding before and after each axis, dilation, and the number of groups.
/// Value equality compares the arrays element by element. Treat the arrays as read-only:
/// <see cref="Create"/> copies what it is given.
/// </summary>
/// <param name="Kernel">Kernel size along each spatial axis.</param>
/// <param name="Stride">Stride along each spatial axis.</param>
/// <param name="PadBegin">Zero padding before the first element of each spatial axis (top, left, front).</param>
/// <param name="PadEnd">Zero padding after the last element of each spatial axis (bottom, right, back).</param>
/// <param name="Dilation">Spacing between kernel taps along each spatial axis (1: adjacent).</param>
/// <param name="Groups">Channel groups of a convolution (1: dense; the channel count: depthwise). Pooling ignores it.</param>
public sealed record ConvGeometry(int[] Kernel, int[] Stride, int[] PadBegin, int[] PadEnd, int[] Dilation, int Groups)
{
    /// <summary>The number of spatial axes (1, 2 or 3).</summary>
    public int Rank => Kernel.Length;

    /// <summary>The number of kernel taps, the product of <see cref="Kernel"/>.</summary>
    public int KernelSize
    {
        get
        {
            int k = 1;
            foreach (var v in Kernel) k *= v;
            return k;
        }
    }

    /// <summary>
    /// Whether padding is the same before and after every axis (<see cref="PadBegin"/> equals <see cref="PadEnd"/>),
    /// as PyTorch's and ONNX's symmetric <c>padding</c> arguments give.
    /// </summary>
    public bool SymmetricPadding => PadBegin.AsSpan().SequenceEqual(PadEnd);

    /// <summary>
    /// Whether this is a 1x1 (all-ones kernel), stride-1, unpadded window: then a convolution's input is its own
    /// column matrix. Dilation does not matter, since a one-tap kernel has no spacing to dilate.
    /// </summary>
    public bool IsPointwise
    {
        get
        {
            for (int a = 0; a < Rank; a++)
                if (Kernel[a] != 1 || Stride[a] != 1 || PadBegin[a] != 0 || PadEnd[a] != 0) return false;
            return true;
        }
    }

    /// <summary>
    /// A validated geometry with copies of the given arrays. Stride and dilation default to 1 and padding to 0 on every axis.
    /// </summary>
    /// <param name="kernel">Kernel size per spatial axis; 1 to 3 axes, each at least 1.</param>
    /// <param name="stride">Stride per axis, each at least 1; null for all ones.</param>
    /// <param name="padBegin">Padding before each axis, each at least 0; null for zeros.</param>
    /// <param name="padEnd">Padding after each axis, each at least 0; null for zeros.</param>
    /// <param name="dilation">Dilation per axis, each at least 1; null for all ones.</param>
    /// <param name="groups">Channel groups, at least 1.</param>
    /// <exception cref="ShapeException">An array has the wrong length or a value is out of range.</exception>
    public static ConvGeometry Create(IReadOnlyList<int> kernel, IReadOnlyList<int>? stride = null, IReadOnlyList<int>? padBegin = null,
        IReadOnlyList<int>? padEnd = null, IReadOnlyList<int>? dilation = null, int groups = 1)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        int rank = kernel.Count;
        var g = new ConvGeometry(kernel.ToArray(), Axis(stride, rank, 1), Axis(padBegin, rank, 0), Axis(padEnd, rank, 0), Axis(dilation, rank, 1), groups);
        g.Validate("ConvGeometry");
        return g;
    }

    /// <summary>The geometry of a 2-d window: kernel, stride and symmetric padding, undilated, one group.</summary>
    public static ConvGeometry From(Window2d w) => Create(
        new[] { w.KernelH, w.KernelW }, new[] { w.StrideH, w.StrideW }, new[] { w.PadH, w.PadW }, new[] { w.PadH, w.PadW });

    /// <summary>
    /// The output size along each spatial axis: <c>(in + padBegin + padEnd - dilation*(k-1) - 1)/stride + 1</c>, floored.
    /// </summary>
    /// <param name="inputSpatial">The input's spatial sizes, one per axis of this geometry.</param>
    /// <exception cref="ShapeException">The number of axes differs, or the padded input is smaller than the dilated kernel on some axis.</exception>
    public int[] OutputSize(IReadOnlyList<int> inputSpatial) => OutputSize(inputSpatial, "Convolution");

    internal int[] OutputSize(IReadOnlyList<int> inputSpatial, string op)
    {
        ArgumentNullException.ThrowIfNull(inputSpatial);
        Validate(op);
        if (inputSpatial.Count != Rank)
            throw new ShapeException($"{op}: a {Rank}-d window {this} needs {Rank} spatial sizes; found [{string.Join(", ", inputSpatial)}].");
        var o = new int[Rank];
        for (int a = 0; a < Rank; a++)
        {
            int size = inputSpatial[a];
            int span = size + PadBegin[a] + PadEnd[a] - Dilation[a] * (Kernel[a] - 1) - 1;
            if (size < 1 || span < 0)
                throw new ShapeException(
                    $"{op}: spatial axis {a} of size {size} gives no output: ({size} + {PadBegin[a]} + {PadEnd[a]} - {Dilation[a]}*({Kernel[a]}-1) - 1)/{Stride[a]} + 1 " +
                    $"needs a padded input at least the dilated kernel {Dilation[a] * (Kernel[a] - 1) + 1}; window {this}.");
            o[a] = span / Stride[a] + 1;
        }
        return o;
    }

    internal void Validate(string op)
    {
        if (Kernel is null || Stride is null || PadBegin is null || PadEnd is null || Dilation is null)
            throw new ShapeException($"{op}: every array of a ConvGeometry must be set.");
        int rank = Kernel.Length;
        if (rank is < 1 or > 3)
            throw new ShapeException($"{op}: expected a window over 1, 2 or 3 spatial axes; found kernel [{string.Join(", ", Kernel)}].");
        if (Stride.Length != rank || PadBegin.Length != rank || PadEnd.Length != rank || Dilation.Length != rank)
            throw new ShapeException($"{op}: kernel, stride, padding and dilation must each have {rank} entries; found {this}.");
        for (int a = 0; a < rank; a++)
            if (Kernel[a] < 1 || Stride[a] < 1 || Dilation[a] < 1 || PadBegin[a] < 0 || PadEnd[a] < 0)
                throw new ShapeException($"{op}: expected kernel, stride and dilation >= 1 and padding >= 0; found {this}.");
        if (Groups < 1) throw new ShapeException($"{op}: expected groups >= 1; found {Groups}.");
    }

    private static int[] Axis(IReadOnlyList<int>? values, int rank, int fallback)
    {
        if (values is null)
        {
            var a = new int[rank];
            Array.Fill(a, fallback);
            return a;
        }
        return values.ToArray();
    }

    /// <inheritdoc />
    public bool Equals(ConvGeometry? other) =>
        other is not null && Groups == other.Groups && Same(Kernel, other.Kernel) && Same(Stride, other.Stride)
        && Same(PadBegin, other.PadBegin) && Same(PadEnd, other.PadEnd) && Same(Dilation, other.Dilation);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Groups);
        foreach (var array in new[] { Kernel, Stride, PadBegin, PadEnd, Dilation })
        {
            h.Add(array?.Length ?? -1);
            if (array is not null) foreach (var v in array) h.Add(v);
        }
        return h.ToHashCode();
    }

    /// <summary>Formats as <c>ConvGeometry { Kernel = [3, 3], Stride = [1, 1], ... }</c>.</summary>
    public override string ToString() =>
        $"ConvGeometry {{ Kernel = {Format(Kernel)}, Stride = {Format(Stride)}, PadBegin = {Format(PadBegin)}, PadEnd = {Format(PadEnd)}, Dilation = {Format(Dilation)}, Groups = {Groups} }}";

    private static bool Same(int[]? a, int[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    private static string Format(int[]? a) => a is null ? "null" : "[" + string.Join(", ", a) + "]";
}
