using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>The output of a forward pass and the pullback that maps an output gradient to input and parameter gradients.</summary>
public sealed class ForwardResult
{
    private readonly Func<Tensor, GradientSink, Tensor> _pullback;

    internal ForwardResult(Tensor output, Func<Tensor, GradientSink, Tensor> pullback)
    {
        Output = output;
        _pullback = pullback;
    }

    /// <summary>The network's output for the batch.</summary>
    public Tensor Output { get; }

    /// <summary>
    /// The vector-Jacobian product: given dL/dOutput, the gradient with respect to the input and to every parameter.
    /// </summary>
    public Pulled Pullback(Tensor outputGradient)
    {
        if (outputGradient.Shape != Output.Shape)
            throw new ShapeException($"Pullback: expected an output gradient of shape {Output.Shape}; found {outputGradient.Shape}.");
        var sink = new GradientSink();
        var dx = _pullback(outputGradient, sink);
        return new Pulled(dx, sink.ToParameters());
    }
}

/// <summary>Gradients returned by a pullback.</summary>
/// <param name="Input">dL/dInput.</param>
/// <param name="Parameters">dL/dParameter for every parameter, by path.</param>
public sealed record Pulled(Tensor Input, Parameters Parameters);

/// <summary>Collects parameter gradients by path during a pullback.</summary>
internal sealed class GradientSink
{
    private readonly List<KeyValuePair<string, Tensor>> _entries = new();

    public void Add(string path, Tensor gradient) => _entries.Add(KeyValuePair.Create(path, gradient));

    public Parameters ToParameters() => Parameters.Of(_entries);
}

/// <summary>
/// The apply interpreter: runs a network forward on the im2col backend and builds its pullback,
/// one rule per layer kind and combinator.
/// </summary>
public static class Apply
{
    /// <summary>The network's output for a batch <paramref name="x"/> (batch first).</summary>
    public static Tensor Forward(Network network, Parameters parameters, Tensor x, Mode mode = Mode.Eval) =>
        WithPullback(network, parameters, x, mode).Output;

    /// <summary>The network's output for a batch, with its pullback.</summary>
    /// <exception cref="ShapeException">The batch's shape is not <c>[N, ...input shape]</c>.</exception>
    public static ForwardResult WithPullback(Network network, Parameters parameters, Tensor x, Mode mode = Mode.Eval)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(x);
        if (x.Shape.Rank != network.InputShape.Rank + 1 || x.Shape.DropBatch() != network.InputShape)
            throw new ShapeException($"Network input: expected a batch [N, {string.Join(", ", network.InputShape)}]; found {x.Shape}.");
        var (y, back) = Run(network.RootNode, parameters, x, mode);
        return new ForwardResult(y, back);
    }

    private static (Tensor, Func<Tensor, GradientSink, Tensor>) Run(Node node, Parameters p, Tensor x, Mode mode)
    {
        string Path(string name) => Network.Join(node.Path, name);
        switch (node.Layer)
        {
            case Serial:
            {
                var backs = new Func<Tensor, GradientSink, Tensor>[node.Children.Count];
                var h = x;
                for (int i = 0; i < backs.Length; i++) (h, backs[i]) = Run(node.Children[i], p, h, mode);
                return (h, (dy, sink) =>
                {
                    for (int i = backs.Length - 1; i >= 0; i--) dy = backs[i](dy, sink);
                    return dy;
                });
            }
            case Conv2d c:
            {
                var g = new Window2d(c.KernelH, c.KernelW, c.StrideH, c.StrideW, c.PadH, c.PadW);
                var w = p[Path("weight")];
                var y = Conv2dKernel.Forward(x, w, c.UseBias ? p[Path("bias")] : null, g);
                return (y, (dy, sink) =>
                {
                    var grads = Conv2dKernel.Backward(x, w, c.UseBias, dy, g);
                    sink.Add(Path("weight"), grads.Weight);
                    if (grads.Bias is not null) sink.Add(Path("bias"), grads.Bias);
                    return grads.Input;
                });
            }
            case MaxPool2d m:
            {
                var r = MaxPool2dKernel.Forward(x, new Window2d(m.KernelH, m.KernelW, m.StrideH, m.StrideW, m.PadH, m.PadW));
                return (r.Output, (dy, _) => MaxPool2dKernel.Backward(dy, r.ArgMax, x.Shape));
            }
            case Relu:
                return (Activations.Relu(x), (dy, _) => Activations.ReluBackward(x, dy));
            case Flatten:
                return (x.Reshape(x.Shape[0], x.Size / Math.Max(1, x.Shape[0])), (dy, _) => dy.Reshape(x.Shape));
            case Dense d:
            {
                var w = p[Path("weight")];
                var y = DenseKernel.Forward(x, w, d.UseBias ? p[Path("bias")] : null);
                return (y, (dy, sink) =>
                {
                    var grads = DenseKernel.Backward(x, w, d.UseBias, dy);
                    sink.Add(Path("weight"), grads.Weight);
                    if (grads.Bias is not null) sink.Add(Path("bias"), grads.Bias);
                    return grads.Input;
                });
            }
            default:
                throw new CnnException($"Layer '{node.Path}': the apply interpreter has no rule for {node.Layer.GetType().Name}.");
        }
    }
}
