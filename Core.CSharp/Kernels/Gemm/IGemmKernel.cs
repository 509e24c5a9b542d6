namespace Cnn.Core.Kernels;

/// <summary>
/// A register micro-kernel and the block sizes tuned for it. The driver is generic over this, so the JIT
/// specialises the packing and blocking loops with the tile sizes as constants.
/// </summary>
internal unsafe interface IGemmKernel
{
    /// <summary>Rows of a packed A panel (the register tile's height).</summary>
    static abstract int MR { get; }

    /// <summary>Columns of a packed B panel (the register tile's width).</summary>
    static abstract int NR { get; }

    /// <summary>Rows of A packed at once; sized so the packed block stays in L2. A multiple of MR.</summary>
    static abstract int MC { get; }

    /// <summary>Columns of B packed at once. A multiple of NR.</summary>
    static abstract int NC { get; }

    /// <summary>
    /// Whether the driver's inner loops keep each MR-tall panel of A in L1 and stream the NR-wide panels of B from L2 (the
    /// block of B sized for L2), rather than keeping B's panel in L1 and streaming A's. Speed only: every tile's sums are the same.
    /// </summary>
    static abstract bool APanelResident { get; }

    /// <summary>Row granule the kernel handles without padding waste; thread splits along M are multiples of it.</summary>
    static abstract int MGrain { get; }

    /// <summary>Column granule the kernel handles without padding waste; thread splits along N are multiples of it.</summary>
    static abstract int NGrain { get; }

    /// <summary>
    /// <c>C[0..rows, 0..cols] = (load ? C : 0) + Apanel * Bpanel</c> over <paramref name="kc"/> steps, where every
    /// element's product is one fused multiply-add chain from zero in increasing k, added to C once when
    /// <paramref name="load"/> (<see cref="GemmDepth"/>). Panels are zero-padded to MR and NR.
    /// </summary>
    static abstract void Tile(int kc, float* a, float* b, float* c, nint ldc, int rows, int cols, bool load);

    /// <summary>
    /// <see cref="Tile"/>, where the kernel may also prefetch the packed B panel after this one (the next tile's when A's panel
    /// is resident, <see cref="APanelResident"/>). Speed only.
    /// </summary>
    static abstract void TileBeforeNext(int kc, float* a, float* b, float* c, nint ldc, int rows, int cols, bool load);
}
