using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>Class-activation maps of a batch.</summary>
/// <param name="Layer">The path of the layer whose activations were weighted.</param>
/// <param name="Classes">The class explained for each sample.</param>
/// <param name="Scores">Each sample's score (logit) of its class.</param>
/// <param name="Weights">The channel weights, <c>[N, C]</c>: the spatial mean of d(score)/d(activation) per channel.</param>
/// <param name="LayerMaps">ReLU of the weighted sum of the layer's channels, <c>[N, h, w]</c>, at the layer's resolution, not normalised.</param>
/// <param name="Maps">The maps upsampled bilinearly to the input's height and width and normalised per sample to [0, 1], <c>[N, H, W]</c>.</param>
public sealed record GradCamResult(string Layer, IReadOnlyList<int> Classes, IReadOnlyList<float> Scores, Tensor Weights, Tensor LayerMaps, Tensor Maps);

/// <summary>
/// Grad-CAM (Selvaraju et al., 2017) for any network of the DSL whose input and chosen layer are images
/// (<c>[C, H, W]</c> per sample): which parts of the input the layer's evidence for a class comes from.
/// </summary>
public static class GradCam
{
    /// <summary>
    /// The default layer: the last node, in execution order, whose output is a stack of 2-D maps (<c>[C, h, w]</c>) —
    /// the last convolutional stage before the network flattens or pools globally, as Grad-CAM's authors use.
    /// </summary>
    /// <exception cref="CnnException">No layer has a 2-D spatial output.</exception>
    public static string DefaultLayer(Network network)
    {
        ArgumentNullException.ThrowIfNull(network);
        return network.Leaves.LastOrDefault(n => n.Output.Rank == 3)?.Path
            ?? throw new CnnException("Grad-CAM needs a layer with [C, H, W] output; this network has none.");
    }

    /// <summary>
    /// The class-activation map of <paramref name="layer"/> for each sample of <paramref name="x"/>: the channel
    /// weights are the spatial mean of d(class score)/d(activation); the map is the ReLU of the channels' weighted sum,
    /// upsampled bilinearly (half-pixel centres, as OpenCV's and PyTorch's resize) to the input size and divided by its
    /// range after subtracting its minimum, so it spans [0, 1] (a map that is constant, e.g. all zero, stays 0).
    /// The score is the network's output before any softmax the loss applies (the logit).
    /// </summary>
    /// <param name="network">The network; its input is <c>[C, H, W]</c>.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="x">The batch, <c>[N, C, H, W]</c>.</param>
    /// <param name="layer">The layer's path; by default <see cref="DefaultLayer"/>.</param>
    /// <param name="classes">The class to explain for each sample; by default the predicted (arg-max) class.</param>
    /// <param name="state">The network's state, when it has any.</param>
    /// <exception cref="CnnException">The input or the layer's output is not <c>[C, H, W]</c>, the network's output is not one score per class, or no layer has that path.</exception>
    public static GradCamResult Compute(Network network, Parameters parameters, Tensor x, string? layer = null, IReadOnlyList<int>? classes = null, Parameters? state = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(x);
        if (network.InputShape.Rank != 3) throw new CnnException($"Grad-CAM needs image inputs [C, H, W]; the network takes {network.InputShape}.");
        if (network.OutputShape.Rank != 1) throw new CnnException($"Grad-CAM needs one score per class; the network's output is {network.OutputShape}.");
        layer ??= DefaultLayer(network);
        var node = LayerGradients.Find(network, layer);
        if (node.Output.Rank != 3)
            throw new CnnException($"Grad-CAM needs a layer with [C, H, W] output; '{layer}' gives {node.Output}. Layers that do: {string.Join(", ", network.Leaves.Where(l => l.Output.Rank == 3).Select(l => l.Path))}.");
        int n = x.Shape.Rank > 0 ? x.Shape[0] : 0;
        if (classes is not null && classes.Count != n) throw new CnnException($"Grad-CAM: {classes.Count} classes for a batch of {n}.");
        var chosen = classes ?? Trainer.ArgMax(Apply.Forward(network, parameters, x, Mode.Eval, state));
        var lg = LayerGradients.Compute(network, parameters, x, layer, LayerGradients.ClassScore(chosen), Mode.Eval, state);

        int c = node.Output[0], h = node.Output[1], w = node.Output[2], hw = h * w, k = network.OutputShape[0];
        var a = lg.Activation.Span;
        var g = lg.Gradient.Span;
        var weights = new float[n * c];
        var maps = new float[n * hw];
        var scores = new float[n];
        for (int i = 0; i < n; i++)
        {
            scores[i] = lg.Output[i * k + chosen[i]];
            var map = maps.AsSpan(i * hw, hw);
            for (int ch = 0; ch < c; ch++)
            {
                int off = (i * c + ch) * hw;
                float alpha = System.Numerics.Tensors.TensorPrimitives.Sum(g.Slice(off, hw)) / hw;
                weights[i * c + ch] = alpha;
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(a.Slice(off, hw), alpha, map, map);
            }
            System.Numerics.Tensors.TensorPrimitives.Max(map, 0f, map);
        }
        var layerMaps = Tensor.Own(maps, new Shape(n, h, w));
        var up = Upsample(layerMaps, network.InputShape[1], network.InputShape[2]);
        return new GradCamResult(layer, chosen, scores, Tensor.Own(weights, new Shape(n, c)), layerMaps, Normalize(up));
    }

