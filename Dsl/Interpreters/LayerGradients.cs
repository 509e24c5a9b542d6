using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>The output of one layer of a network for a batch, and the gradient of a function of the network's output with respect to it.</summary>
/// <param name="Path">The layer's path.</param>
/// <param name="Activation">The layer's output for the batch, <c>[N, ...layer output shape]</c>.</param>
/// <param name="Gradient">d(objective)/d(<paramref name="Activation"/>), same shape; zero where the objective does not depend on it.</param>
/// <param name="Output">The network's output for the batch.</param>
public sealed record LayerGradient(string Path, Tensor Activation, Tensor Gradient, Tensor Output);

/// <summary>
/// Gradients with respect to the output of any layer of a network (leaf or combinator, named by its path), as
/// Grad-CAM and saliency methods need: the pullback of <see cref="Apply.WithPullback"/> stops at the network's
/// input; this records, on the way back, the gradient that reaches the chosen layer's output.
/// </summary>
public static class LayerGradients
{
    /// <summary>
    /// The output of the layer at <paramref name="layerPath"/> and the gradient, with respect to it, of the objective
    /// whose gradient with respect to the network's output is <paramref name="outputGradient"/> (given the output).
    /// For a class score <c>y[c]</c>, the output gradient is one-hot: see <see cref="ClassScore"/>.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="x">The batch, <c>[N, ...input shape]</c>.</param>
    /// <param name="layerPath">The layer's path (as <see cref="Node.Path"/>: <c>conv1</c>, <c>block2/conv1</c>).</param>
    /// <param name="outputGradient">Maps the network's output to d(objective)/d(output), of the output's shape.</param>
    /// <param name="mode">Inference (default) or training.</param>
    /// <param name="state">The network's state, when it has any.</param>
    /// <param name="seed">Seeds the dropout masks of a training pass.</param>
    /// <exception cref="CnnException">No layer has that path, or the batch does not fit the network.</exception>
    public static LayerGradient Compute(Network network, Parameters parameters, Tensor x, string layerPath, Func<Tensor, Tensor> outputGradient,
        Mode mode = Mode.Eval, Parameters? state = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(layerPath);
        ArgumentNullException.ThrowIfNull(outputGradient);
        Find(network, layerPath);
        var tap = new LayerTap(layerPath);
        var forward = Apply.WithTap(network, parameters, x, tap, mode, state, seed);
        forward.Pullback(outputGradient(forward.Output));
        var activation = tap.Output ?? throw new CnnException($"Layer '{layerPath}' was not run by the forward pass.");
        return new LayerGradient(layerPath, activation, tap.Gradient ?? Tensor.Zeros(activation.Shape), forward.Output);
    }

    /// <summary>
    /// The output gradient of the sum over the batch of each sample's score of its class: one at
    /// <c>[i, classes[i]]</c>, zero elsewhere. Samples do not interact in inference mode, so the gradient of that sum
    /// with respect to sample i's activations is the gradient of sample i's own class score.
    /// </summary>
    /// <param name="classes">One class per sample of the batch.</param>
    public static Func<Tensor, Tensor> ClassScore(IReadOnlyList<int> classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        return output =>
        {
            if (output.Shape.Rank != 2 || output.Shape[0] != classes.Count)
                throw new ShapeException($"ClassScore: expected [{classes.Count}, K] outputs; found {output.Shape}.");
            int k = output.Shape[1];
            var g = new float[output.Size];
            for (int i = 0; i < classes.Count; i++)
            {
                if (classes[i] < 0 || classes[i] >= k) throw new CnnException($"Class {classes[i]} of sample {i} is outside [0, {k}).");
                g[i * k + classes[i]] = 1f;
            }
            return Tensor.Own(g, output.Shape);
        };
    }

    /// <summary>The node at <paramref name="path"/>.</summary>
    /// <exception cref="CnnException">No node has that path; the message lists the layer paths.</exception>
    public static Node Find(Network network, string path)
    {
        ArgumentNullException.ThrowIfNull(network);
        return All(network.RootNode).FirstOrDefault(n => n.Path == path && n.Layer is not Freeze)
            ?? throw new CnnException($"The network has no layer '{path}'; its layers are: {string.Join(", ", network.Leaves.Select(l => l.Path))}.");
    }

    private static IEnumerable<Node> All(Node node) => node.Children.SelectMany(All).Prepend(node);
}

/// <summary>Records the output of the node at one path and the gradient that reaches it in the pullback.</summary>
internal sealed class LayerTap(string path)
{
    public string Path { get; } = path;

    public Tensor? Output { get; private set; }

    public Tensor? Gradient { get; private set; }

    public (Tensor, Func<Tensor, GradientSink, Tensor>) Record((Tensor Output, Func<Tensor, GradientSink, Tensor> Back) rule)
    {
        Output = rule.Output;
        return (rule.Output, (dy, sink) =>
        {
            Gradient = dy;
            return rule.Back(dy, sink);
        });
    }
}
