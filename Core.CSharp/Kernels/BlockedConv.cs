using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Core.Kernels;

/// <summary>
/// A direct inference convolution over channel-blocked activations (<see cref="BlockedPlane"/>), bound to one input: the
/// input is read where it lies (blocked, or planar for a first layer of few channels) through a zero border as wide as the
/// padding, without im2col; the output is written blocked, 16 channels of a pixel as one zmm, into the interior of the
/// next layer's bordered buffer, with the bias and a ReLU applied on the way. The register tile is up to 14 pixels of one
/// output row by 32 filters of zmm with AVX-512 (<see cref="BlockedConvTile{TStep}"/>), else up to 6 pixels by 16 filters
/// of ymm with AVX2 and FMA (<see cref="BlockedConvTile256"/>, each panel's two halves in turn; its tiles run across
/// the rows of an item, <see cref="BlockedRasterTiles"/>), on the same layout. As in ONNX Runtime's NCHWc
/// kernels (MLAS), the layout is kept from layer to layer, so nothing is transposed or unfolded between them.
/// </summary>
/// <remarks>
/// <para><b>Bits.</b> The weights are packed as <see cref="ChannelTileConv"/> packs them (panels of 32 filters, steps in
/// im2col order: channel, then kernel row, then column), and every output is summed as the GEMM path sums it: a fused
/// multiply-add chain from zero over each depth block of <see cref="GemmDepth.Block"/> steps in order, the blocks added in
/// order, then the bias, then the ReLU. So the output has the bits of <see cref="ConvKernel"/>'s forward pass (and of
/// the network interpreter's), whatever the batch, the tiles or the thread split: each output is computed by one thread in
/// one fixed order.</para>
/// <para><b>Work.</b> Items of (image, filter panel, group of output rows), the rows of an item enough for about 56
/// pixels so that a depth block of the panel (256 x 32 floats, 32 KB) is read from L1 by every tile of the item; a call
/// splits the items between the workers in chunks taken by whichever thread is free.</para>
/// </remarks>
internal sealed unsafe class BlockedConv
{
    /// <summary>Filters per packed panel and per tile.</summary>
    public const int Filters = BlockedConvTile<BlockedSteps.Blocked1>.Filters;

    /// <summary>Output pixels an item covers at least (whole rows), so that every depth block of the panel is reused from L1.</summary>
    private const int ItemPixels = 56;

    private readonly BlockedPlane _in, _out;
    private readonly int _kh, _kw, _sh, _sw, _padTop, _padLeft, _k, _kc, _panels, _rowsPerItem, _rowGroups;
    private readonly int[] _offsets;
    /// <summary>The AVX-512 tiles of a row (start, pixels); empty on the AVX2 path.</summary>
    private readonly (int Start, int Width)[] _tiles = [];

    /// <summary>The AVX2 tiles of an item of <see cref="_rowsPerItem"/> rows and of the last, maybe shorter, one; null on the AVX-512 path.</summary>
    private readonly BlockedRasterTiles? _rasterTiles, _lastRasterTiles;
    private float[] _weights = [];
    private float[]? _bias;
    private readonly bool _relu, _wide, _nchw;
    private readonly Action<int, int, int> _body;
    private readonly ItemsBody _items;

    /// <summary>Items <c>[start, end)</c> of a call on the calling thread.</summary>
    private delegate void ItemsBody(float* x, float* y, float* residual, int start, int end);

    // The call in progress.
    private float[]? _x, _y, _residual;

    /// <summary>Turns the blocked path off (tests compare the plans with and without it; profiling).</summary>
    internal static bool Disabled { get; set; }

    /// <summary>Whether the CPU runs the kernel: AVX-512, or AVX2 with FMA (<see cref="KernelWidth"/>), and the vector paths not forced off.</summary>
    public static bool Available => !Disabled && !ColumnPacker.ForcePortable && (KernelWidth.Wide || KernelWidth.Narrow);

    /// <summary>
    /// Whether the kernel takes a convolution: 2-d, one group, no dilation, a horizontal stride of 1 or 2, and whole panels
    /// of 32 filters (so every output block is two full vectors).
    /// </summary>
    public static bool Covers(ConvGeometry g, int filters) =>
        Available && g.Rank == 2 && g.Groups == 1 && g.Dilation[0] == 1 && g.Dilation[1] == 1 && g.Stride[1] <= 2 && filters % Filters == 0;

