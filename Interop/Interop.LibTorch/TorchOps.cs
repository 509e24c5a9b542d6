using TorchSharp;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// The few layer computations LibTorch has no single operation for, shared by the functional interpreter
/// (<see cref="TorchNetwork"/>) and the module translator (<see cref="TorchModule"/>) so that both compute them alike.
/// </summary>
internal static class TorchOps
{
    /// <summary>
    /// Max pooling across channels of <c>[N, C, spatial...]</c>: channels are moved to the last axis and pooled with
    /// <c>max_pool1d</c>, whose gradient goes to the first maximum of each window, as the im2col kernel's does.
    /// </summary>
    public static TorchTensor ChannelMaxPool(TorchTensor x, int kernel, int stride) => AcrossChannels(x, sites => max_pool1d(sites, kernel, stride));

    /// <summary>Average pooling across channels of <c>[N, C, spatial...]</c>: <c>avg_pool1d</c> over the channels of each position.</summary>
    public static TorchTensor ChannelAvgPool(TorchTensor x, int kernel, int stride) => AcrossChannels(x, sites => avg_pool1d(sites, kernel, stride));

    /// <summary>A 1-d pooling of <c>[N, positions, C]</c> applied with the channels moved to the last axis, and moved back.</summary>
    private static TorchTensor AcrossChannels(TorchTensor x, Func<TorchTensor, TorchTensor> pool)
    {
        var shape = x.shape;
        var bySite = x.flatten(2).transpose(1, 2);
        var pooled = pool(bySite);
        var dims = (long[])shape.Clone();
        dims[1] = pooled.shape[2];
        return pooled.transpose(1, 2).reshape(dims);
    }

    /// <summary>
    /// The maximum or mean of each channel over every spatial axis, kept as axes of size one, for any rank (the
    /// adaptive pooling modules stop at three spatial axes). The maximum's gradient goes to one element, as the kernel's does.
    /// </summary>
    public static TorchTensor GlobalPool(TorchTensor x, bool max)
    {
        var dims = x.shape.Select((d, i) => i < 2 ? d : 1L).ToArray();
        var sites = x.flatten(2);
        var pooled = max ? sites.max(2, keepdim: true).values : sites.mean(new long[] { 2 }, keepdim: true);
        return pooled.reshape(dims);
    }

    /// <summary>
    /// PyTorch's hard tanh: the input clamped to [min, max], with the gradient 1 strictly inside and 0 at and beyond the bounds
    /// (<c>clamp</c>'s own gradient is 1 at the bounds too). TorchSharp 0.107's <c>hardtanh</c> and <c>nn.Hardtanh</c> return
    /// their input unclipped, so the clamp is taken apart: the input where it lies inside, the detached clamp elsewhere.
    /// </summary>
    public static TorchTensor HardTanh(TorchTensor x, float min, float max)
    {
        var inside = x.gt(min).logical_and(x.lt(max));
        return torch.where(inside, x, x.clamp(min, max).detach());
    }

    /// <summary>
    /// ONNX's hard sigmoid <c>clamp(alpha * x + beta, 0, 1)</c> for a slope and offset other than PyTorch's (whose <c>hardsigmoid</c> has
    /// them fixed): the affine map, then <see cref="HardTanh"/> to [0, 1], so that the gradient is 0 at the bounds as in PyTorch's own.
    /// </summary>
    public static TorchTensor HardSigmoid(TorchTensor x, float alpha, float beta) => HardTanh(x.mul(alpha).add(beta), 0f, 1f);

    /// <summary>The DSL's <c>ConstantOperand</c>: <c>x op value</c>, LibTorch broadcasting the sample-shaped value over the batch.</summary>
    public static TorchTensor Combine(Cnn.Core.Kernels.BinaryOp op, TorchTensor x, TorchTensor value) => op switch
    {
        Cnn.Core.Kernels.BinaryOp.Add => x + value,
        Cnn.Core.Kernels.BinaryOp.Subtract => x - value,
        Cnn.Core.Kernels.BinaryOp.Multiply => x * value,
        _ => x / value,
    };

    /// <summary>The DSL's <c>Pad2d</c>: LibTorch's <c>pad</c> with its constant, reflect or replicate mode.</summary>
    public static TorchTensor Pad(TorchTensor x, Cnn.Dsl.Pad2d p) =>
        pad(x, new long[] { p.Left, p.Right, p.Top, p.Bottom },
            p.Mode switch { Cnn.Dsl.PadMode.Reflect => PaddingModes.Reflect, Cnn.Dsl.PadMode.Edge => PaddingModes.Replicate, _ => PaddingModes.Constant }, p.Value);

