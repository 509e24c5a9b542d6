using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// The output of a forward pass, the state after it, and the pullback that maps an output gradient to
/// input and parameter gradients.
/// </summary>
public sealed class ForwardResult
{
    private readonly Func<Tensor, GradientSink, Tensor> _pullback;

    internal ForwardResult(Tensor output, Parameters state, Func<Tensor, GradientSink, Tensor> pullback, IReadOnlyList<HeadOutput> heads)
    {
        Output = output;
        State = state;
        _pullback = pullback;
        Heads = heads;
    }

    /// <summary>The network's output for the batch.</summary>
    public Tensor Output { get; }

    /// <summary>The state after this pass: updated running statistics in training mode, unchanged in inference.</summary>
    public Parameters State { get; }

    /// <summary>
    /// The outputs of the network's <see cref="AuxiliaryHead"/> layers in execution order: computed by a training-mode pass,
    /// empty in inference (where the heads are the identity).
    /// </summary>
    public IReadOnlyList<HeadOutput> Heads { get; }

    /// <summary>
    /// The vector-Jacobian product: given dL/dOutput, the gradient with respect to the input and to every
    /// trainable parameter (frozen parameters get none). The auxiliary heads' outputs count as not reaching the loss:
    /// their parameters' gradients are zero (see the overload that takes their gradients).
    /// </summary>
    public Pulled Pullback(Tensor outputGradient) => Pullback(outputGradient, Array.Empty<Tensor>());

    /// <summary>
    /// The vector-Jacobian product of the main output and the auxiliary heads' outputs together: each head's gradient is
    /// pulled back through the head and added into the trunk where the head taps it.
    /// </summary>
    /// <param name="outputGradient">dL/dOutput.</param>
    /// <param name="headGradients">dL/dHead for each of <see cref="Heads"/>, in order; empty for none (zero).</param>
    /// <exception cref="ShapeException">A gradient's shape or the number of head gradients does not fit.</exception>
    public Pulled Pullback(Tensor outputGradient, IReadOnlyList<Tensor> headGradients)
    {
        var sink = Sink(outputGradient, headGradients);
        var dx = _pullback(outputGradient, sink);
        return new Pulled(dx, sink.ToParameters());
    }

    /// <summary>
    /// The parameter gradients alone, for a pass built by <see cref="Apply.ForTraining"/>, which skips the input gradient
    /// (a training step never reads it).
    /// </summary>
    internal Parameters PullbackParameters(Tensor outputGradient, IReadOnlyList<Tensor>? headGradients = null)
    {
        var sink = Sink(outputGradient, headGradients ?? Array.Empty<Tensor>());
        _pullback(outputGradient, sink);
        return sink.ToParameters();
    }

    private GradientSink Sink(Tensor outputGradient, IReadOnlyList<Tensor> headGradients)
    {
        ArgumentNullException.ThrowIfNull(outputGradient);
        ArgumentNullException.ThrowIfNull(headGradients);
        if (outputGradient.Shape != Output.Shape)
            throw new ShapeException($"Pullback: expected an output gradient of shape {Output.Shape}; found {outputGradient.Shape}.");
        if (headGradients.Count != 0 && headGradients.Count != Heads.Count)
            throw new ShapeException($"Pullback: expected a gradient for each of the {Heads.Count} auxiliary heads (or none); found {headGradients.Count}.");
        for (int i = 0; i < headGradients.Count; i++)
            if (headGradients[i].Shape != Heads[i].Output.Shape)
                throw new ShapeException($"Pullback: expected the gradient of head '{Heads[i].Path}' of shape {Heads[i].Output.Shape}; found {headGradients[i].Shape}.");
        return new GradientSink(headGradients);
    }
}

/// <summary>Gradients returned by a pullback.</summary>
/// <param name="Input">dL/dInput.</param>
/// <param name="Parameters">dL/dParameter for every trainable parameter, by path.</param>
public sealed record Pulled(Tensor Input, Parameters Parameters);

/// <summary>Collects parameter gradients by path during a pullback.</summary>
internal sealed class GradientSink(IReadOnlyList<Tensor> headGradients)
{
    private readonly List<KeyValuePair<string, Tensor>> _entries = new();

    /// <summary>The gradient of the auxiliary head at <paramref name="index"/> (execution order), or null when none was given.</summary>
    public Tensor? HeadGradient(int index) => index < headGradients.Count ? headGradients[index] : null;

    public void Add(string path, Tensor gradient) => _entries.Add(KeyValuePair.Create(path, gradient));

    public Parameters ToParameters() => Parameters.Of(_entries);
}