    /// <param name="input">The input buffer's layout (its border at least the padding on every side).</param>
    /// <param name="g">The window (<see cref="Covers"/>).</param>
    /// <param name="packed">The weight and bias packed by <see cref="ChannelTileConv.Pack"/>, or null to give them later (<see cref="Use"/>).</param>
    /// <param name="filters">Output channels.</param>
    /// <param name="relu">Apply <c>max(y, 0)</c> to the output.</param>
    /// <param name="outputBorder">The output buffer's border.</param>
    /// <param name="nchwOutput">
    /// Write the output as NCHW (<c>[N, F, Ho, Wo]</c>, no border) rather than blocked: each item's outputs are written
    /// blocked to the calling thread's own buffer and then transposed into the item's rows of its 32 channels while they are
    /// in L1 (<see cref="BlockedOps.ItemToNchw"/>). The training forward pass takes this, whose layers read and write NCHW.
    /// </param>
    /// <exception cref="ShapeException">The border is narrower than the padding, a blocked input's channels are not whole blocks, or the packed weight does not fit.</exception>
    public BlockedConv(BlockedPlane input, ConvGeometry g, (float[] Weights, float[]? Bias)? packed, int filters, bool relu, int outputBorder,
        bool nchwOutput = false)
    {
        if (input.Blocked && input.C % BlockedPlane.Lanes != 0)
            throw new ShapeException($"BlockedConv: a channel-blocked input needs a multiple of {BlockedPlane.Lanes} channels; found {input.C}.");
        _in = input;
        (_kh, _kw, _sh, _sw) = (g.Kernel[0], g.Kernel[1], g.Stride[0], g.Stride[1]);
        (_padTop, _padLeft) = (g.PadBegin[0], g.PadBegin[1]);
        if (Math.Max(Math.Max(g.PadBegin[0], g.PadEnd[0]), Math.Max(g.PadBegin[1], g.PadEnd[1])) > input.Border)
            throw new ShapeException($"BlockedConv: the input's border of {input.Border} is narrower than the padding ({string.Join(", ", g.PadBegin)} / {string.Join(", ", g.PadEnd)}).");
        var size = g.OutputSize(new[] { input.H, input.W });
        if (nchwOutput && outputBorder != 0)
            throw new ShapeException($"BlockedConv: an NCHW output has no border; found {outputBorder}.");
        // An NCHW output's items are laid out blocked in the thread's buffer as they would be in a blocked output without border.
        _out = new BlockedPlane(input.N, filters, size[0], size[1], outputBorder, Blocked: true);
        _nchw = nchwOutput;
        _k = input.C * _kh * _kw;
        _kc = GemmDepth.Block(_k);
        _panels = filters / Filters;
        _relu = relu;
        if (packed is { } given) Use(given.Weights, given.Bias);
        _offsets = new int[_k];
        for (int c = 0, i = 0; c < input.C; c++)
            for (int r = 0; r < _kh; r++)
                for (int s = 0; s < _kw; s++) _offsets[i++] = input.ChannelOffset(c) + r * input.RowStride + s * input.PixelStride;
        _wide = KernelWidth.Wide;
        int wo = _out.W;
        _rowsPerItem = Math.Min(_out.H, Math.Max(1, ItemPixels / wo));
        _rowGroups = (_out.H + _rowsPerItem - 1) / _rowsPerItem;
        if (_wide)
        {
            // Near-equal tiles of at most 14 pixels across a row (30 -> 10, 10, 10; 15 -> 8, 7; 7 -> 7), so that no tile
            // is mostly empty.
            int count = (wo + BlockedConvTile<BlockedSteps.Blocked1>.MaxWidth - 1) / BlockedConvTile<BlockedSteps.Blocked1>.MaxWidth;
            _tiles = new (int, int)[count];
            for (int t = 0; t < count; t++)
            {
                int start = wo * t / count;
                _tiles[t] = (start, wo * (t + 1) / count - start);
            }
        }
        else
        {
            // Tiles of at most 6 pixels across the item's rows, for whole items and for the shorter last group.
            int pixelStep = (input.Blocked ? BlockedPlane.Lanes : 1) * _sw, lastRows = _out.H - (_rowGroups - 1) * _rowsPerItem;
            _rasterTiles = new BlockedRasterTiles(_rowsPerItem, wo, _sh * input.RowStride, pixelStep, _out.RowStride, BlockedPlane.Lanes);
            _lastRasterTiles = lastRows == _rowsPerItem ? _rasterTiles
                : new BlockedRasterTiles(lastRows, wo, _sh * input.RowStride, pixelStep, _out.RowStride, BlockedPlane.Lanes);
        }
        _items = (input.Blocked, _sw) switch
        {
            (true, 1) => Items<BlockedSteps.Blocked1>,
            (true, _) => Items<BlockedSteps.Blocked2>,
            (false, 1) => Items<BlockedSteps.Planar1>,
            _ => Items<BlockedSteps.Planar2>,
        };
        _body = (_, start, end) =>
        {
            fixed (float* px = _x, py = _y, pr = _residual) _items(px, py, pr, start, end);
        };
    }

