namespace Cnn.Core.Kernels;

/// <summary>
/// The training forward pass of a 2-d convolution on <see cref="BlockedConv"/>: NCHW in, NCHW out, with the inference
/// kernel's register tiles in between. Each image is read where it lies (planar, as an inference plan's first layer reads
/// its input), or, when the window reads padding, copied first into the thread's own buffer with a zero border; the
/// outputs of each item are transposed into the NCHW output while they are in L1 (<see cref="BlockedConv"/>'s NCHW output).
/// No column matrix, and the weights are packed once per call into a pooled workspace.
/// </summary>
/// <remarks>
/// <para><b>Bits.</b> <see cref="BlockedConv"/> sums every output as the GEMM path does (the same depth blocks, in the same
/// order, then the bias, then the ReLU), so the forward pass gives the same bits on either path, for any batch and thread
/// count (tested bit for bit).</para>
/// <para><b>When.</b> A training step makes a <see cref="ConvForward"/> per layer and call; the convolution bound to one
/// input shape (its window tables, a few KB) is kept per calling thread and per shape instead, so a step allocates no more
/// than before. Inference plans keep their own paths (they pack their weights once).</para>
/// </remarks>
internal sealed unsafe class BlockedForward
{
    /// <summary>Layer shapes kept per thread at most; past it the thread's cache starts again.</summary>
    private const int CacheSize = 64;

    /// <summary>Turns the path off (tests compare it with the GEMM path; profiling).</summary>
    internal static bool Disabled { get; set; }

    private readonly BlockedConv _conv;
    private readonly BlockedPlane _plane;
    private readonly int _filters, _inImage, _outImage;
    private readonly bool _padded;
    private readonly Action<int, int, int> _body;

    // The call in progress.
    private float[]? _x, _y;

    private BlockedForward(BlockedPlane plane, ConvGeometry g, int filters, bool relu)
    {
        _plane = plane;
        _filters = filters;
        _padded = plane.Border > 0;
        // The weights are given per call (Use).
        _conv = new BlockedConv(plane, g, null, filters, relu, 0, nchwOutput: true);
        _inImage = plane.C * plane.H * plane.W;
        _outImage = filters * _conv.Output.H * _conv.Output.W;
        _body = Images;
    }

    /// <summary>
    /// Whether the path takes a convolution: a 2-d window <see cref="BlockedConv"/> covers, on the vector paths it has
    /// (AVX-512, or AVX2 with FMA).
    /// </summary>
    public static bool Covers(ConvGeometry g, int filters) => !Disabled && g.Rank == 2 && BlockedConv.Covers(g, filters);

    /// <summary>
    /// Whether it is worth taking a layer the path covers: a 1x1 window; or, with at least 64 steps per output (channels
    /// times taps), a strided window or an unpadded one whose output rows are at most 16 wide. Measured on Zen 3 (2 threads, fastest of
    /// three alternations of ~1 s, same bits): 1x1 stride 2 2.0-2.35x (resnet-mini's shortcuts, where the GEMM's packing is
    /// most of the work), 1x1 stride 1 1.02-1.13x, 3x3 stride 2 1.01-1.30x, unpadded 3x3 to 13x13 1.18-1.27x; but
    /// 0.72-0.87x at 30x30, 0.85-0.94x padded at 16x16 and 0.82-0.89x at 8x8, where the GEMM's strips are as fast and
    /// each item's transposed write-out costs more, and 0.53-0.71x on 3 input channels (27 steps per output: the
    /// write-out is the work).
    /// </summary>
    public static bool Worth(ConvKernel.Setup s, ConvGeometry g)
    {
        bool pointwise = g.Kernel[0] == 1 && g.Kernel[1] == 1, strided = g.Stride[0] > 1 || g.Stride[1] > 1;
        bool unpadded = g.PadBegin[0] == 0 && g.PadBegin[1] == 0 && g.PadEnd[0] == 0 && g.PadEnd[1] == 0;
        return pointwise || s.Rows >= 64 && (strided || unpadded && s.Plan.OutW <= 16);
    }

