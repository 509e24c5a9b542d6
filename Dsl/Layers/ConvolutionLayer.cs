using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>
/// A convolution or transposed convolution over 1, 2 or 3 spatial axes (<see cref="Conv1d"/>, <see cref="Conv2d"/>,
/// <see cref="Conv3d"/>, <see cref="ConvTranspose1d"/>, <see cref="ConvTranspose2d"/>, <see cref="ConvTranspose3d"/>).
/// Each record names its options as its users expect; <see cref="Spec"/> gives them all in one N-d form, which is what
/// every interpreter reads (shape, apply, summary, JSON, ONNX, LibTorch, PyTorch), so each has one rule for all six.
/// </summary>
public abstract record ConvolutionLayer : LeafLayer
{
    /// <summary>The layer's options in N-d form.</summary>
    public abstract ConvSpec Spec();

    /// <inheritdoc />
    public override string Kind => Spec().Transposed ? "deconv" : "conv";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        var s = Spec();
        var g = s.Geometry;
        int rank = g.Rank;
        bool valid = s.Filters >= 1 && g.Groups >= 1 && s.Filters % g.Groups == 0;
        for (int a = 0; a < rank; a++)
            valid &= g.Kernel[a] >= 1 && g.Stride[a] >= 1 && g.PadBegin[a] >= 0 && g.PadEnd[a] >= 0 && g.Dilation[a] >= 1 && s.OutputPad[a] >= 0 && (!s.Transposed || s.OutputPad[a] < g.Stride[a]);
        if (!valid)
            throw new ShapeException($"Layer '{path}': {s.Name} needs filters, kernel, stride, dilation and groups >= 1, filters a multiple of groups, padding >= 0" +
                (s.Transposed ? " and 0 <= output padding < stride" : "") + $"; found {this}.");
        if (input.Rank != rank + 1)
            throw new ShapeException($"Layer '{path}': {s.Name} expects input [C, {string.Join(", ", AxisNames(rank).Select(n => char.ToUpperInvariant(n[0])))}] per sample; found {input}.");
        if (input[0] % g.Groups != 0)
            throw new ShapeException($"Layer '{path}': groups ({g.Groups}) must divide both the input channels ({input[0]}) and the filters ({s.Filters}).");
        var dims = new int[rank + 1];
        dims[0] = s.Filters;
        var names = AxisNames(rank);
        for (int a = 0; a < rank; a++)
        {
            if (!s.Transposed)
            {
                dims[a + 1] = OutputSize.Compute(input[a + 1], g.Kernel[a], g.Stride[a], g.PadBegin[a], g.Dilation[a], path, names[a], input, strict);
                continue;
            }
            long o = (long)(input[a + 1] - 1) * g.Stride[a] - (long)g.PadBegin[a] - g.PadEnd[a] + (long)g.Dilation[a] * (g.Kernel[a] - 1) + 1 + s.OutputPad[a];
            string pads = g.PadBegin[a] == g.PadEnd[a] ? $"2*{g.PadBegin[a]}" : $"{g.PadBegin[a]} - {g.PadEnd[a]}";
            if (o < 1 || o > int.MaxValue)
                throw new ShapeException($"Layer '{path}': output {names[a]} ({input[a + 1]}-1)*{g.Stride[a]} - {pads} + {g.Dilation[a]}*({g.Kernel[a]}-1) + 1 + {s.OutputPad[a]} = {o} " +
                    $"is not in [1, {int.MaxValue}] for input {input}.");
            dims[a + 1] = (int)o;
        }
        return new Shape(dims);
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input)
    {
        var s = Spec();
        int k = s.Geometry.KernelSize, groups = s.Geometry.Groups;
        // PyTorch computes a weight's fans from its dimensions 1 and 0: [F, C/g, k...] for a convolution, [C, F/g, k...] transposed.
        var dims = s.Transposed ? new[] { input[0], s.Filters / groups } : new[] { s.Filters, input[0] / groups };
        var w = new ParameterSpec("weight", new Shape(dims.Concat(s.Geometry.Kernel).ToArray()), dims[1] * k, dims[0] * k, false);
        return s.UseBias ? new[] { w, new ParameterSpec("bias", new Shape(s.Filters), dims[1] * k, dims[0] * k, true) } : new[] { w };
    }

    /// <summary>
    /// The record that expresses <paramref name="spec"/>: <see cref="Conv1d"/>, <see cref="Conv2d"/> or <see cref="Conv3d"/>,
    /// or their transposed kinds; the inverse of <see cref="Spec"/> (for readers of files: ONNX, JSON).
    /// </summary>
    /// <param name="spec">The options; a convolution's padding must be the same at both ends of every axis (a transposed
    /// convolution's end padding becomes its <c>PadEnd</c> where it differs).</param>
    /// <exception cref="ArgumentException">A convolution's padding differs between the ends of an axis, or the rank is not 1, 2 or 3.</exception>
    public static ConvolutionLayer From(ConvSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var g = spec.Geometry;
        if (!g.SymmetricPadding && !spec.Transposed) throw new ArgumentException($"{spec.Name}: convolution layers pad both ends of an axis equally; found {g}.", nameof(spec));
        int[] k = g.Kernel, s = g.Stride, p = g.PadBegin, d = g.Dilation, q = spec.OutputPad, e = g.PadEnd;
        int f = spec.Filters, groups = g.Groups;
        bool b = spec.UseBias, ends = !g.SymmetricPadding;
        return (g.Rank, spec.Transposed) switch
        {
            (1, false) => new Conv1d(f, k[0], s[0], p[0], b, d[0], groups),
            (2, false) => new Conv2d(f, k[0], k[1], s[0], s[1], p[0], p[1], b, d[0], d[1], groups),
            (3, false) => new Conv3d(f, (k[0], k[1], k[2]), (s[0], s[1], s[2]), (p[0], p[1], p[2]), b, (d[0], d[1], d[2]), groups),
            (1, true) => new ConvTranspose1d(f, k[0], s[0], p[0], q[0], b, d[0], groups, ends ? e[0] : null),
            (2, true) => new ConvTranspose2d(f, (k[0], k[1]), (s[0], s[1]), (p[0], p[1]), (q[0], q[1]), b, (d[0], d[1]), groups, ends ? (e[0], e[1]) : null),
            (3, true) => new ConvTranspose3d(f, (k[0], k[1], k[2]), (s[0], s[1], s[2]), (p[0], p[1], p[2]), (q[0], q[1], q[2]), b, (d[0], d[1], d[2]), groups,
                ends ? (e[0], e[1], e[2]) : null),
            _ => throw new ArgumentException($"expected a window over 1, 2 or 3 axes; found {g}.", nameof(spec)),
        };
    }

    private static string[] AxisNames(int rank) => rank switch
    {
        1 => new[] { "length" },
        2 => new[] { "height", "width" },
        _ => new[] { "depth", "height", "width" },
    };
}