    /// <summary>The output buffer's layout (blocked; with an NCHW output, its shape alone applies).</summary>
    public BlockedPlane Output => _out;

    /// <summary>
    /// Runs from now on with weights and bias packed by <see cref="ChannelTileConv.PackInto"/> (arrays at least as long as
    /// this layer's, as pooled workspaces are): the training forward pass keeps one convolution per layer shape and packs
    /// each call's weights.
    /// </summary>
    /// <exception cref="ShapeException">The packed weight or bias is shorter than this layer's.</exception>
    public void Use(float[] weights, float[]? bias)
    {
        if (weights.Length < _k * _panels * Filters)
            throw new ShapeException($"BlockedConv: expected {_k * _panels * Filters} packed weights ({_panels * Filters} filters x {_in.C} channels x {_kh}x{_kw}); found {weights.Length}.");
        if (bias is not null && bias.Length < _panels * Filters)
            throw new ShapeException($"BlockedConv: expected {_panels * Filters} packed biases; found {bias.Length}.");
        (_weights, _bias) = (weights, bias);
    }

    private int ItemCount => _in.N * _panels * _rowGroups;

    /// <summary>
    /// The convolution of <paramref name="x"/> (laid out as the input plane, border zero) into the interior of
    /// <paramref name="y"/> (laid out as <see cref="Output"/>); y's border is not written. With a
    /// <paramref name="residual"/> (laid out as the output too), each output is <c>relu?((sum + bias) + residual)</c>: a
    /// residual block's last convolution, the sum and the ReLU after it in one pass.
    /// </summary>
    public void Run(float[] x, float[] y, float[]? residual = null)
    {
        (_x, _y, _residual) = (x, y, residual);
        try
        {
            int items = ItemCount;
            // Four chunks per worker taken by whichever thread is free: a worker that loses its core for a while (two
            // cores shared with other processes) leaves its share to the one running. The chunks change no sum.
            BatchParallel.For(items, Math.Min(items, 4 * BatchParallel.Workers), _body);
        }
        finally { (_x, _y, _residual) = (null, null, null); }
    }

    /// <summary>
    /// <see cref="Run"/> for images <c>[n0, n1)</c> alone, on the calling thread: a plan that gives each thread its own
    /// images through a whole region calls it from several threads at once (it keeps nothing of the call in fields).
    /// </summary>
    public void RunImages(float[] x, float[] y, float[]? residual, int n0, int n1)
    {
        fixed (float* px = x, py = y, pr = residual) RunImages(px, py, pr, n0, n1);
    }

    /// <summary><see cref="RunImages(float[], float[], float[], int, int)"/> on buffers that lie where the pointers say.</summary>
    public void RunImages(float* x, float* y, float* residual, int n0, int n1)
    {
        int perImage = _panels * _rowGroups;
        _items(x, y, residual, n0 * perImage, n1 * perImage);
    }

    /// <summary>Items <c>[start, end)</c>: image-major, then panel, then row group (a panel's rows one after another, so it stays in L2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Items<TStep>(float* x, float* y, float* residual, int start, int end) where TStep : struct, IConstant
    {
        if (_weights.Length == 0) throw new InvalidOperationException("BlockedConv: no weights given (Use).");
        if (_nchw && residual != null) throw new InvalidOperationException("BlockedConv: an NCHW output takes no residual.");
        int need = _rowsPerItem * _out.W * Filters;
        var sums = t_sums is { } held && held.Length >= need ? held : t_sums = GC.AllocateUninitializedArray<float>(need);
        var items = !_nchw ? null : t_items is { } had && had.Length >= need ? had : t_items = GC.AllocateUninitializedArray<float>(need);
        int plane = _out.H * _out.W;
        fixed (float* pw = _weights, pb = _bias, ps = sums, pi = items)
        fixed (int* po = _offsets)
            for (int item = start; item < end; item++)
            {
                int group = item % _rowGroups, panel = item / _rowGroups % _panels, image = item / _rowGroups / _panels;
                int oh0 = group * _rowsPerItem, oh1 = Math.Min(_out.H, oh0 + _rowsPerItem);
                Item<TStep>(x, _nchw ? pi : y, residual, pw + (long)panel * _k * Filters, pb == null ? null : pb + panel * Filters, po, ps, image, panel, oh0, oh1);
                if (_nchw)
                    BlockedOps.ItemToNchw(pi, ItemHalf, (oh1 - oh0) * _out.W, y + ((long)image * _out.C + panel * Filters) * plane + oh0 * _out.W, plane);
            }
    }

    /// <summary>Floats between an item's two channel blocks in the thread's buffer of an NCHW output.</summary>
    private int ItemHalf => _rowsPerItem * _out.W * BlockedPlane.Lanes;

