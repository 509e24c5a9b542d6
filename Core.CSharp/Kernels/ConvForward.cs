using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// A convolution's forward pass bound to one input shape: the checks, the window plan, the path (direct depthwise; the
/// direct stride-1 kernel <see cref="DirectConv"/>; the fused GEMM over the batch, or over one image's columns; a GEMM per
/// image or per block of images) and its parallel body
/// worked out once. <see cref="ConvKernel"/>'s forward pass makes one per call; an inference plan makes one per input
/// shape and then calls <see cref="Run"/>, which allocates nothing (workspaces are pooled).
/// </summary>
/// <remarks>
/// One call at a time: a call's input and output are fields, read by the parallel body, so that the body is one delegate
/// made once instead of a closure per call.
/// </remarks>
internal sealed class ConvForward
{
    /// <summary>Below this many FLOPs a single image's fused product runs on one thread (as the GEMM does).</summary>
    private const long MinSplitFlops = 1_500_000;

    private readonly ConvKernel.Setup _s;
    private readonly Tensor _w;
    private readonly Tensor? _bias;
    private readonly GemmInstructionSet _isa;
    private readonly bool _relu, _fused, _direct;
    private readonly float[]? _prepacked;
    private readonly ConvColumns _columns;

    /// <summary>The direct kernel's vector width (<see cref="DirectConv.Lanes"/>).</summary>
    private readonly int _lanes;
    private readonly DepthwiseConv2d.Plan? _depthwise;

    /// <summary>The training forward pass on the inference kernel's register tiles, when it takes the layer.</summary>
    private readonly BlockedForward? _blocked;

    /// <summary>The inference kernel with filter vectors (<see cref="ChannelTileConv"/>), its packed weights and bias, and how it splits one image.</summary>
    private readonly ChannelTileConv? _channel;
    private readonly float[]? _tileWeights, _tileBias;
    private readonly int _tileBlocks;
    private readonly Action<int, int, int>? _tileUnfold;
    private readonly Action<int, int, int>? _body;

    /// <summary>Column panels of one image's fused product, and the micro-kernel's panel width.</summary>
    private readonly int _panels, _nr;

    /// <summary>
    /// One image's fused product split between the workers by filters (in tiles of the micro-kernel's MR rows) rather than
    /// by columns: when the image has fewer output positions than the layer has filters (ResNet's 14x14 and 7x7 stages at
    /// batch 1), a column split makes every worker stream all the packed weights, several megabytes, from L3 for a panel
    /// or two of columns, while a filter split streams each weight once in all and reuses it for every panel (each worker
    /// packs all the columns instead, which is the smaller matrix).
    /// </summary>
    private readonly bool _byFilters;

    /// <summary>The micro-kernel's rows, and tiles of them covering the filters.</summary>
    private readonly int _mr, _tiles;

    // The call in progress.
    private Tensor? _x;
    private float[]? _y, _packed;

    /// <summary>One image's im2col block shared by the workers of a call split by filter panels.</summary>
    private float[]? _columns1;
    private int _parts;
    private GemmOptions _gemm;