    /// <summary>The calling thread's convolution for input shape <paramref name="x"/> (<c>[N, C, H, W]</c>), made on first use.</summary>
    public static BlockedForward For(Shape x, ConvGeometry g, int filters, bool relu)
    {
        var key = new Key(x[1], x[2], x[3], g.Kernel[0], g.Kernel[1], g.Stride[0], g.Stride[1], g.PadBegin[0], g.PadBegin[1],
            g.PadEnd[0], g.PadEnd[1], filters, relu);
        var cache = t_cache ??= new Dictionary<Key, BlockedForward>();
        if (cache.TryGetValue(key, out var held)) return held;
        if (cache.Count >= CacheSize) cache.Clear();
        int border = Math.Max(Math.Max(g.PadBegin[0], g.PadEnd[0]), Math.Max(g.PadBegin[1], g.PadEnd[1]));
        var made = new BlockedForward(new BlockedPlane(1, x[1], x[2], x[3], border, Blocked: false), g, filters, relu);
        cache[key] = made;
        return made;
    }

    [ThreadStatic]
    private static Dictionary<Key, BlockedForward>? t_cache;

    /// <summary>A layer shape: the input's channels and size, the window, the filters and the fused ReLU.</summary>
    private readonly record struct Key(int C, int H, int W, int KH, int KW, int SH, int SW, int PT, int PL, int PB, int PR, int F, bool Relu);

    /// <summary>y = conv(x, w) + b, then the ReLU when the layer has one, into <paramref name="y"/> (NCHW, every element written).</summary>
    public void Run(Tensor x, Tensor w, Tensor? bias, float[] y)
    {
        int n = x.Shape[0], panels = _filters / BlockedConv.Filters;
        var packed = Workspace.Rent(w.Size);
        var packedBias = bias is null ? null : Workspace.Rent(panels * BlockedConv.Filters);
        try
        {
            ChannelTileConv.PackInto(w.Span, bias is null ? default : bias.Span, _filters, packed, packedBias);
            _conv.Use(packed, packedBias);
            if (n == 1)
            {
                // One image: its items split between the workers.
                _conv.Run(_padded ? Bordered(x.Storage, 0) : x.Storage, y);
                return;
            }
            (_x, _y) = (x.Storage, y);
            // Four chunks of images per worker, taken by whichever thread is free (as the GEMM path cuts a batch).
            BatchParallel.For(n, Math.Min(n, 4 * BatchParallel.Workers), _body);
        }
        finally
        {
            (_x, _y) = (null, null);
            Workspace.Return(packed);
            if (packedBias is not null) Workspace.Return(packedBias);
        }
    }

    /// <summary>Images <c>[start, end)</c> on the calling thread, each through all its items.</summary>
    private void Images(int chunk, int start, int end)
    {
        fixed (float* px = _x, py = _y)
            for (int i = start; i < end; i++)
            {
                float* y = py + (long)i * _outImage;
                if (!_padded)
                {
                    _conv.RunImages(px + (long)i * _inImage, y, null, 0, 1);
                    continue;
                }
                fixed (float* pb = Bordered(_x!, i)) _conv.RunImages(pb, y, null, 0, 1);
            }
    }

    /// <summary>
    /// Image <paramref name="i"/> of <paramref name="x"/> copied into the interior of the calling thread's bordered buffer,
    /// whose border is zero: cleared whenever the thread last used it for another layout.
    /// </summary>
    private float[] Bordered(float[] x, int i)
    {
        var buffer = t_bordered;
        if (buffer is null || buffer.Length < _plane.Length || t_borderedPlane != _plane)
        {
            if (buffer is null || buffer.Length < _plane.Length) buffer = t_bordered = GC.AllocateUninitializedArray<float>(_plane.Length);
            Array.Clear(buffer, 0, _plane.Length);
            t_borderedPlane = _plane;
        }
        BlockedOps.ToPlanar(x.AsSpan((int)((long)i * _inImage), _inImage), _plane, buffer, 0, 1);
        return buffer;
    }

    /// <summary>The calling thread's bordered image and the layout its border was cleared for.</summary>
    [ThreadStatic]
    private static float[]? t_bordered;

    [ThreadStatic]
    private static BlockedPlane t_borderedPlane;
}
