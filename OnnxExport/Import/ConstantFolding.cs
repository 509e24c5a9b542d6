using Cnn.Onnx.Proto;
using AttributeType = Cnn.Onnx.Proto.AttributeProto.Types.AttributeType;
using DataType = Cnn.Onnx.Proto.TensorProto.Types.DataType;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Onnx;

/// <summary>
/// Evaluates the operations exporters use to compute static shapes and constants (torch's <c>x.view(x.size(0), -1)</c>
/// becomes <c>Shape, Gather, Unsqueeze, Concat, Reshape</c>): a node all of whose inputs are known before the graph
/// runs, or that reads only the shape of a run-time value, is evaluated here instead of becoming a layer. Inputs that
/// newer operator sets pass as tensors and older ones as attributes (Unsqueeze and Squeeze axes from opset 13, Slice
/// bounds from opset 10) are read from either.
/// </summary>
internal static class ConstantFolding
{
    /// <summary>The operations folded when their inputs are known (Shape: when its input's shape is).</summary>
    public static readonly IReadOnlySet<string> Operations = new HashSet<string>(StringComparer.Ordinal)
    {
        "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Cast", "Slice", "Identity", "Add", "Sub", "Mul", "Div", "ConstantOfShape", "Size", "Transpose",
    };

    /// <summary>
    /// Splits <paramref name="nodes"/> into the nodes that compute from the data and the nodes of shape subgraphs (by
    /// output), folding at once those whose inputs are all constants (into <paramref name="known"/>). Identity nodes
    /// that alias a constant are recorded in <paramref name="aliases"/>.
    /// </summary>
    public static (List<NodeProto> Data, Dictionary<string, NodeProto> Deferred) Split(
        IReadOnlyList<NodeProto> nodes, Dictionary<string, OnnxConstant> known, Dictionary<string, string> aliases, long opset, string source)
    {
        var deferred = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        var remaining = nodes.ToList();
        bool changed = true;
        while (changed)
        {
            changed = false;
            for (int i = 0; i < remaining.Count; i++)
            {
                var node = remaining[i];
                if (!Operations.Contains(node.OpType) || node.Output.Count == 0) continue;
                var inputs = node.Input.Where(x => x.Length > 0).ToArray();
                bool allKnown = inputs.All(known.ContainsKey);
                bool shapeOnly = !allKnown && inputs.All(x => known.ContainsKey(x) || deferred.ContainsKey(x) || node.OpType is "Shape" or "Size");
                if (!allKnown && !shapeOnly) continue;
                if (allKnown)
                {
                    var results = Evaluate(node, node.Input.Select(x => x.Length == 0 ? null : known[x]).ToArray(), opset, source);
                    for (int o = 0; o < node.Output.Count && o < results.Length; o++)
                        if (node.Output[o].Length > 0 && !known.TryAdd(node.Output[o], results[o] with { Name = node.Output[o] }))
                            throw new FormatException($"{OnnxImporter.Where(source, node)}: value '{node.Output[o]}' is defined twice.");
                    if (node.OpType == "Identity") aliases[node.Output[0]] = aliases.GetValueOrDefault(node.Input[0], node.Input[0]);
                }
                else
                {
                    foreach (var y in node.Output.Where(y => y.Length > 0))
                        if (!deferred.TryAdd(y, node)) throw new FormatException($"{OnnxImporter.Where(source, node)}: value '{y}' is defined twice.");
                }
                remaining.RemoveAt(i--);
                changed = true;
            }
        }
        return (remaining, deferred);
    }