    /// <summary>
    /// Bilinear resize of <c>[N, h, w]</c> maps to <c>[N, height, width]</c> with half-pixel centres
    /// (<c>src = (dst + 0.5) * in / out - 0.5</c>, clamped to the edge), as OpenCV's <c>resize</c> and PyTorch's
    /// <c>interpolate(mode="bilinear", align_corners=False)</c>.
    /// </summary>
    public static Tensor Upsample(Tensor maps, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (maps.Shape.Rank != 3) throw new ShapeException($"Upsample: expected [N, h, w] maps; found {maps.Shape}.");
        if (height < 1 || width < 1) throw new ShapeException($"Upsample: the size must be positive; found {height} x {width}.");
        int n = maps.Shape[0], h = maps.Shape[1], w = maps.Shape[2];
        var src = maps.Span;
        var dst = new float[n * height * width];
        static (int Lo, int Hi, float T) Coord(int d, int inSize, int outSize)
        {
            float s = Math.Max(0f, (d + 0.5f) * inSize / outSize - 0.5f);
            int lo = Math.Min((int)s, inSize - 1);
            int hi = Math.Min(lo + 1, inSize - 1);
            return (lo, hi, s - lo);
        }
        for (int i = 0; i < n; i++)
            for (int y = 0; y < height; y++)
            {
                var (y0, y1, ty) = Coord(y, h, height);
                for (int xx = 0; xx < width; xx++)
                {
                    var (x0, x1, tx) = Coord(xx, w, width);
                    int b = i * h * w;
                    float top = src[b + y0 * w + x0] * (1 - tx) + src[b + y0 * w + x1] * tx;
                    float bottom = src[b + y1 * w + x0] * (1 - tx) + src[b + y1 * w + x1] * tx;
                    dst[(i * height + y) * width + xx] = top * (1 - ty) + bottom * ty;
                }
            }
        return Tensor.Own(dst, new Shape(n, height, width));
    }

    /// <summary>Each <c>[N, ...]</c> sample minus its minimum, divided by its range: [0, 1]; a constant sample becomes 0.</summary>
    public static Tensor Normalize(Tensor maps)
    {
        ArgumentNullException.ThrowIfNull(maps);
        int n = maps.Shape[0], per = maps.Size / Math.Max(1, n);
        var r = maps.ToArray();
        for (int i = 0; i < n; i++)
        {
            var s = r.AsSpan(i * per, per);
            float lo = System.Numerics.Tensors.TensorPrimitives.Min(s), hi = System.Numerics.Tensors.TensorPrimitives.Max(s);
            if (!(hi > lo)) { s.Clear(); continue; }
            for (int j = 0; j < s.Length; j++) s[j] = (s[j] - lo) / (hi - lo);
        }
        return Tensor.Own(r, maps.Shape);
    }
}
