using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Cnn.Core.Kernels;

/// <summary>
/// The calling thread's packing workspace. Thread-static so concurrent callers never share one and the steady
/// state allocates nothing; pinned so the kernels can use raw pointers, and 64-byte aligned so each packed
/// row of a panel starts on a cache line.
/// </summary>
internal sealed unsafe class GemmPackBuffers
{
    [ThreadStatic] private static GemmPackBuffers? t_current;

    private float[] _a = [], _b = [];
    private float* _aPtr, _bPtr;

    public static GemmPackBuffers Current => t_current ??= new GemmPackBuffers();

    public float* A(int floats) => Ensure(ref _a, ref _aPtr, floats);

    public float* B(int floats) => Ensure(ref _b, ref _bPtr, floats);

    private static float* Ensure(ref float[] array, ref float* aligned, int floats)
    {
        if (array.Length < floats + 16)
        {
            array = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
            nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
            aligned = (float*)((start + 63) & ~(nint)63);
        }
        return aligned;
    }
}
