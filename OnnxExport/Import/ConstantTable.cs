using Cnn.Core;
using Cnn.Onnx.Proto;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Onnx;

/// <summary>
/// The values of a graph known before it runs: initializers, Constant nodes, what <see cref="ConstantFolding"/>
/// computed from them, and the shape subgraphs (<c>Shape</c>, <c>Gather</c>, <c>Unsqueeze</c>, <c>Concat</c> ...
/// around a view or flatten) whose results depend on the shapes of values computed at run time. Those are evaluated
/// when a reader first asks for them, once the walk has inferred the shapes they read; a batch dimension that is
/// not fixed is carried through them as <see cref="Batch"/>.
/// </summary>
internal sealed class ConstantTable(Dictionary<string, OnnxConstant> known, IReadOnlyDictionary<string, NodeProto> deferred, long opset, string source)
{
    /// <summary>An integer that stands for the (dynamic) batch size in a folded shape.</summary>
    public const long Batch = long.MinValue + 1;

    /// <summary>The per-sample shape of each run-time value the walk has reached.</summary>
    public Dictionary<string, Shape> RuntimeShapes { get; } = new(StringComparer.Ordinal);

    /// <summary>The batch size of the input, when the model fixes it.</summary>
    public int? StaticBatch { get; init; }

    /// <summary>Whether <paramref name="name"/> is known before the graph runs (possibly only once shapes are inferred).</summary>
    public bool Contains(string name) => known.ContainsKey(name) || deferred.ContainsKey(name);

    /// <summary>The value <paramref name="name"/>, evaluating its shape subgraph if need be; false when it is computed from data.</summary>
    public bool TryGet(string name, out OnnxConstant value)
    {
        if (known.TryGetValue(name, out value!)) return true;
        if (!deferred.TryGetValue(name, out var node)) return false;
        var inputs = node.Input.Select(x => x.Length == 0 ? null : Resolve(x, node)).ToArray();
        var results = ConstantFolding.Evaluate(node, inputs, opset, source);
        for (int i = 0; i < node.Output.Count && i < results.Length; i++)
            if (node.Output[i].Length > 0) known[node.Output[i]] = results[i] with { Name = node.Output[i] };
        value = known[name];
        return true;
    }

    private OnnxConstant? Resolve(string input, NodeProto user)
    {
        if (TryGet(input, out var c)) return c;
        if (user.OpType != "Shape")
            throw new FormatException($"{OnnxImporter.Where(source, user)} reads '{input}', which is computed at run time.");
        if (!RuntimeShapes.TryGetValue(input, out var shape))
            throw OnnxImporter.Unsupported(source, user, $"the shape of '{input}' before the importer has inferred it (a shape subgraph that reads a value after its use)");
        long batch = StaticBatch is int b ? b : Batch;
        var dims = new long[shape.Rank + 1];
        dims[0] = batch;
        for (int i = 0; i < shape.Rank; i++) dims[i + 1] = shape[i];
        // A placeholder with no elements: Shape reads only its input's dimensions.
        return new OnnxConstant(input, dims, null, Array.Empty<long>());
    }
}
