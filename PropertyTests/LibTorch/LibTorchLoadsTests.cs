using Cnn.Core;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;
using TorchSharp;
using Xunit;
using static TorchSharp.torch.nn.functional;

namespace Cnn.Tests.LibTorch;

/// <summary>LibTorch loads in this process and computes a convolution a reader can check by hand.</summary>
public sealed class LibTorchLoadsTests
{
    // x = 1 2 3      k = 1 2      cross-correlation, no flip, bias 0.5:
    //     4 5 6          3 4      y00 = 1*1 + 2*2 + 3*4 + 4*5 + 0.5 = 37.5
    //     7 8 9                   y01 = 1*2 + 2*3 + 3*5 + 4*6 + 0.5 = 47.5
    //                             y10 = 1*4 + 2*5 + 3*7 + 4*8 + 0.5 = 67.5
    //                             y11 = 1*5 + 2*6 + 3*8 + 4*9 + 0.5 = 77.5
    // (A flipped kernel, i.e. true convolution, would give 23.5 at y00.)
    private static readonly float[] X = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    private static readonly float[] K = { 1, 2, 3, 4 };
    private static readonly float[] Expected = { 37.5f, 47.5f, 67.5f, 77.5f };

    [Fact]
    public void EnsureLoaded_succeeds()
    {
        LibTorchRuntime.EnsureLoaded();
        Assert.True(LibTorchRuntime.IsAvailable);
    }

    [Fact]
    public void Torch_conv2d_gives_the_hand_computed_values()
    {
        LibTorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(X, new long[] { 1, 1, 3, 3 });
        var k = torch.tensor(K, new long[] { 1, 1, 2, 2 });
        var b = torch.tensor(new[] { 0.5f }, new long[] { 1 });
        var y = conv2d(x, k, b);
        Assert.Equal(new long[] { 1, 1, 2, 2 }, y.shape);
        Assert.Equal(Expected, y.data<float>().ToArray());
    }

    [Fact]
    public void The_LibTorch_interpreter_gives_the_hand_computed_values()
    {
        var net = Network.Create(new Conv2d(1, 2, 2).Named("conv"), new Shape(1, 3, 3));
        var p = Parameters.Of(new[]
        {
            KeyValuePair.Create("conv/weight", Tensor.FromArray(K, 1, 1, 2, 2)),
            KeyValuePair.Create("conv/bias", Tensor.FromArray(new[] { 0.5f }, 1)),
        });
        var y = TorchNetwork.Forward(net, p, Tensor.FromArray(X, 1, 1, 3, 3));
        Assert.Equal(new Shape(1, 1, 2, 2), y.Shape);
        Assert.Equal(Expected, y.ToArray());
    }
}
