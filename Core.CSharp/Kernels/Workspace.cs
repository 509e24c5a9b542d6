using System.Buffers;

namespace Cnn.Core.Kernels;
/// <summary>
/// Workspace arrays of the convolution kernels (column matrices, partial sums), pooled by power-of-two size and shared by
/// all threads. Unlike <see cref="ArrayPool{T}.Shared"/>, whose per-thread caches miss whenever <see cref="BatchParallel"/>
/// lands a chunk on another pool thread and which it trims at every full collection (frequent when a training step allocates
/// megabytes of tensors), this pool keeps what it is given: measured, a batch-parallel convolution reallocated about 100 KB of
/// workspace per call from the shared pool, and nothing from this one. It holds at most <see cref="PerSize"/> arrays of each
/// size, so its memory is bounded by the largest workspaces in use at once.
/// </summary>
internal static class Workspace
{
    private const int PerSize = 8;

    private static readonly Stack<float[]>[] Pools = Enumerable.Range(0, 32).Select(_ => new Stack<float[]>()).ToArray();

    /// <summary>An array of at least <paramref name="length"/> floats, contents undefined.</summary>
    public static float[] Rent(int length)
    {
        if (length > 1 << 30) return GC.AllocateUninitializedArray<float>(length);
        int size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(length, 16));
        var pool = Pools[System.Numerics.BitOperations.Log2((uint)size)];
        lock (pool)
            if (pool.TryPop(out var array)) return array;
        return GC.AllocateUninitializedArray<float>(size);
    }

    /// <summary>Gives back an array from <see cref="Rent"/>.</summary>
    public static void Return(float[] array)
    {
        if (!System.Numerics.BitOperations.IsPow2(array.Length)) return;
        var pool = Pools[System.Numerics.BitOperations.Log2((uint)array.Length)];
        lock (pool)
            if (pool.Count < PerSize) pool.Push(array);
    }
}
