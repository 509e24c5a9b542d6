using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

/// <summary>
/// Combines each sample with a tensor of its own, <c>x op value</c> (ONNX's Add, Sub, Mul or Div by a constant, PyTorch's
/// <c>x + self.value</c>), the tensor broadcast over the sample: <see cref="Shape"/> has the sample's rank and on each axis the
/// sample's size or 1 (<c>[1, 1, W]</c> for one value per column, <c>[C, 1, 1]</c> per channel, all ones for one value). The
/// tensor is the layer's parameter <c>value</c>, the same for every sample of a batch; it starts at the operation's identity
/// (0 for a sum or a difference, 1 for a product or a quotient), trains like a bias, and stays fixed under <see cref="Freeze"/>.
/// The importer reads a constant operand into it when no convolution, Dense or batch normalisation before it takes the constant.
/// </summary>
/// <param name="Op">The operation, with the input on the left: <c>x - value</c>, <c>x / value</c>.</param>
/// <param name="Shape">The shape of <c>value</c>: the sample's rank, each axis the sample's size or 1.</param>
public sealed record ConstantOperand(BinaryOp Op, Shape Shape) : LeafLayer
{
    /// <summary>Combines with a tensor of the given dimensions (the sample's rank, each the sample's size or 1).</summary>
    public ConstantOperand(BinaryOp op, params int[] dims) : this(op, new Shape(dims)) { }

    /// <inheritdoc />
    public override string Kind => "constant";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (!Enum.IsDefined(Op)) throw new ShapeException($"Layer '{path}': ConstantOperand has no operation {Op}; expected Add, Subtract, Multiply or Divide.");
        bool fits = Shape.Rank == input.Rank && Enumerable.Range(0, input.Rank).All(i => Shape[i] == 1 || Shape[i] == input[i]);
        return fits ? input
            : throw new ShapeException(
                $"Layer '{path}': ConstantOperand's value of shape {Shape} does not broadcast over a sample of shape {input}; it needs the sample's rank {input.Rank} and on each axis the sample's size or 1.");
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input) => new[]
    {
        new ParameterSpec("value", Shape, 1, 1, true) { Init = Op is BinaryOp.Multiply or BinaryOp.Divide ? ParameterInit.Ones : ParameterInit.Zeros },
    };
}
