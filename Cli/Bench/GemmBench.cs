using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Interop.LibTorch;
using TorchSharp;

namespace Cnn.Cli.Bench;

/// <summary>Square single-precision matrix products: the im2col backend's GEMM against LibTorch's <c>matmul</c>.</summary>
internal static class GemmBench
{
    public static readonly int[] Sizes = { 256, 512, 1024, 2048 };

    public static void Run(BenchContext ctx)
    {
        foreach (int n in Sizes)
        {
            // Issue 17: where LibTorch's GEMM is MKL at about 95 % of the peak (Intel), within 3 % of it; on AMD Zen 4/5, where
            // it runs at about 40 %, 1.5x it.
            var target = n < 512 ? null : Target.SpeedVsLibTorch(CpuCaches.Class == CpuClass.AmdZen4Or5 ? 1.5 : 0.97);
            ctx.Run("GEMM (C = A B, square)", $"{n}x{n}x{n}", 2.0 * n * n * n, Pair(ctx, n), target);
        }
    }

    /// <summary>The im2col backend's and LibTorch's product of two n x n matrices, each writing a result of its own.</summary>
    public static IReadOnlyList<Side> Pair(BenchContext ctx, int n)
    {
        var a = BenchContext.Random(n * n, 1);
        var b = BenchContext.Random(n * n, 2);
        var c = new float[n * n];
        var ta = ctx.Keep(TorchTensors.ToTorch(Tensor.FromArray(a, n, n)));
        var tb = ctx.Keep(TorchTensors.ToTorch(Tensor.FromArray(b, n, n)));
        return new[]
        {
            new Side(Sides.Im2col, () => Gemm.Multiply(false, false, n, n, n, a, b, c)),
            new Side(Sides.LibTorch, () =>
            {
                using var r = torch.matmul(ta, tb);
            }),
        };
    }
}