/// <summary>
/// A convolution's or transposed convolution's options in N-d form (<see cref="ConvolutionLayer.Spec"/>).
/// </summary>
/// <param name="Filters">Output channels.</param>
/// <param name="Geometry">Kernel, stride, padding (the same at both ends), dilation per axis, and the channel groups.</param>
/// <param name="OutputPad">Output padding per axis (zeros for a convolution).</param>
/// <param name="Transposed">Whether this is a transposed convolution (weight <c>[C, Filters/groups, k...]</c>) rather than a
/// convolution (weight <c>[Filters, C/groups, k...]</c>).</param>
/// <param name="UseBias">Whether the layer adds a bias per filter.</param>
public sealed record ConvSpec(int Filters, ConvGeometry Geometry, int[] OutputPad, bool Transposed, bool UseBias)
{
    /// <summary>The record's name: <c>Conv2d</c>, <c>ConvTranspose3d</c>, ...</summary>
    public string Name => (Transposed ? "ConvTranspose" : "Conv") + Geometry.Rank + "d";

    /// <summary>Options from per-axis arrays (validated later, by shape inference), padding the same at both ends unless <paramref name="padEnd"/> says otherwise.</summary>
    /// <param name="filters">Output channels.</param>
    /// <param name="kernel">Kernel per axis.</param>
    /// <param name="stride">Stride per axis.</param>
    /// <param name="pad">Padding per axis, at both ends.</param>
    /// <param name="dilation">Dilation per axis.</param>
    /// <param name="groups">Channel groups.</param>
    /// <param name="useBias">Whether there is a bias.</param>
    /// <param name="outputPad">Output padding per axis for a transposed convolution; null for a convolution.</param>
    /// <param name="padEnd">Padding at the end of each axis where it differs from <paramref name="pad"/> (transposed convolutions); null: the same.</param>
    public static ConvSpec Of(int filters, int[] kernel, int[] stride, int[] pad, int[] dilation, int groups, bool useBias, int[]? outputPad = null, int[]? padEnd = null) =>
        new(filters, new ConvGeometry(kernel, stride, pad, padEnd ?? pad, dilation, groups), outputPad ?? new int[kernel.Length], outputPad is not null, useBias);
}
