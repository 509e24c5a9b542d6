using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// A node of a network description: an immutable record that holds no weights, buffers or state.
/// Interpreters (shape inference, initialisation, apply and gradient, summary, ONNX export, the LibTorch
/// bridge) read the tree; none of them lives here beyond the small pure facts of each layer.
/// </summary>
public abstract record Layer
{
    /// <summary>
    /// The name of this layer inside its parent, used as a segment of parameter paths
    /// (<c>conv1/weight</c>). When null, the parent names it after <see cref="Kind"/> and its position.
    /// </summary>
    public string? Name { get; init; }

    /// <summary>The short lower-case kind used for default names and in summaries (<c>conv</c>, <c>dense</c>, ...).</summary>
    public abstract string Kind { get; }

    /// <summary>
    /// How this layer's weights (and those of the layers under it) are initialised; null inherits from the
    /// enclosing layer, and at the top from <see cref="Initializer.Init"/>'s default.
    /// </summary>
    public Init? WeightInit { get; init; }

    /// <summary>This layer with the given name.</summary>
    public Layer Named(string name) => this with { Name = name };

    /// <summary>This layer with the given weight initialisation.</summary>
    public Layer InitWith(Init init) => this with { WeightInit = init };
}

/// <summary>A layer without children, whose output shape and parameter shapes follow from its input shape.</summary>
public abstract record LeafLayer : Layer
{
    /// <summary>
    /// The output shape for one sample (no batch axis) of shape <paramref name="input"/>.
    /// </summary>
    /// <param name="input">The input shape of one sample.</param>
    /// <param name="path">The layer's path, for error messages.</param>
    /// <param name="strict">When true, a window that does not tile its input is an error instead of being floored.</param>
    /// <exception cref="ShapeException">The input does not fit; the message names the path, the shapes and the formula.</exception>
    public abstract Shape OutputShape(Shape input, string path, bool strict);

    /// <summary>The parameters this layer owns for a given input shape, by local name (<c>weight</c>, <c>bias</c>).</summary>
    public virtual IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input) => Array.Empty<ParameterSpec>();

    /// <summary>The state this layer carries between calls (batch-norm running statistics), by local name.</summary>
    public virtual IReadOnlyList<StateSpec> StateSpecs(Shape input) => Array.Empty<StateSpec>();
}

/// <summary>The shape and initialisation fan of one parameter of a leaf layer.</summary>
/// <param name="Name">Local name inside the layer (<c>weight</c>, <c>bias</c>).</param>
/// <param name="Shape">The parameter's shape.</param>
/// <param name="FanIn">Inputs feeding one output unit (for PyTorch's default and He initialisation).</param>
/// <param name="FanOut">Outputs fed by one input unit (for Glorot initialisation).</param>
/// <param name="IsBias">True for a bias, which initialisers treat apart.</param>
public sealed record ParameterSpec(string Name, Shape Shape, int FanIn, int FanOut, bool IsBias)
{
    /// <summary>A fixed initial value that overrides the initialiser (batch-norm γ is ones, β zeros).</summary>
    public ParameterInit Init { get; init; } = ParameterInit.FromInitializer;
}

/// <summary>Whether a parameter takes its initial value from the initialiser or a fixed constant.</summary>
public enum ParameterInit
{
    /// <summary>Drawn by the layer's <see cref="Dsl.Init"/>.</summary>
    FromInitializer,
    /// <summary>All ones.</summary>
    Ones,
    /// <summary>All zeros.</summary>
    Zeros,
}

/// <summary>The shape and initial value of one state tensor of a leaf layer.</summary>
/// <param name="Name">Local name inside the layer (<c>running_mean</c>).</param>
/// <param name="Shape">The tensor's shape.</param>
/// <param name="InitialValue">Every element's initial value.</param>
public sealed record StateSpec(string Name, Shape Shape, float InitialValue);
