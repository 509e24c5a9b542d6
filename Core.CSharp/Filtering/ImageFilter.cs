namespace Cnn.Core.Filtering;

/// <summary>Which part of the result a filter returns, along each axis of input length N and kernel length K.</summary>
public enum FilterMode
{
    /// <summary>Every position where the kernel touches the input: N + K - 1 (as <c>np.convolve(..., 'full')</c>).</summary>
    Full,

    /// <summary>The input's size, N, centred as <c>scipy.ndimage</c> centres it (see <see cref="ImageFilter"/>).</summary>
    Same,

    /// <summary>Only positions where the kernel lies wholly inside the input: N - K + 1 (as <c>np.convolve(..., 'valid')</c>).</summary>
    Valid,
}

/// <summary>How the input is extended past its edges (the names and meanings of <c>scipy.ndimage</c>'s modes).</summary>
public enum Boundary
{
    /// <summary>Zeros outside: <c>0 0 | a b c d | 0 0</c> (ndimage <c>constant</c> with <c>cval=0</c>).</summary>
    Zeros,

    /// <summary>A constant outside: <c>k k | a b c d | k k</c> (ndimage <c>constant</c> with <c>cval=k</c>).</summary>
    Constant,

    /// <summary>Mirrored about the edge, the edge sample repeated: <c>b a | a b c d | d c</c> (ndimage <c>reflect</c>).</summary>
    Reflect,

    /// <summary>The edge sample repeated: <c>a a | a b c d | d d</c> (ndimage <c>nearest</c>).</summary>
    Nearest,

    /// <summary>Periodic: <c>c d | a b c d | a b</c> (ndimage <c>wrap</c>, which for filters is <c>grid-wrap</c>).</summary>
    Wrap,
}

/// <summary>
/// Classic image filtering: true convolution (the kernel flipped, as <c>np.convolve</c> and
/// <c>scipy.ndimage.convolve</c> compute it) or correlation, of a 1-d or 2-d array with a kernel of the same rank.
/// This is not the network's convolution (which is correlation, without boundary modes, in
/// <c>Cnn.Core.Kernels</c>); it exists for filtering pictures and signals.
/// </summary>
/// <remarks>
/// <para>
/// Along each axis, with input <c>x</c> of length N, kernel <c>w</c> of length K and <c>x</c> extended past its
/// edges by the <see cref="Boundary"/> rule, convolution gives <c>y[i] = Σ_m w[m] · x[i + o - m]</c> and correlation
/// <c>y[i] = Σ_m w[m] · x[i + o + m]</c>, where the offset <c>o</c> and the output length are:
/// </para>
/// <list type="table">
/// <listheader><term>mode</term><description>convolution o; correlation o; length</description></listheader>
/// <item><term>full</term><description>0; -(K-1); N + K - 1</description></item>
/// <item><term>same</term><description>K / 2 (floored); -(K / 2); N</description></item>
/// <item><term>valid</term><description>K - 1; 0; N - K + 1</description></item>
/// </list>
/// <para>
/// So <c>same</c> equals <c>scipy.ndimage.convolve</c> / <c>correlate</c> (origin 0) with the matching mode, for
/// every kernel size; <c>full</c> and <c>valid</c> with <see cref="Boundary.Zeros"/> equal <c>np.convolve</c> /
/// <c>np.correlate</c> and <c>scipy.signal.convolve</c>. For an odd K, <c>same</c> also equals
/// <c>np.convolve(x, w, 'same')</c>; for an even K, NumPy centres its <c>same</c> window at <c>(K-1)/2</c> (floored),
/// one sample earlier than ndimage: there, NumPy's result is this function's <c>full</c> output from index
/// <c>(K-1)/2</c>. Sums are accumulated in double precision.
/// </para>
/// </remarks>
public static class ImageFilter
{
    /// <summary>
    /// The most multiply-adds (output elements x kernel elements) one call computes: 2^34 by default, some ten seconds
    /// of work; a larger filter (a 3,000,000-sample signal filtered by itself is 9 x 10^12) is refused before anything
    /// is allocated. Memory is the input, the kernel and the output, never output x kernel.
    /// </summary>
    public static long MaxMultiplyAdds { get; set; } = 1L << 34;

    /// <summary>True convolution (kernel flipped) of a 1-d <c>[N]</c> or 2-d <c>[H, W]</c> input with a kernel of the same rank.</summary>
    /// <param name="input">The signal or image.</param>
    /// <param name="kernel">The kernel, of the same rank, each side at least 1.</param>
    /// <param name="mode">Full, same (the default) or valid.</param>
    /// <param name="boundary">How the input continues past its edges.</param>
    /// <param name="constant">The value outside the input for <see cref="Boundary.Constant"/>.</param>
    /// <exception cref="ShapeException">The ranks differ or are not 1 or 2, a side is 0, or a valid output would be empty.</exception>
    public static Tensor Convolve(Tensor input, Tensor kernel, FilterMode mode = FilterMode.Same, Boundary boundary = Boundary.Zeros, float constant = 0f) =>
        Filter(input, kernel, mode, boundary, constant, flip: true);

    /// <summary>Correlation (the kernel not flipped) of a 1-d or 2-d input with a kernel of the same rank.</summary>
    /// <inheritdoc cref="Convolve" path="/param"/>
    /// <exception cref="ShapeException">The ranks differ or are not 1 or 2, a side is 0, or a valid output would be empty.</exception>
    public static Tensor Correlate(Tensor input, Tensor kernel, FilterMode mode = FilterMode.Same, Boundary boundary = Boundary.Zeros, float constant = 0f) =>
        Filter(input, kernel, mode, boundary, constant, flip: false);

