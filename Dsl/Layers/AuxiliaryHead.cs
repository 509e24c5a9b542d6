using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// An auxiliary classifier tapped off the trunk (GoogLeNet's two side heads): the identity on its input for inference and
/// for every interpreter that computes the main output (the inference plan, ONNX export, predictors), while a training-mode
/// pass also computes <c>Head(x)</c> as an extra output. The training loss is the main loss plus, for each head,
/// <see cref="Weight"/> times the same loss of the head's output against the same labels; the head's gradient enters the
/// trunk here. The head's parameters live under <c>aux1/head/...</c> (the layer's name, then <c>head</c>).
/// </summary>
/// <remarks>
/// The head must give the network's output shape (its loss uses the network's labels), and may not hold another head.
/// </remarks>
/// <param name="Head">The auxiliary classifier, fed by the trunk's value at this point.</param>
/// <param name="Weight">The weight of the head's loss in the total (0.3 in Szegedy et al.); finite and not negative.</param>
public sealed record AuxiliaryHead(Layer Head, float Weight) : Layer
{
    /// <summary>The path segment of the head under this layer.</summary>
    public const string HeadSegment = "head";

    /// <inheritdoc />
    public override string Kind => "aux";
}

/// <summary>One auxiliary head's output in a training-mode pass.</summary>
/// <param name="Path">The path of the <see cref="AuxiliaryHead"/> layer (<c>aux1</c>).</param>
/// <param name="Weight">The weight of its loss in the total.</param>
/// <param name="Output">The head's output for the batch, the network's output shape.</param>
public sealed record HeadOutput(string Path, float Weight, Tensor Output);

/// <summary>The shape rules of auxiliary heads that need the whole tree: checked once the network is resolved.</summary>
internal static class HeadRules
{
    /// <summary>The nodes of the auxiliary heads under <paramref name="node"/>, in execution order.</summary>
    public static IEnumerable<Node> Under(Node node) =>
        node.Layer is AuxiliaryHead ? new[] { node } : node.Children.SelectMany(Under);

    /// <summary>Every head gives the network's output shape and holds no head of its own.</summary>
    public static void Check(Node root)
    {
        foreach (var aux in Under(root))
        {
            var head = aux.Children[0];
            if (head.Output != root.Output)
                throw new ShapeException($"Layer '{aux.Path}': an auxiliary head must give the network's output shape {root.Output} (its loss uses the same labels); " +
                    $"its head '{head.Path}' gives {head.Output}.");
            if (Under(head).FirstOrDefault() is { } inner)
                throw new ShapeException($"Layer '{inner.Path}': an auxiliary head inside the auxiliary head '{aux.Path}'; heads tap the trunk only.");
        }
    }
}
