namespace Cnn.Core.Kernels;

/// <summary>
/// Where the elements of a batch of images lie in an inference buffer with a zero border: channel-blocked (NCHWc,
/// <c>[N, C/16, H + 2B, W + 2B, 16]</c>: the 16 channels of one pixel are one zmm) or planar (NCHW with the border,
/// <c>[N, C, H + 2B, W + 2B]</c>: a network's input copied once for a first convolution with few channels). The border
/// (<paramref name="Border"/> pixels on every side) is zero and never written: a convolution reading the buffer with a
/// padding up to the border needs no border code.
/// </summary>
/// <param name="N">Images.</param>
/// <param name="C">Channels (a multiple of 16 when blocked).</param>
/// <param name="H">Height of the interior.</param>
/// <param name="W">Width of the interior.</param>
/// <param name="Border">Zero pixels around the interior on every side.</param>
/// <param name="Blocked">Channel-blocked (else planar).</param>
internal readonly record struct BlockedPlane(int N, int C, int H, int W, int Border, bool Blocked)
{
    /// <summary>Channels per block: one zmm of floats.</summary>
    public const int Lanes = 16;

    /// <summary>Padded width.</summary>
    public int Wp => W + 2 * Border;

    /// <summary>Padded height.</summary>
    public int Hp => H + 2 * Border;

    /// <summary>Floats between horizontally adjacent pixels of one channel.</summary>
    public int PixelStride => Blocked ? Lanes : 1;

    /// <summary>Floats between vertically adjacent pixels.</summary>
    public int RowStride => Wp * PixelStride;

    /// <summary>Floats of one channel block (blocked) or one channel (planar).</summary>
    public int BlockStride => Hp * RowStride;

    /// <summary>Floats of one image.</summary>
    public int ImageStride => (Blocked ? C / Lanes : C) * BlockStride;

    /// <summary>Floats of the whole buffer.</summary>
    public int Length => N * ImageStride;

    /// <summary>The offset of channel <paramref name="c"/> relative to channel 0 of the same pixel.</summary>
    public int ChannelOffset(int c) => Blocked ? c / Lanes * BlockStride + c % Lanes : c * BlockStride;

    /// <summary>The offset of interior pixel <c>(h, w)</c> of channel block (or channel) <paramref name="block"/> of image <paramref name="n"/>.</summary>
    public int Offset(int n, int block, int h, int w) => n * ImageStride + block * BlockStride + (h + Border) * RowStride + (w + Border) * PixelStride;

    /// <summary>The NCHW shape of the interior.</summary>
    public Shape Shape => new(N, C, H, W);
}