    private static Tensor Filter(Tensor input, Tensor kernel, FilterMode mode, Boundary boundary, float constant, bool flip)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(kernel);
        string what = flip ? "Convolve" : "Correlate";
        if (input.Shape.Rank is not (1 or 2) || kernel.Shape.Rank != input.Shape.Rank)
            throw new ShapeException($"{what}: expected a 1-d or 2-d input and a kernel of the same rank; found input {input.Shape} and kernel {kernel.Shape}.");
        if (input.Size == 0 || kernel.Size == 0)
            throw new ShapeException($"{what}: the input {input.Shape} and the kernel {kernel.Shape} must have no empty axis.");
        bool oneD = input.Shape.Rank == 1;
        int h = oneD ? 1 : input.Shape[0], w = input.Shape[^1];
        int kh = oneD ? 1 : kernel.Shape[0], kw = kernel.Shape[^1];
        long ohl = OutputLength(h, kh, mode, what, "rows"), owl = OutputLength(w, kw, mode, what, "columns");
        long outputs = ohl * owl;
        if (outputs > int.MaxValue)
            throw new ShapeException($"{what}: the output of {ohl} x {owl} elements for input {input.Shape} and kernel {kernel.Shape} is larger than {int.MaxValue} elements.");
        if (outputs * kernel.Size > MaxMultiplyAdds)
            throw new ShapeException($"{what}: input {input.Shape} with kernel {kernel.Shape} ({mode.ToString().ToLowerInvariant()}) needs {outputs} x {kernel.Size} = {outputs * kernel.Size:N0} multiply-adds; the limit is {MaxMultiplyAdds:N0} (ImageFilter.MaxMultiplyAdds).");
        var rows = new AxisTaps(h, kh, mode, boundary, flip, (int)ohl);
        var cols = new AxisTaps(w, kw, mode, boundary, flip, (int)owl);
        int oh = (int)ohl, ow = (int)owl;
        var x = input.Span;
        var k = kernel.Span;
        var y = new float[oh * ow];
        double fill = boundary == Boundary.Constant ? constant : 0;
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                double s = 0;
                for (int a = 0; a < kh; a++)
                {
                    int r = rows.Tap(i, a);
                    for (int b = 0; b < kw; b++)
                    {
                        int c = cols.Tap(j, b);
                        s += k[a * kw + b] * (r < 0 || c < 0 ? fill : x[r * w + c]);
                    }
                }
                y[i * ow + j] = (float)s;
            }
        var shape = oneD ? new Shape(ow) : new Shape(oh, ow);
        return Tensor.Own(y, shape);
    }

    /// <summary>The output length along one axis of input length <paramref name="n"/> and kernel length <paramref name="k"/>.</summary>
    private static long OutputLength(int n, int k, FilterMode mode, string what, string axis)
    {
        long length = mode switch
        {
            FilterMode.Full => (long)n + k - 1,
            FilterMode.Same => n,
            FilterMode.Valid => (long)n - k + 1,
            _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, null),
        };
        if (length < 1)
            throw new ShapeException($"{what}: a valid output needs the kernel ({k} {axis}) no larger than the input ({n} {axis}).");
        return length;
    }

    /// <summary>
    /// For each output index and kernel tap along one axis, the input index it reads, or -1 for the constant: a table
    /// when it is small (the common image case), computed per tap otherwise, so memory never grows as output x kernel.
    /// </summary>
    private readonly struct AxisTaps
    {
        private const long MaxTable = 1 << 20;
        private readonly int _n, _offset;
        private readonly bool _flip;
        private readonly Boundary _boundary;
        private readonly int[,]? _table;

        public AxisTaps(int n, int k, FilterMode mode, Boundary boundary, bool flip, int length)
        {
            (_n, _flip, _boundary) = (n, flip, boundary);
            _offset = mode switch
            {
                FilterMode.Full => flip ? 0 : -(k - 1),
                FilterMode.Same => flip ? k / 2 : -(k / 2),
                _ => flip ? k - 1 : 0,
            };
            if ((long)length * k > MaxTable) return;
            _table = new int[length, k];
            for (int i = 0; i < length; i++)
                for (int m = 0; m < k; m++)
                    _table[i, m] = Compute(i, m);
        }

        public int Tap(int i, int m) => _table is null ? Compute(i, m) : _table[i, m];

        private int Compute(int i, int m) => Extend((long)i + _offset + (_flip ? -m : m), _n, _boundary);
    }

    private static int Extend(long j, int n, Boundary boundary)
    {
        if ((ulong)j < (ulong)n) return (int)j;
        switch (boundary)
        {
            case Boundary.Zeros or Boundary.Constant: return -1;
            case Boundary.Nearest: return j < 0 ? 0 : n - 1;
            case Boundary.Wrap: return (int)Mod(j, n);
            case Boundary.Reflect:
                long p = Mod(j, 2L * n);
                return (int)(p < n ? p : 2L * n - 1 - p);
            default: throw new ArgumentOutOfRangeException(nameof(boundary), boundary, null);
        }
    }

    private static long Mod(long a, long n) => ((a % n) + n) % n;
}
