using Cnn.Core;
using Cnn.Dsl;
using TorchSharp;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// The LibTorch interpreter of the DSL: walks the same resolved <see cref="Network"/> tree as
/// <see cref="Apply"/> and runs it with TorchSharp's functional operations on the same <see cref="Parameters"/>.
/// Gradients come from LibTorch's own autograd, end to end, so a comparison with <see cref="Loss"/> checks the
/// composition of our pullbacks as well as our kernels, against code that shares neither.
/// </summary>
/// <remarks>
/// Every native tensor a call makes is disposed before it returns; results are copied into <see cref="Tensor"/>s.
/// Adding a layer kind means adding one case to the switch over layer kinds in this file.
/// </remarks>
public static class TorchNetwork
{
    /// <summary>The network's output for a batch <paramref name="x"/> (batch first), computed by LibTorch.</summary>
    /// <exception cref="ShapeException">The batch or a parameter does not have the shape the network expects.</exception>
    /// <exception cref="CnnException">A parameter is missing, a layer kind has no LibTorch rule, or LibTorch could not be loaded.</exception>
    public static Tensor Forward(Network network, Parameters parameters, Tensor x)
    {
        CheckArguments(network, parameters, x);
        LibTorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var p = ToTorch(network, parameters, requiresGrad: false);
        var y = ForwardTorch(network, p, TorchTensors.ToTorch(x));
        return TorchTensors.FromTorch(y);
    }

    /// <summary>
    /// Softmax cross-entropy (mean over the batch) of the network's logits against integer labels, with the gradient of
    /// every parameter and of the input, computed by LibTorch's autograd (<c>cross_entropy</c> then <c>backward()</c>).
    /// </summary>
    /// <exception cref="ShapeException">The batch or a parameter does not have the shape the network expects, or the output is not <c>[N, classes]</c>.</exception>
    /// <exception cref="CnnException">The label count differs from the batch, a label is outside [0, classes), a parameter is missing,
    /// a layer kind has no LibTorch rule, or LibTorch could not be loaded.</exception>
    public static TorchGradientResult SoftmaxCrossEntropy(Network network, Parameters parameters, Tensor x, IReadOnlyList<int> labels)
    {
        CheckArguments(network, parameters, x);
        ArgumentNullException.ThrowIfNull(labels);
        if (network.OutputShape.Rank != 1)
            throw new ShapeException($"Softmax cross-entropy: expected the network to output [classes] per sample; it outputs {network.OutputShape}.");
        int n = x.Shape[0], classes = network.OutputShape[0];
        if (labels.Count != n)
            throw new CnnException($"Softmax cross-entropy: expected {n} labels (one per sample of the batch {x.Shape}); found {labels.Count}.");
        var targets = new long[n];
        for (int i = 0; i < n; i++)
        {
            if ((uint)labels[i] >= (uint)classes)
                throw new CnnException($"Softmax cross-entropy: label {labels[i]} at batch row {i} is outside [0, {classes}).");
            targets[i] = labels[i];
        }

        LibTorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        var p = ToTorch(network, parameters, requiresGrad: true);
        var input = TorchTensors.ToTorch(x, requiresGrad: true);
        var logits = ForwardTorch(network, p, input);
        var loss = cross_entropy(logits, torch.tensor(targets), reduction: torch.nn.Reduction.Mean);
        loss.backward();
        var gradients = Parameters.Of(p.Select(kv => KeyValuePair.Create(kv.Key, GradientOf(kv.Value))));
        return new TorchGradientResult(loss.item<float>(), TorchTensors.FromTorch(logits), gradients, GradientOf(input));
    }

    /// <summary>
    /// Runs the network on TorchSharp tensors, with parameters given as TorchSharp tensors by path. The result is recorded
    /// by autograd when the inputs require gradients. Nothing is disposed here: run it inside a <c>torch.NewDisposeScope()</c>.
    /// </summary>
    /// <param name="network">The resolved network.</param>
    /// <param name="parameters">The parameters by path (<c>conv1/weight</c>), as float32 TorchSharp tensors.</param>
    /// <param name="x">A batch <c>[N, ...input shape]</c>.</param>
    /// <exception cref="CnnException">A parameter is missing, or a layer kind has no LibTorch rule; the message names the layer's path and type.</exception>
    public static TorchTensor ForwardTorch(Network network, IReadOnlyDictionary<string, TorchTensor> parameters, TorchTensor x)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(x);
        LibTorchRuntime.EnsureLoaded();
        return Run(network.RootNode, parameters, x);
    }

    private static TorchTensor Run(Node node, IReadOnlyDictionary<string, TorchTensor> p, TorchTensor x)
    {
        TorchTensor Param(string name)
        {
            string path = Network.Join(node.Path, name);
            return p.TryGetValue(path, out var t) ? t
                : throw new CnnException($"Layer '{Describe(node)}' ({node.Layer.GetType().Name}): no parameter at path '{path}'.");
        }

        switch (node.Layer)
        {
            case Serial:
                foreach (var child in node.Children) x = Run(child, p, x);
                return x;
            case Conv2d c:
                return conv2d(x, Param("weight"), c.UseBias ? Param("bias") : null,
                    strides: new long[] { c.StrideH, c.StrideW }, padding: new long[] { c.PadH, c.PadW });
            case MaxPool2d m:
                return max_pool2d(x, new long[] { m.KernelH, m.KernelW }, new long[] { m.StrideH, m.StrideW }, new long[] { m.PadH, m.PadW });
            case Relu:
                return relu(x);
            case Flatten:
                return x.flatten(1);
            case Dense d:
                return linear(x, Param("weight"), d.UseBias ? Param("bias") : null);
            default:
                throw new CnnException($"Layer '{Describe(node)}': the LibTorch interpreter has no rule for layer type {node.Layer.GetType().Name}.");
        }
    }

    private static string Describe(Node node) => node.Path.Length == 0 ? "<root>" : node.Path;

    /// <summary>The parameters the network declares, as TorchSharp tensors (registered in the caller's dispose scope).</summary>
    private static Dictionary<string, TorchTensor> ToTorch(Network network, Parameters parameters, bool requiresGrad)
    {
        var result = new Dictionary<string, TorchTensor>(StringComparer.Ordinal);
        foreach (var (path, spec) in network.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()))
        {
            var value = parameters[path];
            if (value.Shape != spec.Shape)
                throw new ShapeException($"Parameter '{path}': expected shape {spec.Shape}; found {value.Shape}.");
            result.Add(path, TorchTensors.ToTorch(value, requiresGrad));
        }
        return result;
    }

    private static Tensor GradientOf(TorchTensor leaf)
    {
        var grad = leaf.grad;
        // A leaf that did not reach the loss gets no gradient from autograd; its gradient is zero.
        return grad is null ? Tensor.Zeros(new Shape(leaf.shape.Select(d => (int)d).ToArray())) : TorchTensors.FromTorch(grad);
    }

    private static void CheckArguments(Network network, Parameters parameters, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(x);
        if (x.Shape.Rank != network.InputShape.Rank + 1 || x.Shape.DropBatch() != network.InputShape)
            throw new ShapeException($"Network input: expected a batch [N, {string.Join(", ", network.InputShape)}]; found {x.Shape}.");
    }
}