    /// <summary>An item's outputs laid out blocked (<c>[2][pixels][16]</c>), the calling thread's own, for an NCHW output.</summary>
    [ThreadStatic]
    private static float[]? t_items;

    /// <summary>
    /// The tiles' running totals, the calling thread's own: an item's pixels by 32 filters (14 KB for ResNet-18's 112-wide
    /// stem), kept for the thread's next call. A shared pool (<see cref="Workspace"/>) could be empty when other callers
    /// hold its arrays, and a warm call would then allocate; a thread runs one item at a time.
    /// </summary>
    [ThreadStatic]
    private static float[]? t_sums;

    /// <summary>
    /// Output rows <c>[oh0, oh1)</c> of one image and one filter panel: every depth block but the last into the tiles'
    /// running totals, the last one straight to the output with the bias and the ReLU.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Item<TStep>(float* x, float* y, float* residual, float* w, float* bias, int* offsets, float* sums, int image, int panel, int oh0, int oh1)
        where TStep : struct, IConstant
    {
        int wo = _out.W;
        var none = default(BlockedTileOutput);
        // Depth blocks outside the tiles: a block of the panel stays in L1 for every tile of the item.
        for (int k0 = 0; k0 < _k; k0 += _kc)
        {
            int kb = Math.Min(_kc, _k - k0);
            bool last = k0 + kb == _k;
            if (!_wide)
            {
                Item256(x, y, residual, w + (long)k0 * Filters, bias, offsets + k0, kb, sums, image, panel, oh0, oh1, k0, last);
                continue;
            }
            for (int oh = oh0; oh < oh1; oh++)
            {
                // The input pixel under the window's top-left tap for output (oh, 0), in the bordered buffer.
                float* row = x + _in.Offset(image, 0, oh * _sh - _padTop, -_padLeft);
                // An NCHW output's item lies at y (the thread's buffer) as rows from the item's first.
                int at = _nchw ? (oh - oh0) * wo * BlockedPlane.Lanes : _out.Offset(image, 2 * panel, oh, 0);
                float* yo = y + at, ro = residual == null ? null : residual + at;
                nint half = _nchw ? ItemHalf : _out.BlockStride;
                for (int t = 0; t < _tiles.Length; t++)
                {
                    var (ow, width) = _tiles[t];
                    float* a = row + (long)ow * TStep.Value, tw = w + (long)k0 * Filters, ts = sums + ((oh - oh0) * wo + ow) * Filters;
                    var o = last ? new BlockedTileOutput(yo + ow * BlockedPlane.Lanes, half, bias, ro == null ? null : ro + ow * BlockedPlane.Lanes, _relu) : none;
                    nint ahead = oh == oh0 && t == 0 && !last ? (nint)_kc * Filters : 0;
                    BlockedConvTile<TStep>.Depth(width, a, offsets + k0, kb, tw, ts, k0 > 0, o, ahead);
                }
            }
        }
    }

    /// <summary>
    /// One depth block (<paramref name="kb"/> steps from <paramref name="k0"/>; <paramref name="w"/> and
    /// <paramref name="offsets"/> at its first step) of an item on the AVX2 tile: the panel's 16 low filters over the item's
    /// tiles, then its 16 high ones, so that a depth block's half (16 KB, every other cache line of the block) stays in
    /// Zen 3's 32 KB L1 beside the input.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Item256(float* x, float* y, float* residual, float* w, float* bias, int* offsets, int kb, float* sums, int image, int panel, int oh0, int oh1, int k0, bool last)
    {
        var tiles = oh1 - oh0 == _rowsPerItem ? _rasterTiles! : _lastRasterTiles!;
        // The input pixel under the window's top-left tap for the item's first output, in the bordered buffer, and that output.
        float* a = x + _in.Offset(image, 0, oh0 * _sh - _padTop, -_padLeft);
        int at = _nchw ? 0 : _out.Offset(image, 2 * panel, oh0, 0);
        var o = last ? new BlockedTileOutput(y + at, _nchw ? ItemHalf : _out.BlockStride, bias, residual == null ? null : residual + at, _relu) : default;
        fixed (nint* pin = tiles.In, pout = tiles.Out)
            for (int half = 0; half < 2; half++)
                for (int t = 0; t < tiles.Count; t++)
                {
                    nint ahead = half == 0 && t == 0 && !last ? (nint)_kc * Filters : 0;
                    int j = t * BlockedRasterTiles.MaxWidth;
                    BlockedConvTile256.Depth(tiles.Width[t], a, pin + j, pout + j, offsets, kb, w + 16 * half,
                        sums + tiles.First[t] * Filters + 16 * half, k0 > 0, o, half, ahead);
                }
    }
}