    /// <param name="x">The input's shape, <c>[N, C, spatial...]</c>.</param>
    /// <param name="w">Weight <c>[F, C/groups, kernel...]</c>.</param>
    /// <param name="bias">Bias <c>[F]</c>, or null.</param>
    /// <param name="g">The window and the number of groups.</param>
    /// <param name="isa">The micro-kernel.</param>
    /// <param name="relu">Apply <c>max(y, 0)</c> to the output.</param>
    /// <param name="packedWeights">The weight packed for the fused path on <paramref name="isa"/> (<see cref="ConvKernel.PackWeights"/>), or null to pack it per call.</param>
    /// <param name="tilePacked">The weight and bias packed for <see cref="ChannelTileConv"/> (an inference plan's), which then takes the layers it is worth taking that the direct kernel does not; or null.</param>
    /// <exception cref="ShapeException">The shapes do not fit each other or the window.</exception>
    public ConvForward(Shape x, Tensor w, Tensor? bias, ConvGeometry g, GemmInstructionSet isa, bool relu, float[]? packedWeights,
        Lazy<(float[] Weights, float[]? Bias)>? tilePacked = null)
    {
        _s = ConvKernel.Check(x, w, bias, g);
        _w = w;
        _bias = bias;
        _isa = Gemm.Resolve(isa);
        _relu = relu;
        OutputShape = ConvKernel.OutputShape(_s, x);
        if (DepthwiseConv2d.Covers(g, _s.C, _s.F))
        {
            _depthwise = new DepthwiseConv2d.Plan(x, w.Shape, g, _s.Plan.Output);
            return;
        }
        // The training forward (an inference plan packs its weights beforehand; a chosen micro-kernel is a test of that path).
        if (packedWeights is null && tilePacked is null && isa == GemmInstructionSet.Auto && BlockedForward.Covers(g, _s.F) && BlockedForward.Worth(_s, g))
        {
            _blocked = BlockedForward.For(x, g, _s.F, relu);
            return;
        }
        _fused = ConvKernel.Fused(_s);
        if (_fused)
        {
            _columns = new ConvColumns(_s.N, _s.C, _s.Groups, _s.Plan);
            _lanes = DirectConv.Lanes(_isa);
            if (DirectConv.Covers(_columns, _s.F, _lanes))
            {
                _direct = true;
                _body = _s.N > 1 ? DirectImages : DirectFilters;
                return;
            }
        }
        if (tilePacked is not null && _isa == GemmInstructionSet.Vector512 && ChannelTileConv.Covers(_s.Groups, _s.F)
            && ChannelTileConv.Worth(_s.Plan.OutSize, _s.F))
        {
            _channel = new ChannelTileConv(_s.Plan, _s.C, _s.F);
            (_tileWeights, _tileBias) = tilePacked.Value;
            int workers = BatchParallel.Workers;
            // One image: split by blocks of positions, in a multiple of the workers, unless it is one block and the filters
            // make enough panels to share (ResNet's 7x7 stage), when each worker takes its panels over all the positions.
            _tileBlocks = _channel.Blocks == 1 && _channel.Panels >= 2 * workers ? 0
                : Math.Min(_channel.Tiles, (Math.Max(_channel.Blocks, workers) + workers - 1) / workers * workers);
            _body = _s.N > 1 ? TileImages : _tileBlocks == 0 ? TilePanels : TileBlocks;
            if (_tileBlocks == 0) _tileUnfold = TileUnfold;
            return;
        }
        if (!_fused)
        {
            _body = PerImage;
            return;
        }
        _prepacked = packedWeights;
        _nr = _isa switch { GemmInstructionSet.Vector512 => GemmKernel512.NR, GemmInstructionSet.Vector256 => GemmKernel256.NR, _ => GemmKernelScalar.NR };
        _mr = _isa switch { GemmInstructionSet.Vector512 => GemmKernel512.MR, GemmInstructionSet.Vector256 => GemmKernel256.MR, _ => GemmKernelScalar.MR };
        _panels = (_s.Plan.OutSize + _nr - 1) / _nr;
        _tiles = (_s.F + _mr - 1) / _mr;
        _byFilters = _s.N == 1 && _s.Groups == 1 && _s.F > _s.Plan.OutSize;
        _body = _s.N > 1 ? FusedImages : _byFilters ? FusedFilters : FusedColumns;
    }

    /// <summary>
    /// Chunks of images the direct and fused paths cut a batch into: four per worker, taken by whichever thread is free, so
    /// that a worker that wakes late or loses its core for a while (two cores shared with other processes) leaves its
    /// images to the thread that is running rather than holding up the call with half the batch. Each image's output is
    /// the same sums whatever the chunks.
    /// </summary>
    private int ImageChunks => Math.Min(_s.N, 4 * BatchParallel.Workers);

    /// <summary>Whether this call runs <see cref="ChannelTileConv"/>.</summary>
    internal bool ChannelTiles => _channel is not null;

    /// <summary>The output's shape, <c>[N, F, output...]</c>.</summary>
    public Shape OutputShape { get; }

