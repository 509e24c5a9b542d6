using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// 1-d convolution over NCL input (sequences, signals), as PyTorch's <c>nn.Conv1d</c>.
/// Weight <c>[Filters, C/Groups, Kernel]</c>, bias <c>[Filters]</c>.
/// </summary>
/// <param name="Filters">Output channels.</param>
/// <param name="Kernel">Kernel length.</param>
/// <param name="Stride">Stride (default 1).</param>
/// <param name="Pad">Zero padding at both ends (default 0).</param>
/// <param name="UseBias">Whether to add a bias (default true).</param>
/// <param name="Dilation">Spacing of kernel taps (default 1).</param>
/// <param name="Groups">Channel groups (default 1).</param>
public sealed record Conv1d(int Filters, int Kernel, int Stride = 1, int Pad = 0, bool UseBias = true, int Dilation = 1, int Groups = 1) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "conv";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Filters < 1 || Kernel < 1 || Stride < 1 || Pad < 0 || Dilation < 1 || Groups < 1)
            throw new ShapeException($"Layer '{path}': Conv1d needs filters, kernel, stride, dilation and groups >= 1 and padding >= 0; found {this}.");
        if (input.Rank != 2) throw new ShapeException($"Layer '{path}': Conv1d expects input [C, L] per sample; found {input}.");
        ConvLayers.CheckGroups(path, input[0], Filters, Groups);
        return new Shape(Filters, OutputSize.Compute(input[1], Kernel, Stride, Pad, Dilation, path, "length", input, strict));
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input) =>
        ConvLayers.Specs(Filters, input[0] / Groups, new[] { Kernel }, UseBias);
}

/// <summary>
/// 3-d convolution over NCDHW input (volumes, video), as PyTorch's <c>nn.Conv3d</c>, with a cubic kernel,
/// one stride and one padding for every axis. Weight <c>[Filters, C, Kernel, Kernel, Kernel]</c>.
/// </summary>
/// <param name="Filters">Output channels.</param>
/// <param name="Kernel">Kernel size along depth, height and width.</param>
/// <param name="Stride">Stride along every axis (default 1).</param>
/// <param name="Pad">Zero padding on both sides of every axis (default 0).</param>
/// <param name="UseBias">Whether to add a bias (default true).</param>
public sealed record Conv3d(int Filters, int Kernel, int Stride = 1, int Pad = 0, bool UseBias = true) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "conv";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Filters < 1 || Kernel < 1 || Stride < 1 || Pad < 0)
            throw new ShapeException($"Layer '{path}': Conv3d needs filters, kernel and stride >= 1 and padding >= 0; found {this}.");
        if (input.Rank != 4) throw new ShapeException($"Layer '{path}': Conv3d expects input [C, D, H, W] per sample; found {input}.");
        return new Shape(Filters,
            OutputSize.Compute(input[1], Kernel, Stride, Pad, 1, path, "depth", input, strict),
            OutputSize.Compute(input[2], Kernel, Stride, Pad, 1, path, "height", input, strict),
            OutputSize.Compute(input[3], Kernel, Stride, Pad, 1, path, "width", input, strict));
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input) =>
        ConvLayers.Specs(Filters, input[0], new[] { Kernel, Kernel, Kernel }, UseBias);
}

/// <summary>
/// Transposed 2-d convolution (the adjoint of a strided convolution; "deconvolution"), as PyTorch's
/// <c>nn.ConvTranspose2d</c> and a DCGAN generator use it. Output size <c>(in-1)*stride - 2*pad + kernel + outputPad</c>.
/// Weight <c>[C, Filters, Kernel, Kernel]</c> (PyTorch's layout), bias <c>[Filters]</c>.
/// </summary>
/// <param name="Filters">Output channels.</param>
/// <param name="Kernel">Square kernel size.</param>
/// <param name="Stride">Upsampling stride (default 1).</param>
/// <param name="Pad">Padding removed from each side of the output (default 0).</param>
/// <param name="OutputPad">Extra rows and columns added on one side (below the stride) to pick among the sizes a strided convolution maps to one (default 0).</param>
/// <param name="UseBias">Whether to add a bias (default true).</param>
public sealed record ConvTranspose2d(int Filters, int Kernel, int Stride = 1, int Pad = 0, int OutputPad = 0, bool UseBias = true) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "deconv";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Filters < 1 || Kernel < 1 || Stride < 1 || Pad < 0 || OutputPad < 0 || OutputPad >= Stride)
            throw new ShapeException($"Layer '{path}': ConvTranspose2d needs filters, kernel and stride >= 1, padding >= 0 and 0 <= output padding < stride; found {this}.");
        if (input.Rank != 3) throw new ShapeException($"Layer '{path}': ConvTranspose2d expects input [C, H, W] per sample; found {input}.");
        int Size(int i, string axis)
        {
            int o = (i - 1) * Stride - 2 * Pad + Kernel + OutputPad;
            if (o < 1)
                throw new ShapeException($"Layer '{path}': output {axis} ({i}-1)*{Stride} - 2*{Pad} + {Kernel} + {OutputPad} = {o} is below 1 for input {input}.");
            return o;
        }
        return new Shape(Filters, Size(input[1], "height"), Size(input[2], "width"));
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input)
    {
        int c = input[0], k = Kernel * Kernel;
        // PyTorch computes the fan of a transposed convolution's weight [C, F, k, k] from its dimension 1.
        var w = new ParameterSpec("weight", new Shape(c, Filters, Kernel, Kernel), Filters * k, c * k, false);
        return UseBias ? new[] { w, new ParameterSpec("bias", new Shape(Filters), Filters * k, c * k, true) } : new[] { w };
    }
}
