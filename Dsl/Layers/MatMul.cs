using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// Multiplies each of a sample's matrices (its last two axes) on the right by a matrix of its own: a sample
/// <c>[..., R, K]</c> gives <c>[..., R, Units]</c>, matrix <c>i</c> times <c>weight[i]</c>, the parameter <c>weight</c>
/// <c>[..., K, Units]</c> (the sample's leading axes, then K x Units), the same for every sample of a batch. ONNX's MatMul by a
/// constant of rank above 2 (the importer reads that into it), PyTorch's <c>torch.matmul(x, self.weight)</c>. A flat
/// sample is <see cref="Dense"/>'s.
/// </summary>
/// <param name="Units">Columns of each output matrix.</param>
public sealed record MatMul(int Units) : LeafLayer
{
    /// <inheritdoc />
    public override string Kind => "matmul";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (Units < 1) throw new ShapeException($"Layer '{path}': MatMul needs units >= 1; found {Units}.");
        if (input.Rank < 2)
            throw new ShapeException($"Layer '{path}': MatMul expects matrices [..., rows, columns] per sample (rank 2 or more); found {input}. A flat input is Dense's.");
        var dims = input.ToArray();
        dims[^1] = Units;
        return new Shape(dims);
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterSpec> ParameterSpecs(Shape input)
    {
        var dims = input.ToArray();
        int k = dims[^1];
        dims[^2] = k;
        dims[^1] = Units;
        return new[] { new ParameterSpec("weight", new Shape(dims), k, Units, false) };
    }
}
