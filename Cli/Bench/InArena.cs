using Cnn.Core;

namespace Cnn.Cli.Bench;

/// <summary>
/// The im2col side of a kernel row, run as a training step runs its kernels: inside a <see cref="TensorArena"/> that is
/// recycled after each call, so the outputs' arrays are reused rather than fresh from the garbage collector. Without it a
/// row would time the collector and the kernel's page faults on new memory (up to a thousand per call on the small shapes,
/// more than the kernel itself) instead of the kernel; LibTorch's side keeps its own allocator, as in its training.
/// </summary>
internal static class InArena
{
    public static Action Call(Action call)
    {
        var arena = new TensorArena();
        return () =>
        {
            using (arena.Activate()) call();
            arena.Recycle();
        };
    }
}