    /// <summary>The outputs of <paramref name="node"/> from its inputs (null for an absent optional one).</summary>
    public static OnnxConstant[] Evaluate(NodeProto node, OnnxConstant?[] inputs, long opset, string source)
    {
        string where = OnnxImporter.Where(source, node);
        OnnxConstant In(int i) => i < inputs.Length && inputs[i] is { } c ? c : throw new FormatException($"{where} has no input {i}.");
        long[]? Ints(int i, string attribute)
        {
            if (i >= 0 && i < inputs.Length && inputs[i] is { } c)
                return c.Integers ?? throw new FormatException($"{where}: input {i} ('{c.Name}') should hold integers.");
            var a = node.Attribute.FirstOrDefault(x => x.Name == attribute);
            return a is null ? null : a.Type == AttributeType.Ints ? a.Ints.ToArray() : throw new FormatException($"{where}: attribute '{attribute}' should be ints.");
        }
        long Int(string attribute, long fallback) => node.Attribute.FirstOrDefault(x => x.Name == attribute) is { Type: AttributeType.Int } a ? a.I : fallback;
        try
        {
            return new[] { node.OpType switch
            {
                "Identity" => In(0),
                "Cast" => Cast(In(0), Int("to", (long)DataType.Float), where),
                "Shape" => Sliced(In(0).Dims, Int("start", 0), node.Attribute.Any(a => a.Name == "end") ? Int("end", 0) : long.MaxValue),
                "Size" => In(0).Dims.Any(d => d == ConstantTable.Batch) ? throw Unsupported(node, source, "the size of a tensor whose batch size is not fixed")
                    : Tensor.Of(Array.Empty<long>(), new[] { In(0).Dims.Aggregate(1L, (a, b) => a * b) }),
                "Gather" => Gather(In(0), In(1), Int("axis", 0), where),
                "Unsqueeze" => Unsqueeze(In(0), Ints(1, "axes") ?? throw new FormatException($"{where} has no axes."), where),
                "Squeeze" => Squeeze(In(0), Ints(1, "axes"), where),
                "Concat" => Concat(inputs.OfType<OnnxConstant>().ToArray(), Int("axis", 0), where),
                "Reshape" => ReshapeTo(In(0), In(1).Integers ?? throw new FormatException($"{where}: the shape should hold integers."), Int("allowzero", 0) != 0, where),
                "Slice" => opset < 10
                    ? Slice(In(0), Ints(-1, "starts")!, Ints(-1, "ends")!, Ints(-1, "axes"), null, where)
                    : Slice(In(0), Ints(1, "starts")!, Ints(2, "ends")!, Ints(3, "axes"), Ints(4, "steps"), where),
                "Add" or "Sub" or "Mul" or "Div" => Arithmetic(node, In(0), In(1), source),
                "ConstantOfShape" => ConstantOfShape(node, In(0), source),
                "Transpose" => Transpose(In(0), Ints(-1, "perm"), where),
                _ => throw Unsupported(node, source, "an operation that cannot be folded into a constant"),
            } };
        }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or OverflowException)
        {
            throw new FormatException($"{where}: its constant inputs do not fit together ({e.Message}).", e);
        }
    }

    private static OnnxUnsupportedException Unsupported(NodeProto node, string source, string what) => OnnxImporter.Unsupported(source, node, what);

    /// <summary>The most elements a folded constant may have: a hostile file must not make a small graph allocate gigabytes.</summary>
    public const long MaxElements = 1 << 24;

    private static void CheckSize(long elements, string where)
    {
        if (elements > MaxElements)
            throw new FormatException($"{where}: folding it would make a constant of {elements} elements; the importer folds at most {MaxElements}.");
    }

    /// <summary>Small helpers over tensors that hold either floats or integers.</summary>
    private static class Tensor
    {
        public static OnnxConstant Of(long[] dims, long[] values) => new("", dims, null, values);

        public static OnnxConstant Like(OnnxConstant like, long[] dims, int[] take) => like.Floats is { } f
            ? new OnnxConstant("", dims, take.Select(i => f[i]).ToArray(), null)
            : new OnnxConstant("", dims, null, take.Select(i => like.Integers![i]).ToArray());

        public static long Size(long[] dims) => dims.Aggregate(1L, (a, b) => checked(a * b));

        public static long[] Strides(long[] dims)
        {
            var s = new long[dims.Length];
            long acc = 1;
            for (int i = dims.Length - 1; i >= 0; i--)
            {
                s[i] = acc;
                acc = checked(acc * dims[i]);
            }
            return s;
        }
    }

    private static OnnxConstant Sliced(long[] dims, long start, long end)
    {
        long r = dims.Length;
        long Clamp(long v) => Math.Clamp(v < 0 ? v + r : v, 0, r);
        long s = Clamp(start), e = Clamp(end == long.MaxValue ? r : end);
        var values = dims.Skip((int)s).Take((int)Math.Max(0, e - s)).ToArray();
        return Tensor.Of(new long[] { values.Length }, values);
    }

    private static OnnxConstant Cast(OnnxConstant x, long to, string where)
    {
        switch ((DataType)to)
        {
            case DataType.Float or DataType.Double or DataType.Float16:
                if (x.Integers is { } ints && ints.Contains(ConstantTable.Batch))
                    throw new OnnxUnsupportedException($"{where}: a cast of the batch size, which is not fixed, to a float.");
                return new OnnxConstant("", x.Dims, x.Floats ?? x.Integers!.Select(v => (float)v).ToArray(), null);
            case DataType.Int64 or DataType.Int32 or DataType.Int16 or DataType.Int8 or DataType.Uint8 or DataType.Uint16 or DataType.Uint32 or DataType.Uint64:
                return new OnnxConstant("", x.Dims, null, x.Integers ?? x.Floats!.Select(v => (long)v).ToArray());
            case DataType.Bool:
                return new OnnxConstant("", x.Dims, null, (x.Integers ?? x.Floats!.Select(v => (long)v).ToArray()).Select(v => v != 0 ? 1L : 0L).ToArray());
            default:
                throw new OnnxUnsupportedException($"{where}: a cast to data type {(DataType)to}, which the importer does not fold.");
        }
    }

    private static long Axis(long axis, int rank, string where) =>
        axis >= -rank && axis < rank ? (axis < 0 ? axis + rank : axis) : throw new FormatException($"{where}: axis {axis} is out of range for rank {rank}.");

    private static OnnxConstant Gather(OnnxConstant data, OnnxConstant indices, long axisAttribute, string where)
    {
        int r = data.Dims.Length;
        if (r == 0) throw new FormatException($"{where}: Gather from a scalar.");
        int axis = (int)Axis(axisAttribute, r, where);
        var idx = indices.Integers ?? throw new FormatException($"{where}: indices should be integers.");
        long n = data.Dims[axis];
        var dims = data.Dims.Take(axis).Concat(indices.Dims).Concat(data.Dims.Skip(axis + 1)).ToArray();
        long outer = Tensor.Size(data.Dims.Take(axis).ToArray()), inner = Tensor.Size(data.Dims.Skip(axis + 1).ToArray());
        CheckSize(outer * idx.Length * inner, where);
        var take = new List<int>();
        for (long o = 0; o < outer; o++)
            foreach (var k in idx)
            {
                long j = k < 0 ? k + n : k;
                if (j < 0 || j >= n) throw new FormatException($"{where}: index {k} is out of range for an axis of {n}.");
                for (long i = 0; i < inner; i++) take.Add(checked((int)((o * n + j) * inner + i)));
            }
        return Tensor.Like(data, dims, take.ToArray());
    }

    private static OnnxConstant Unsqueeze(OnnxConstant x, long[] axes, string where)
    {
        int rank = x.Dims.Length + axes.Length;
        var normalized = axes.Select(a => Axis(a, rank, where)).ToHashSet();
        if (normalized.Count != axes.Length) throw new FormatException($"{where}: repeated axes [{string.Join(", ", axes)}].");
        var dims = new long[rank];
        for (int i = 0, j = 0; i < rank; i++) dims[i] = normalized.Contains(i) ? 1 : x.Dims[j++];
        return x with { Dims = dims };
    }

    private static OnnxConstant Squeeze(OnnxConstant x, long[]? axes, string where)
    {
        int rank = x.Dims.Length;
        var drop = axes is null ? Enumerable.Range(0, rank).Where(i => x.Dims[i] == 1).Select(i => (long)i).ToHashSet() : axes.Select(a => Axis(a, rank, where)).ToHashSet();
        if (drop.Any(i => x.Dims[i] != 1)) throw new FormatException($"{where}: cannot squeeze an axis whose size is not 1.");
        return x with { Dims = x.Dims.Where((_, i) => !drop.Contains(i)).ToArray() };
    }

    private static OnnxConstant Concat(OnnxConstant[] parts, long axisAttribute, string where)
    {
        if (parts.Length == 0) throw new FormatException($"{where}: Concat of nothing.");
        int r = parts[0].Dims.Length;
        int axis = (int)Axis(axisAttribute, r, where);
        bool floats = parts[0].Floats is not null;
        if (parts.Any(p => p.Dims.Length != r || (p.Floats is not null) != floats || Enumerable.Range(0, r).Any(i => i != axis && p.Dims[i] != parts[0].Dims[i])))
            throw new FormatException($"{where}: operands of different types or shapes off the axis {axis}.");
        var dims = parts[0].Dims.ToArray();
        dims[axis] = parts.Sum(p => p.Dims[axis]);
        long outer = Tensor.Size(dims.Take(axis).ToArray());
        var f = new List<float>();
        var l = new List<long>();
        for (long o = 0; o < outer; o++)
            foreach (var p in parts)
            {
                long chunk = Tensor.Size(p.Dims.Skip(axis).ToArray());
                if (floats) f.AddRange(p.Floats!.Skip((int)(o * chunk)).Take((int)chunk));
                else l.AddRange(p.Integers!.Skip((int)(o * chunk)).Take((int)chunk));
            }
        return new OnnxConstant("", dims, floats ? f.ToArray() : null, floats ? null : l.ToArray());
    }

    private static OnnxConstant ReshapeTo(OnnxConstant x, long[] target, bool allowZero, string where)
    {
        var dims = target.Select((t, i) => t == 0 && !allowZero ? (i < x.Dims.Length ? x.Dims[i] : throw new FormatException($"{where}: shape entry {i} is 0 but the input has no axis {i}.")) : t).ToArray();
        int unknown = Array.IndexOf(dims, -1L);
        long known = dims.Where(d => d != -1).Aggregate(1L, (a, b) => a * b);
        if (unknown >= 0) dims[unknown] = known == 0 ? 0 : x.Count / known;
        if (dims.Any(d => d < 0) || Tensor.Size(dims) != x.Count)
            throw new FormatException($"{where}: cannot reshape a constant of shape [{string.Join(", ", x.Dims)}] to [{string.Join(", ", target)}].");
        return x with { Dims = dims };
    }

    private static OnnxConstant Slice(OnnxConstant x, long[] starts, long[] ends, long[]? axes, long[]? steps, string where)
    {
        int r = x.Dims.Length;
        axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        steps ??= Enumerable.Repeat(1L, starts.Length).ToArray();
        if (ends.Length != starts.Length || axes.Length != starts.Length || steps.Length != starts.Length)
            throw new FormatException($"{where}: starts, ends, axes and steps differ in length.");
        var first = new long[r];
        var step = Enumerable.Repeat(1L, r).ToArray();
        var dims = x.Dims.ToArray();
        for (int k = 0; k < starts.Length; k++)
        {
            int a = (int)Axis(axes[k], r, where);
            long n = x.Dims[a], s = steps[k];
            if (s == 0) throw new FormatException($"{where}: a step of 0.");
            long Clamp(long v, long low, long high) => Math.Clamp(v < 0 ? v + n : v, low, high);
            long b = s > 0 ? Clamp(starts[k], 0, n) : Clamp(starts[k], -1, n - 1);
            long e = s > 0 ? Clamp(ends[k], 0, n) : Clamp(ends[k], -1, n - 1);
            first[a] = b;
            step[a] = s;
            dims[a] = Math.Max(0, s > 0 ? (e - b + s - 1) / s : (b - e - s - 1) / -s);
        }
        var stride = Tensor.Strides(x.Dims);
        var take = new int[Tensor.Size(dims)];
        for (int o = 0; o < take.Length; o++)
        {
            long rest = o, source = 0;
            for (int i = r - 1; i >= 0; i--)
            {
                long index = rest % dims[i];
                rest /= dims[i];
                source += (first[i] + index * step[i]) * stride[i];
            }
            take[o] = checked((int)source);
        }
        return Tensor.Like(x, dims, take);
    }

    private static OnnxConstant Arithmetic(NodeProto node, OnnxConstant a, OnnxConstant b, string source)
    {
        string where = OnnxImporter.Where(source, node);
        int r = Math.Max(a.Dims.Length, b.Dims.Length);
        long[] Pad(long[] d) => Enumerable.Repeat(1L, r - d.Length).Concat(d).ToArray();
        long[] da = Pad(a.Dims), db = Pad(b.Dims);
        var dims = new long[r];
        for (int i = 0; i < r; i++)
            dims[i] = da[i] == db[i] || db[i] == 1 ? da[i] : da[i] == 1 ? db[i] : throw new FormatException($"{where}: shapes [{string.Join(", ", a.Dims)}] and [{string.Join(", ", b.Dims)}] do not broadcast.");
        long[] sa = Tensor.Strides(da), sb = Tensor.Strides(db);
        long n = Tensor.Size(dims);
        CheckSize(n, where);
        var ia = new int[n];
        var ib = new int[n];
        for (long o = 0; o < n; o++)
        {
            long rest = o, pa = 0, pb = 0;
            for (int i = r - 1; i >= 0; i--)
            {
                long index = rest % dims[i];
                rest /= dims[i];
                if (da[i] != 1) pa += index * sa[i];
                if (db[i] != 1) pb += index * sb[i];
            }
            ia[o] = checked((int)pa);
            ib[o] = checked((int)pb);
        }
        if (a.Floats is { } fa && b.Floats is { } fb)
        {
            Func<float, float, float> op = node.OpType switch { "Add" => (x, y) => x + y, "Sub" => (x, y) => x - y, "Mul" => (x, y) => x * y, _ => (x, y) => x / y };
            return new OnnxConstant("", dims, Enumerable.Range(0, (int)n).Select(i => op(fa[ia[i]], fb[ib[i]])).ToArray(), null);
        }
        if (a.Integers is not { } la || b.Integers is not { } lb) throw new FormatException($"{where}: operands of different types.");
        if (la.Contains(ConstantTable.Batch) || lb.Contains(ConstantTable.Batch))
            throw Unsupported(node, source, "arithmetic on the batch size, which the model does not fix");
        Func<long, long, long> iop = node.OpType switch
        {
            "Add" => (x, y) => checked(x + y),
            "Sub" => (x, y) => checked(x - y),
            "Mul" => (x, y) => checked(x * y),
            _ => (x, y) => y == 0 ? throw new FormatException($"{where}: integer division by zero.") : (long)Math.Floor((double)x / y),
        };
        return new OnnxConstant("", dims, null, Enumerable.Range(0, (int)n).Select(i => iop(la[ia[i]], lb[ib[i]])).ToArray());
    }

    private static OnnxConstant Transpose(OnnxConstant x, long[]? perm, string where)
    {
        int r = x.Dims.Length;
        perm ??= Enumerable.Range(0, r).Reverse().Select(i => (long)i).ToArray();
        if (perm.Length != r || perm.Distinct().Count() != r || perm.Any(p => p < 0 || p >= r))
            throw new FormatException($"{where}: perm [{string.Join(", ", perm)}] is not a permutation of {r} axes.");
        var dims = perm.Select(p => x.Dims[p]).ToArray();
        var stride = Tensor.Strides(x.Dims);
        var take = new int[x.Count];
        for (int o = 0; o < take.Length; o++)
        {
            long rest = o, source = 0;
            for (int i = r - 1; i >= 0; i--)
            {
                source += rest % dims[i] * stride[perm[i]];
                rest /= dims[i];
            }
            take[o] = checked((int)source);
        }
        return Tensor.Like(x, dims, take);
    }

    private static OnnxConstant ConstantOfShape(NodeProto node, OnnxConstant shape, string source)
    {
        var dims = shape.Integers ?? throw new FormatException($"{OnnxImporter.Where(source, node)}: the shape should hold integers.");
        if (dims.Contains(ConstantTable.Batch)) throw Unsupported(node, source, "a constant as large as the batch, which the model does not fix");
        long n = Tensor.Size(dims);
        CheckSize(n, OnnxImporter.Where(source, node));
        var value = node.Attribute.FirstOrDefault(a => a.Name == "value") is { T: { } t } ? OnnxConstant.Read(t, source) : new OnnxConstant("", new long[] { 1 }, new[] { 0f }, null);
        return value.Floats is { } f
            ? new OnnxConstant("", dims, Enumerable.Repeat(f[0], (int)n).ToArray(), null)
            : new OnnxConstant("", dims, null, Enumerable.Repeat(value.Integers![0], (int)n).ToArray());
    }
}