    /// <summary>y = conv(x, w) + b (then ReLU when asked) into <paramref name="y"/>, every element written.</summary>
    /// <param name="x">An input of the shape this was made for.</param>
    /// <param name="y">The output, <see cref="OutputShape"/>'s size.</param>
    public void Run(Tensor x, float[] y)
    {
        if (_depthwise is not null)
        {
            _depthwise.Forward(x, _w, _bias, y);
            if (_relu) TensorPrimitives.Max(y, 0f, y);
            return;
        }
        if (_blocked is not null)
        {
            _blocked.Run(x, _w, _bias, y);
            return;
        }
        (_x, _y) = (x, y);
        try
        {
            if (_channel is not null)
            {
                if (_s.N > 1) BatchParallel.For(_s.N, ImageChunks, _body!);
                else if (2L * _s.F * _s.RowsG * _s.Plan.OutSize < MinSplitFlops) Tiles(0, 0, _channel.Blocks, _channel.Blocks, 0, _channel.Panels);
                else if (_tileBlocks == 0)
                {
                    // The filter panels split between the workers read one im2col of the image, made by all of them first.
                    // Both in chunks of a panel (of an eighth of the channels), taken by whichever thread is free: a worker
                    // that loses its core for a while leaves its share to the caller instead of holding up the call.
                    _columns1 = Workspace.Rent(_channel.ColumnsLength(_s.Plan.OutSize));
                    BatchParallel.For(_s.C, 8, _tileUnfold!);
                    BatchParallel.For(_channel.Panels, _channel.Panels, _body!);
                }
                else BatchParallel.For(_tileBlocks, _tileBlocks, _body!);
                return;
            }
            if (!_fused)
            {
                _gemm = ConvKernel.GemmFor(_s.N) with { InstructionSet = _isa };
                BatchParallel.For(_s.N, _body!);
                if (_relu) TensorPrimitives.Max(y, 0f, y);
                return;
            }
            if (_direct)
            {
                if (_s.N > 1) BatchParallel.For(_s.N, ImageChunks, _body!);
                // One image: its filters split between the workers in whole tiles of eight, unless too small to share.
                else if (2L * _s.F * _s.RowsG * _s.Plan.OutSize < MinSplitFlops) Direct(0, 1, 0, _s.F);
                else BatchParallel.For((_s.F + 7) / 8, _body!);
                return;
            }
            _packed = _prepacked ?? PackWeights();
            if (_s.N > 1) BatchParallel.For(_s.N, ImageChunks, _body!);
            else
            {
                // One image: its columns (or its filters) split between the workers, in whole panels (or tiles).
                _parts = 2L * _s.F * _s.RowsG * _s.Plan.OutSize < MinSplitFlops ? 1
                    : Math.Min(BatchParallel.Chunks(int.MaxValue), _byFilters ? _tiles : _panels);
                BatchParallel.For(_parts, _body!);
            }
        }
        finally
        {
            if (_prepacked is null && _packed is not null) Workspace.Return(_packed);
            if (_columns1 is not null) Workspace.Return(_columns1);
            (_x, _y, _packed, _columns1) = (null, null, null, null);
        }
    }

    /// <summary>The weights packed for this call (a pooled workspace) when they were not packed beforehand.</summary>
    private unsafe float[] PackWeights()
    {
        int length = _isa switch
        {
            GemmInstructionSet.Vector512 => ConvGemm<GemmKernel512>.PackedWeightsLength(_s.Groups, _s.FG, _s.RowsG, transposed: false),
            GemmInstructionSet.Vector256 => ConvGemm<GemmKernel256>.PackedWeightsLength(_s.Groups, _s.FG, _s.RowsG, transposed: false),
            _ => ConvGemm<GemmKernelScalar>.PackedWeightsLength(_s.Groups, _s.FG, _s.RowsG, transposed: false),
        };
        var packed = Workspace.Rent(length);
        fixed (float* pw = _w.Span, pp = packed)
            switch (_isa)
            {
                case GemmInstructionSet.Vector512: ConvGemm<GemmKernel512>.PackWeights(pw, _s.Groups, _s.FG, _s.RowsG, transposed: false, pp); break;
                case GemmInstructionSet.Vector256: ConvGemm<GemmKernel256>.PackWeights(pw, _s.Groups, _s.FG, _s.RowsG, transposed: false, pp); break;
                default: ConvGemm<GemmKernelScalar>.PackWeights(pw, _s.Groups, _s.FG, _s.RowsG, transposed: false, pp); break;
            }
        return packed;
    }

