using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;
/// <summary>
/// Per-chunk partial sums of a batch-parallel reduction (a weight gradient and a bias gradient): each chunk of
/// <see cref="BatchParallel.For(int, Action{int, int, int})"/> sums into its own pooled, zeroed arrays, and <see cref="Sum"/> adds them in chunk order,
/// so the result depends only on the batch and the worker count, never on timing. Shared by the convolution kernels.
/// </summary>
internal sealed class ChunkPartials : IDisposable
{
    private readonly float[]?[] _weight, _bias;
    private readonly int _weightLength, _biasLength;

    /// <param name="chunks">The number of chunks (<see cref="BatchParallel.Chunks"/>).</param>
    /// <param name="weightLength">Elements of the weight gradient.</param>
    /// <param name="biasLength">Elements of the bias gradient; 0 without one.</param>
    public ChunkPartials(int chunks, int weightLength, int biasLength)
    {
        _weight = new float[chunks][];
        _bias = new float[chunks][];
        _weightLength = weightLength;
        _biasLength = biasLength;
    }

    /// <summary>
    /// The zeroed partial sums of one chunk (pooled arrays: only the first weight-length and bias-length elements are
    /// theirs); called once by the chunk's worker.
    /// </summary>
    public (float[] Weight, float[] Bias) Start(int chunk)
    {
        var w = _weight[chunk] = Workspace.Rent(_weightLength);
        var b = _bias[chunk] = Workspace.Rent(Math.Max(1, _biasLength));
        w.AsSpan(0, _weightLength).Clear();
        b.AsSpan(0, _biasLength).Clear();
        return (w, b);
    }

    /// <summary>The totals, chunk 0 first: new arrays the caller owns (the bias total is null without a bias).</summary>
    public (float[] Weight, float[]? Bias) Sum() => (Total(_weight, _weightLength), _biasLength > 0 ? Total(_bias, _biasLength) : null);

    private static float[] Total(float[]?[] parts, int length)
    {
        var total = TensorArena.Zeroed<float>(length);
        foreach (var part in parts)
            if (part is not null) TensorPrimitives.Add(total, part.AsSpan(0, length), total);
        return total;
    }

    /// <summary>Returns every partial array to the pool.</summary>
    public void Dispose()
    {
        for (int i = 0; i < _weight.Length; i++)
        {
            if (_weight[i] is { } w) Workspace.Return(w);
            if (_bias[i] is { } b) Workspace.Return(b);
            _weight[i] = _bias[i] = null;
        }
    }
}
