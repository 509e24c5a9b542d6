using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Interop.LibTorch;
using TorchSharp;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Cli.Bench;

/// <summary>One 2-d convolution: batch, channels, image, filters, square kernel, stride, symmetric padding and channel groups.</summary>
internal sealed record ConvShape(int N, int C, int H, int W, int K, int Kernel, int Stride = 1, int Pad = 0, int Groups = 1)
{
    public int OutH => (H + 2 * Pad - Kernel) / Stride + 1;

    public int OutW => (W + 2 * Pad - Kernel) / Stride + 1;

    /// <summary>Multiply-adds counted twice: <c>2 N K (C / groups) kh kw OH OW</c>.</summary>
    public double ForwardFlops => 2.0 * N * K * (C / Groups) * Kernel * Kernel * OutH * OutW;

    public ConvGeometry Geometry =>
        ConvGeometry.Create(new[] { Kernel, Kernel }, new[] { Stride, Stride }, new[] { Pad, Pad }, new[] { Pad, Pad }, new[] { 1, 1 }, Groups);

    public override string ToString() =>
        $"N{N} C{C} {H}x{W} K{K} {Kernel}x{Kernel}" + (Stride != 1 ? $" s{Stride}" : "") + (Pad != 0 ? $" p{Pad}" : "") +
        (Groups == C && Groups > 1 ? " depthwise" : Groups != 1 ? $" g{Groups}" : "");
}

/// <summary>
/// Convolution forward, and forward plus backward (input, weight and bias gradients), on the im2col backend and on
/// LibTorch (<c>conv2d</c>, and <c>autograd.grad</c> with the input requiring a gradient too, as the im2col backward
/// always computes it).
/// </summary>
internal static class ConvBench
{
    /// <summary>The four shapes of ../shared/notes/libtorch-on-debian12.md (unpadded: that note's FLOP rates imply it), a 1x1 and a strided one.</summary>
    public static readonly ConvShape[] Shapes =
    {
        new(64, 1, 28, 28, 30, 5),
        new(64, 32, 15, 15, 64, 3),
        new(64, 3, 32, 32, 32, 3),
        new(32, 64, 56, 56, 64, 3),
        new(64, 64, 28, 28, 128, 1),
        new(64, 32, 32, 32, 64, 3, Stride: 2, Pad: 1),
    };

    /// <summary>Depthwise shapes (MobileNet's 3x3 layers at 56x56 and 14x14, and a stride-2 one): no target of their own.</summary>
    public static readonly ConvShape[] Depthwise =
    {
        new(32, 64, 56, 56, 64, 3, Pad: 1, Groups: 64),
        new(32, 256, 14, 14, 256, 3, Pad: 1, Groups: 256),
        new(32, 128, 56, 56, 128, 3, Stride: 2, Pad: 1, Groups: 128),
    };

    public static void Run(BenchContext ctx)
    {
        foreach (var s in Shapes)
            ctx.Run("conv2d forward", s.ToString(), s.ForwardFlops, Forward(ctx, s), Target.SpeedVsLibTorch(1.0));
        foreach (var s in Shapes)
            ctx.Run("conv2d forward+backward", s.ToString(), 3 * s.ForwardFlops, ForwardBackward(ctx, s), Target.SpeedVsLibTorch(1.0));
        foreach (var s in Depthwise)
        {
            ctx.Run("depthwise conv2d forward", s.ToString(), s.ForwardFlops, Forward(ctx, s));
            ctx.Run("depthwise conv2d forward+backward", s.ToString(), 3 * s.ForwardFlops, ForwardBackward(ctx, s));
        }
    }

    public static IReadOnlyList<Side> Forward(BenchContext ctx, ConvShape s)
    {
        var (x, w, b, _) = Operands(s);
        var g = s.Geometry;
        var (tx, tw, tb) = ToTorch(ctx, x, w, b, grad: false);
        return new[]
        {
            new Side(Sides.Im2col, InArena.Call(() => ConvKernel.Forward(x, w, b, g))),
            new Side(Sides.LibTorch, () =>
            {
                using var y = conv2d(tx, tw, tb, new long[] { s.Stride, s.Stride }, new long[] { s.Pad, s.Pad }, groups: s.Groups);
            }),
        };
    }

    public static IReadOnlyList<Side> ForwardBackward(BenchContext ctx, ConvShape s)
    {
        var (x, w, b, dy) = Operands(s);
        var g = s.Geometry;
        var (tx, tw, tb) = ToTorch(ctx, x, w, b, grad: true);
        var tdy = ctx.Keep(TorchTensors.ToTorch(dy));
        return new[]
        {
            new Side(Sides.Im2col, InArena.Call(() =>
            {
                ConvKernel.Forward(x, w, b, g);
                ConvKernel.Backward(x, w, true, dy, g);
            })),
            new Side(Sides.LibTorch, () =>
            {
                using var scope = torch.NewDisposeScope();
                var y = conv2d(tx, tw, tb, new long[] { s.Stride, s.Stride }, new long[] { s.Pad, s.Pad }, groups: s.Groups);
                torch.autograd.grad(new[] { y }, new[] { tx, tw, tb }, new[] { tdy });
            }),
        };
    }

    private static (Tensor X, Tensor W, Tensor B, Tensor Dy) Operands(ConvShape s) =>
        (Tensor.FromArray(BenchContext.Random(s.N * s.C * s.H * s.W, 11), s.N, s.C, s.H, s.W),
         Tensor.FromArray(BenchContext.Random(s.K * s.C / s.Groups * s.Kernel * s.Kernel, 12), s.K, s.C / s.Groups, s.Kernel, s.Kernel),
         Tensor.FromArray(BenchContext.Random(s.K, 13), s.K),
         Tensor.FromArray(BenchContext.Random(s.N * s.K * s.OutH * s.OutW, 14), s.N, s.K, s.OutH, s.OutW));

    private static (TorchTensor X, TorchTensor W, TorchTensor B) ToTorch(BenchContext ctx, Tensor x, Tensor w, Tensor b, bool grad) =>
        (ctx.Keep(TorchTensors.ToTorch(x, grad)), ctx.Keep(TorchTensors.ToTorch(w, grad)), ctx.Keep(TorchTensors.ToTorch(b, grad)));
}