    /// <summary>The direct kernel (<see cref="DirectConv"/>) over a batch: images <c>[start, end)</c>, every filter.</summary>
    private void DirectImages(int chunk, int start, int end) => Direct(start, end, 0, _s.F);

    /// <summary>The direct kernel over one image: tiles <c>[start, end)</c> of eight filters.</summary>
    private void DirectFilters(int chunk, int start, int end) => Direct(0, 1, start * 8, Math.Min(_s.F, end * 8));

    private unsafe void Direct(int i0, int i1, int f0, int f1)
    {
        fixed (float* px = _x!.Span, pw = _w.Span, pb = _bias is null ? default : _bias.Span, py = _y)
            DirectConv.Forward(_columns, px, pw, pb, _s.F, py, i0, i1, f0, f1, _relu, _lanes);
    }

    /// <summary><see cref="ChannelTileConv"/> over a batch: images <c>[start, end)</c>, each in its blocks of positions.</summary>
    private void TileImages(int chunk, int start, int end)
    {
        for (int i = start; i < end; i++) Tiles(i, 0, _channel!.Blocks, _channel.Blocks, 0, _channel.Panels);
    }

    /// <summary><see cref="ChannelTileConv"/> over one image: blocks <c>[start, end)</c> of its positions, every filter.</summary>
    private void TileBlocks(int chunk, int start, int end) => Tiles(0, start, end, _tileBlocks, 0, _channel!.Panels);

    /// <summary>The shared im2col of one image: input channels <c>[start, end)</c>.</summary>
    private unsafe void TileUnfold(int chunk, int start, int end)
    {
        fixed (float* px = _x!.Span, pc = _columns1) _channel!.Unfold(px, 0, 0, _s.Plan.OutSize, pc, start, end);
    }

    /// <summary><see cref="ChannelTileConv"/> over one image: filter panels <c>[start, end)</c>, every position, from the shared im2col.</summary>
    private unsafe void TilePanels(int chunk, int start, int end)
    {
        fixed (float* pc = _columns1, pw = _tileWeights, pb = _tileBias, py = _y)
            _channel!.Compute(pc, pw, pb, _relu, py, 0, 0, _s.Plan.OutSize, start, end);
    }

    /// <summary>Blocks <c>[b0, b1)</c> of <paramref name="blocks"/> of image <paramref name="image"/>, panels <c>[p0, p1)</c>.</summary>
    private unsafe void Tiles(int image, int b0, int b1, int blocks, int p0, int p1)
    {
        fixed (float* px = _x!.Span, pw = _tileWeights, pb = _tileBias, py = _y)
            for (int b = b0; b < b1; b++)
            {
                var (q0, q1) = _channel!.Block(b, blocks);
                _channel.Forward(px, pw, pb, _relu, py, image, q0, q1, p0, p1);
            }
    }

    /// <summary>The fused path over a batch: images <c>[start, end)</c>, all their columns.</summary>
    private void FusedImages(int chunk, int start, int end) => Fused(start, end, 0, _s.Plan.OutSize);

    /// <summary>The fused path over one image: part <c>[start, end)</c> of its column panels.</summary>
    private void FusedColumns(int chunk, int start, int end)
    {
        int outSize = _s.Plan.OutSize;
        Fused(0, 1, Math.Min(outSize, (int)((long)_panels * start / _parts) * _nr), Math.Min(outSize, (int)((long)_panels * end / _parts) * _nr));
    }

