using Cnn.Core;
using Cnn.Core.Kernels;
using TorchSharp;

namespace Cnn.Cli.Bench;

/// <summary>
/// How time grows with the batch (a training step of SimpleConvNet, batch 1 to 256), with the image (a 3x3 convolution's
/// forward and backward, 8x8 to 128x128), and what a second thread buys on the large shapes (each engine at one thread
/// and at two, measured side by side).
/// </summary>
internal static class ScalingBench
{
    public static void Batch(BenchContext ctx)
    {
        var batches = ctx.Quick ? new[] { 1, 16, 256 } : new[] { 1, 2, 4, 8, 16, 32, 64, 128, 256 };
        var net = Cnn.Dsl.Zoo.SimpleConvNet();
        foreach (int n in batches)
            ctx.Run("time vs batch: simple-convnet training step", $"batch {n}", NetworkBench.TrainFlops(net, n), NetworkBench.TrainStep(ctx, "simple-convnet", n));
    }

    public static void Image(BenchContext ctx)
    {
        var sizes = ctx.Quick ? new[] { 8, 32, 128 } : new[] { 8, 16, 32, 64, 128 };
        foreach (int size in sizes)
        {
            var s = new ConvShape(16, 16, size, size, 16, 3, Pad: 1);
            ctx.Run("time vs image size: conv2d forward+backward, 3x3 p1, N16 C16 K16", $"{size}x{size}", 3 * s.ForwardFlops, ConvBench.ForwardBackward(ctx, s),
                size >= 32 ? Target.SpeedVsLibTorch(1.0) : null);
        }
    }

    /// <summary>The large shapes at one thread and at two, for both engines; the target is on the im2col backend's speed-up.</summary>
    public static void Threads(BenchContext ctx)
    {
        if (ctx.Threads < 2)
        {
            ctx.Log("  (threads: skipped, the run uses one thread)");
            return;
        }
        const string group = "threads: 1 vs 2";
        var conv = ConvBench.Shapes[3];
        int gemm = ctx.Quick ? 1024 : 2048;
        Four(ctx, group, $"GEMM {gemm}", 2.0 * gemm * gemm * gemm, GemmBench.Pair(ctx, gemm));
        Four(ctx, group, $"conv2d forward {conv}", conv.ForwardFlops, ConvBench.Forward(ctx, conv));
        Four(ctx, group, $"conv2d forward+backward {conv}", 3 * conv.ForwardFlops, ConvBench.ForwardBackward(ctx, conv));
        var cifar = Cnn.Dsl.Zoo.KerasCifar();
        Four(ctx, group, "keras-cifar training step, batch 64", NetworkBench.TrainFlops(cifar, 64), NetworkBench.TrainStep(ctx, "keras-cifar", 64));
        BenchContext.UseThreads(ctx.Threads);
    }

    private static void Four(BenchContext ctx, string group, string name, double flops, IReadOnlyList<Side> pair)
    {
        var sides = new List<Side>();
        foreach (var side in pair)
        {
            sides.Add(new Side(Sides.OneThread(side.Name), side.Call, () => BenchContext.UseThreads(1)));
            sides.Add(new Side(Sides.TwoThreads(side.Name), side.Call, () => BenchContext.UseThreads(2)));
        }
        ctx.Run(group, name, flops, sides, Target.ThreadSpeedUp(1.7));
    }
}
