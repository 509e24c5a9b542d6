namespace Cnn.Core.Kernels;

/// <summary>
/// The AVX2 tiles of one <see cref="BlockedConv"/> item: its output pixels in raster order (row after row) cut into
/// near-equal runs of at most <see cref="BlockedConvTile256.MaxWidth"/> consecutive pixels, which may cross from one
/// row to the next. Each pixel is found from its tile's first one by a delta, in the input and in the output.
/// </summary>
/// <remarks>
/// Why across rows: a tile of n pixels keeps 2n fused multiply-add chains, and Zen 3 needs about ten in flight to keep
/// both its FMA pipes busy. Cut row by row, narrow rows leave short tiles: a 7-pixel row (ResNet-18's last stage) gives
/// 4 and 3 pixels, a 13-pixel one (keras-cifar's) 4, 4 and 5. Across rows, an item's 49 or 52 pixels give tiles of 5 and
/// 6. Each output's sum is the same chain over the same steps wherever its tile starts, so the bits do not change.
/// </remarks>
internal sealed class BlockedRasterTiles
{
    /// <summary>Pixels per tile at most.</summary>
    public const int MaxWidth = BlockedConvTile256.MaxWidth;

    /// <param name="rows">Output rows of the item.</param>
    /// <param name="width">Output pixels per row.</param>
    /// <param name="inRow">Floats between the input pixels under two vertically adjacent outputs (stride times the input's row stride).</param>
    /// <param name="inPixel">Floats between the input pixels under two horizontally adjacent outputs.</param>
    /// <param name="outRow">Floats between two output rows.</param>
    /// <param name="outPixel">Floats between two output pixels of a row.</param>
    public BlockedRasterTiles(int rows, int width, int inRow, int inPixel, int outRow, int outPixel)
    {
        int pixels = rows * width, count = (pixels + MaxWidth - 1) / MaxWidth;
        First = new int[count];
        Width = new int[count];
        In = new nint[count * MaxWidth];
        Out = new nint[count * MaxWidth];
        for (int t = 0; t < count; t++)
        {
            int first = (int)((long)pixels * t / count);
            First[t] = first;
            Width[t] = (int)((long)pixels * (t + 1) / count) - first;
            for (int j = 0; j < MaxWidth; j++)
            {
                // Past the tile's width: the first pixel again, never read.
                int p = j < Width[t] ? first + j : first;
                In[t * MaxWidth + j] = (nint)(p / width) * inRow + (nint)(p % width) * inPixel;
                Out[t * MaxWidth + j] = (nint)(p / width) * outRow + (nint)(p % width) * outPixel;
            }
        }
    }

    /// <summary>Tiles.</summary>
    public int Count => First.Length;

    /// <summary>Each tile's first pixel, its index in the item's raster order.</summary>
    public int[] First { get; }

    /// <summary>Each tile's pixels, 1 to <see cref="MaxWidth"/>.</summary>
    public int[] Width { get; }

    /// <summary>Tile t's pixels' input offsets from the item's first pixel's, in floats: <c>[t * MaxWidth + j]</c>.</summary>
    public nint[] In { get; }

    /// <summary>Tile t's pixels' output offsets from the item's first pixel's, in floats: <c>[t * MaxWidth + j]</c>.</summary>
    public nint[] Out { get; }
}
