using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Interop.LibTorch;
using TorchSharp;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Cli.Bench;

/// <summary>2-d max pooling, forward and forward plus backward: the im2col backend's kernel against LibTorch's <c>max_pool2d</c>.</summary>
internal static class PoolBench
{
    private sealed record PoolShape(int N, int C, int H, int W, int Kernel, int Stride)
    {
        public int OutH => (H - Kernel) / Stride + 1;

        public int OutW => (W - Kernel) / Stride + 1;

        public override string ToString() => $"N{N} C{C} {H}x{W} {Kernel}x{Kernel} s{Stride}";
    }

    /// <summary>SimpleConvNet's pooling (after its 30 5x5 filters) and an overlapping 3x3/2 pooling of a large map.</summary>
    private static readonly PoolShape[] Shapes = { new(64, 30, 24, 24, 2, 2), new(32, 64, 56, 56, 3, 2) };

    public static void Run(BenchContext ctx)
    {
        foreach (var s in Shapes)
        {
            var x = Tensor.FromArray(BenchContext.Random(s.N * s.C * s.H * s.W, 21), s.N, s.C, s.H, s.W);
            var dy = Tensor.FromArray(BenchContext.Random(s.N * s.C * s.OutH * s.OutW, 22), s.N, s.C, s.OutH, s.OutW);
            var win = new Window2d(s.Kernel, s.Kernel, s.Stride, s.Stride, 0, 0);
            long[] k = { s.Kernel, s.Kernel }, st = { s.Stride, s.Stride };
            var tx = ctx.Keep(TorchTensors.ToTorch(x));
            ctx.Run("max pooling forward", s.ToString(), 0, new[]
            {
                new Side(Sides.Im2col, InArena.Call(() => MaxPool2dKernel.Forward(x, win))),
                new Side(Sides.LibTorch, () =>
                {
                    using var y = max_pool2d(tx, k, st);
                }),
            });
            var txg = ctx.Keep(TorchTensors.ToTorch(x, requiresGrad: true));
            var tdy = ctx.Keep(TorchTensors.ToTorch(dy));
            ctx.Run("max pooling forward+backward", s.ToString(), 0, new[]
            {
                new Side(Sides.Im2col, InArena.Call(() =>
                {
                    var r = MaxPool2dKernel.Forward(x, win);
                    MaxPool2dKernel.Backward(dy, r.ArgMax, x.Shape);
                })),
                new Side(Sides.LibTorch, () =>
                {
                    using var scope = torch.NewDisposeScope();
                    var y = max_pool2d(txg, k, st);
                    torch.autograd.grad(new[] { y }, new[] { txg }, new[] { tdy });
                }),
            });
        }
    }
}