    /// <summary>ShuffleNet's channel shuffle of <c>[N, C, spatial...]</c>: channels as <c>[groups, C/groups]</c>, transposed.</summary>
    public static TorchTensor ChannelShuffle(TorchTensor x, int groups)
    {
        var shape = x.shape;
        var split = new long[shape.Length + 1];
        split[0] = shape[0];
        split[1] = groups;
        split[2] = shape[1] / groups;
        Array.Copy(shape, 2, split, 3, shape.Length - 2);
        return x.reshape(split).transpose(1, 2).reshape(shape);
    }

    /// <summary>The DSL's <c>Permute</c>: <c>x.permute(0, 1 + axes...)</c>, the batch axis first.</summary>
    public static TorchTensor Permute(TorchTensor x, Cnn.Dsl.Permute layer) =>
        x.permute(new long[] { 0 }.Concat(layer.Axes.Select(a => (long)a + 1)).ToArray());

    /// <summary>Whether <c>avg_pool3d</c> accepts an input of this per-sample shape <c>[C, D, H, W]</c> for this window.</summary>
    /// <remarks>
    /// LibTorch's <c>avg_pool3d</c> (unlike its 1-d and 2-d average pooling and every max pooling) rejects an input smaller
    /// than the window before padding, although the padded input holds whole windows; the DSL allows it, as ONNX does.
    /// </remarks>
    public static bool AvgPool3dAccepts(IEnumerable<long> sampleShape, int kernel) => sampleShape.Skip(1).All(d => d >= kernel);

    /// <summary>
    /// 3-d average pooling for every input the DSL allows: <c>avg_pool3d</c> itself where it accepts the input, else the same
    /// padding applied explicitly first (<see cref="AvgPoolPadded"/>).
    /// </summary>
    public static TorchTensor AvgPool3d(TorchTensor x, int kernel, int stride, int pad, bool countIncludePad)
    {
        long[] k = { kernel, kernel, kernel }, s = { stride, stride, stride };
        if (AvgPool3dAccepts(x.shape.Skip(1), kernel))
            return avg_pool3d(x, k, s, new long[] { pad, pad, pad }, count_include_pad: countIncludePad);
        return AvgPoolPadded(x, k, s, Enumerable.Repeat((long)pad, 6).ToArray(), countIncludePad);
    }

    /// <summary>
    /// 2-d average pooling as the DSL's <c>AvgPool2d</c>: <c>avg_pool2d</c> itself for PyTorch's padding, else (padding that
    /// differs between the ends of an axis or exceeds half the window, in floor mode) <see cref="AvgPoolPadded"/>.
    /// </summary>
    public static TorchTensor AvgPool2d(TorchTensor x, Cnn.Dsl.AvgPool2d a)
    {
        long[] k = { a.KernelH, a.KernelW }, s = { a.StrideH, a.StrideW };
        return a.SymmetricPadding
            ? avg_pool2d(x, k, s, new long[] { a.PadH, a.PadW }, ceil_mode: a.CeilMode, count_include_pad: a.CountIncludePad)
            : AvgPoolPadded(x, k, s, new long[] { a.PadW, a.PadEndW, a.PadH, a.PadEndH }, a.CountIncludePad);
    }

    /// <summary>
    /// Average pooling in floor mode over an input padded first with zeros by <paramref name="pads"/> (<c>F.pad</c>'s order, the
    /// last axis first), for padding the pooling operation refuses. With <paramref name="countIncludePad"/> the divisor is the
    /// whole window; without, the average of the padded input is divided by the share of real elements in each window (an exact
    /// rule: the shares are ratios of small integers, computed without gradient).
    /// </summary>
    public static TorchTensor AvgPoolPadded(TorchTensor x, long[] kernel, long[] stride, long[] pads, bool countIncludePad)
    {
        Func<TorchTensor, TorchTensor> pool = kernel.Length == 2 ? t => avg_pool2d(t, kernel, stride) : t => avg_pool3d(t, kernel, stride);
        var sum = pool(torch.nn.functional.pad(x, pads));
        if (countIncludePad) return sum;
        TorchTensor share;
        using (torch.no_grad()) share = pool(torch.nn.functional.pad(torch.ones_like(x), pads));
        return sum / share;
    }
}