    /// <summary>The fused path over one image: part <c>[start, end)</c> of its filters' tiles, all its columns.</summary>
    private void FusedFilters(int chunk, int start, int end) =>
        Fused(0, 1, 0, _s.Plan.OutSize, (int)((long)_tiles * start / _parts) * _mr, Math.Min(_s.F, (int)((long)_tiles * end / _parts) * _mr));

    private unsafe void Fused(int i0, int i1, int c0, int c1, int r0 = 0, int r1 = -1)
    {
        fixed (float* px = _x!.Span, pp = _packed, pb = _bias is null ? default : _bias.Span, py = _y)
            switch (_isa)
            {
                case GemmInstructionSet.Vector512: ConvGemm<GemmKernel512>.Forward(_columns, px, pp, pb, _s.F, py, i0, i1, c0, c1, _relu, r0, r1); break;
                case GemmInstructionSet.Vector256: ConvGemm<GemmKernel256>.Forward(_columns, px, pp, pb, _s.F, py, i0, i1, c0, c1, _relu, r0, r1); break;
                default: ConvGemm<GemmKernelScalar>.Forward(_columns, px, pp, pb, _s.F, py, i0, i1, c0, c1, _relu, r0, r1); break;
            }
    }

    /// <summary>
    /// The GEMM path for images <c>[start, end)</c>: a product per image written straight into y, or, for small images, the
    /// columns of several side by side, one product, the result scattered to the images.
    /// </summary>
    private void PerImage(int chunk, int start, int end)
    {
        var s = _s;
        var (x, y, w, bias) = (_x!, _y!, _w, _bias);
        int outSize = s.Plan.OutSize;
        int images = ConvKernel.ImagesPerBlock(s, end - start);
        if (images == 1)
        {
            // One image per product: the GEMM writes straight into y (from the image itself when pointwise).
            var cols = s.Direct ? null : Workspace.Rent(s.Rows * outSize);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var yi = y.AsSpan(i * s.F * outSize, s.F * outSize);
                    var colSpan = ConvKernel.Columns(x, i, s, cols);
                    for (int gi = 0; gi < s.Groups; gi++)
                        Gemm.Multiply(false, false, s.FG, outSize, s.RowsG, w.Span.Slice(gi * s.FG * s.RowsG, s.FG * s.RowsG),
                            colSpan.Slice(gi * s.RowsG * outSize, s.RowsG * outSize), yi.Slice(gi * s.FG * outSize, s.FG * outSize), false, _gemm);
                    if (bias is not null)
                        for (int o = 0; o < s.F; o++)
                        {
                            var yo = yi.Slice(o * outSize, outSize);
                            ConvKernel.AddBias(yo, bias[o], yo);
                        }
                }
            }
            finally { if (cols is not null) Workspace.Return(cols); }
            return;
        }
        int block = images * outSize;
        var blockCols = Workspace.Rent(s.Rows * block);
        var output = Workspace.Rent(s.F * block);
        try
        {
            for (int first = start; first < end; first += images)
            {
                int count = Math.Min(images, end - first), width = count * outSize;
                for (int j = 0; j < count; j++)
                    ImToCol.UnfoldRange(ConvKernel.Image(x.Span, first + j, s), s.C, s.Plan, 0, outSize, blockCols, width, j * outSize);
                for (int gi = 0; gi < s.Groups; gi++)
                    Gemm.Multiply(false, false, s.FG, width, s.RowsG, w.Span.Slice(gi * s.FG * s.RowsG, s.FG * s.RowsG),
                        blockCols.AsSpan(gi * s.RowsG * width, s.RowsG * width), output.AsSpan(gi * s.FG * width, s.FG * width), false, _gemm);
                for (int j = 0; j < count; j++)
                    for (int o = 0; o < s.F; o++)
                    {
                        var src = output.AsSpan(o * width + j * outSize, outSize);
                        var dst = y.AsSpan(((first + j) * s.F + o) * outSize, outSize);
                        if (bias is null) src.CopyTo(dst);
                        else ConvKernel.AddBias(src, bias[o], dst);
                    }
            }
        }
        finally
        {
            Workspace.Return(blockCols);
            Workspace.Return(output);
        }
    }
}
