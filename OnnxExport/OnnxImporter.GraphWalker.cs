using Cnn.Core;
using Cnn.Onnx.Proto;
using AttributeType = Cnn.Onnx.Proto.AttributeProto.Types.AttributeType;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Onnx;

// The importer's walk over the graph: chains, forks and the joins where they meet.
public static partial class OnnxImporter
{
    /// <summary>
    /// Walks the data flow from the input to the output: a chain of one-input nodes, where a value read by several
    /// nodes is a fork whose branches must meet again in one join node (the fork's immediate post-dominator).
    /// </summary>
    private sealed class GraphWalker
    {
        private readonly NodeProto[] _nodes;
        private readonly ConstantTable _constants;
        private readonly List<string> _rewrites;
        private readonly string _input;
        private readonly string _source;
        private readonly OnnxLayerReader _reader;
        private readonly Dictionary<string, int> _producer = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<int>> _consumers = new(StringComparer.Ordinal);
        private readonly int[] _rank;
        private readonly bool[] _used;

        public GraphWalker(NodeProto[] nodes, ConstantTable constants, string input, string source, OnnxLayerReader reader, List<string> rewrites)
        {
            _rewrites = rewrites;
            _nodes = nodes;
            _constants = constants;
            _input = input;
            _source = source;
            _reader = reader;
            _used = new bool[nodes.Length];
            for (int i = 0; i < nodes.Length; i++)
            {
                var node = nodes[i];
                if (node.Output.Count == 0 || node.Output[0].Length == 0) throw new FormatException($"{Where(source, node)} has no output.");
                foreach (var y in node.Output.Where(y => y.Length > 0))
                    if (y == input || constants.Contains(y) || !_producer.TryAdd(y, i))
                        throw new FormatException($"{Where(source, node)}: value '{y}' is defined twice.");
            }
            for (int i = 0; i < nodes.Length; i++)
                foreach (var x in DataInputs(i))
                {
                    if (x != input && !_producer.ContainsKey(x))
                        throw new FormatException($"{Where(source, nodes[i])} reads '{x}', which is not the graph input, an initializer, a constant or the output of a node.");
                    if (!_consumers.TryGetValue(x, out var list)) _consumers[x] = list = new List<int>();
                    list.Add(i);
                }
            _rank = TopologicalRanks();
        }

        /// <summary>The items from the input to <paramref name="output"/>; every node must lie on the way.</summary>
        public List<ImportItem> Walk(string output, Shape inputShape)
        {
            if (output != _input && !_producer.ContainsKey(output))
                throw new FormatException($"ONNX model from {_source}: output '{output}' is produced by no node.");
            var region = Enumerable.Range(0, _nodes.Length).ToHashSet();
            var shape = inputShape;
            var items = Chain(_input, output, region, ref shape, 0);
            _constants.RuntimeShapes[output] = shape;
            int unused = Array.IndexOf(_used, false);
            if (unused >= 0)
                throw Unsupported(_source, _nodes[unused], "an output that does not lead to the graph output (the graph has one input and one output, and every node lies between them)");
            return items;
        }

        private IEnumerable<string> DataInputs(int node) => _nodes[node].Input.Where(x => x.Length > 0 && !_constants.Contains(x));

        private IEnumerable<int> Consumers(string value, HashSet<int> region) =>
            _consumers.TryGetValue(value, out var list) ? list.Where(region.Contains) : Enumerable.Empty<int>();

        private string Out(int node) => _nodes[node].Output[0];

        private bool IsJoin(int node) => OnnxLayerReader.JoinOperations.Contains(_nodes[node].OpType);

        /// <summary>Kahn's algorithm: each node's position in a topological order; a cycle is an error.</summary>
        private int[] TopologicalRanks()
        {
            var pending = new int[_nodes.Length];
            for (int i = 0; i < _nodes.Length; i++) pending[i] = DataInputs(i).Count(x => x != _input);
            var ready = new Queue<int>(Enumerable.Range(0, _nodes.Length).Where(i => pending[i] == 0));
            var rank = Enumerable.Repeat(-1, _nodes.Length).ToArray();
            int next = 0;
            while (ready.Count > 0)
            {
                int n = ready.Dequeue();
                rank[n] = next++;
                foreach (var y in _nodes[n].Output.Where(y => y.Length > 0))
                    if (_consumers.TryGetValue(y, out var list))
                        foreach (var c in list)
                            if (--pending[c] == 0) ready.Enqueue(c);
            }
            int cyclic = Array.IndexOf(rank, -1);
            if (cyclic >= 0) throw new FormatException($"{Where(_source, _nodes[cyclic])} is part of a cycle; an ONNX graph must be acyclic.");
            return rank;
        }

        /// <summary>Why a join with a constant operand is not read: a constant with a batch axis differs from sample to sample.</summary>
        private string ConstantJoinReason(NodeProto join, Shape shape)
        {
            foreach (var x in join.Input)
                if (x.Length > 0 && _constants.TryGet(x, out var c) && c.Dims.Length == shape.Rank + 1 && c.Dims[0] != 1)
                    return $"a constant operand '{x}' of shape [{string.Join(", ", c.Dims)}] on data [N{string.Concat(shape.Select(d => ", " + d))}], whose first axis is the batch axis: " +
                           "it differs from one sample of a batch to the next, which a batch-first network cannot mean";
            return "a constant operand; every operand must be computed from the input";
        }

        private List<ImportItem> Chain(string from, string to, HashSet<int> region, ref Shape shape, int depth)
        {
            var items = new List<ImportItem>();
            string v = from;
            while (v != to)
            {
                _constants.RuntimeShapes[v] = shape;
                var edges = Consumers(v, region).Distinct().ToArray();
                if (edges.Length == 0)
                    throw new FormatException($"ONNX model from {_source}: value '{v}' is read by no node on the way to '{to}'.");
                ImportItem item;
                if (edges.Length == 1 && OnnxLayerReader.FoldedOperations.Contains(_nodes[edges[0]].OpType) && DataInputs(edges[0]).Count() == 1)
                {
                    var node = _nodes[edges[0]];
                    _used[edges[0]] = true;
                    v = Out(edges[0]);
                    if (items.Count > 0 && items[^1] is LeafItem previous && _reader.TryFold(previous, node) is { } folded)
                    {
                        items[^1] = folded;
                        _rewrites.Add($"node '{node.Name}' ({node.OpType}): its constant operand was folded into layer node '{previous.NodeName}'");
                    }
                    else items.Add(_reader.ConstantOperand(node, shape));
                    shape = items[^1].Output;
                    continue;
                }
                if (edges.Length == 1 && !IsJoin(edges[0]))
                {
                    var read = Leaf(edges[0], region, shape, out int last);
                    items.AddRange(read.Take(read.Count - 1));
                    item = read[^1];
                    v = Out(last);
                }
                else
                {
                    if (depth >= MaxBranchNesting)
                        throw new FormatException($"ONNX model from {_source}: branches nest deeper than {MaxBranchNesting} levels at value '{v}'.");
                    item = Fork(v, to, region, shape, depth + 1, out v);
                }
                items.Add(item);
                shape = item.Output;
            }
            return items;
        }

        private IReadOnlyList<LeafItem> Leaf(int n, HashSet<int> region, Shape shape, out int last)
        {
            var node = _nodes[n];
            var data = DataInputs(n).ToArray();
            if (data.Length != 1 || node.Input[0] != data[0])
                throw Unsupported(_source, node, $"{data.Length} inputs computed at run time ({string.Join(", ", data.Select(d => $"'{d}'"))}); only its first input may be");
            if (node.OpType == "Reshape"
                && Consumers(Out(n), region).ToArray() is [int middle]
                && Consumers(Out(middle), region).ToArray() is [int unfold] && _nodes[unfold].OpType == "Reshape"
                && DataInputs(middle).Count() == 1 && DataInputs(unfold).Count() == 1
                && _reader.TryFolded(node, _nodes[middle], _nodes[unfold], shape) is { } folded)
            {
                _used[n] = _used[middle] = _used[unfold] = true;
                last = unfold;
                return new[] { folded };
            }
            _used[n] = true;
            last = n;
            var layers = _reader.ReadLayers(node, shape);
            if (layers.Count > 1)
                _rewrites.Add($"node '{node.Name}' ({node.OpType}): read as {string.Join(", then ", layers.Select(l => l.Layer.Kind))}, since no one layer computes it");
            return layers;
        }

        private JoinItem Fork(string v, string to, HashSet<int> region, Shape shape, int depth, out string joined)
        {
            string meet = ImmediatePostDominator(v, to, region);
            int j = _producer[meet];
            var join = _nodes[j];
            if (!IsJoin(j))
                throw Unsupported(_source, join, $"branches from value '{v}' that meet in it; branches must meet in a Sum, Add, Concat or Mul");
            if (join.Input.Any(x => x.Length == 0 || _constants.Contains(x)))
                throw Unsupported(_source, join, ConstantJoinReason(join, shape));
            if (join.Output.Count != 1) throw new FormatException($"{Where(_source, join)} should have one output.");
            var ends = join.Input.ToArray();
            var regions = ends.Select(e => Between(v, e, region, join)).ToArray();
            var all = Between(v, meet, region, join);
            all.Remove(j);
            var covered = new HashSet<int>();
            foreach (var r in regions)
                foreach (var n in r)
                    if (!covered.Add(n))
                        throw Unsupported(_source, _nodes[n], $"a place in two branches from value '{v}' to node '{join.Name}'; only series-parallel graphs (forks that meet again in one join) are supported");
            if (!covered.SetEquals(all))
            {
                int stray = all.Except(covered).First();
                throw Unsupported(_source, _nodes[stray], $"a branch from value '{v}' that does not reach node '{join.Name}'");
            }
            if (shape.Rank == 0)
                throw Unsupported(_source, join, "branches of tensors with no axis besides the batch; layers join samples of shape [C, ...]");
            var branches = new List<IReadOnlyList<ImportItem>>();
            var shapes = new List<Shape>();
            for (int i = 0; i < ends.Length; i++)
            {
                var s = shape;
                branches.Add(Chain(v, ends[i], regions[i], ref s, depth));
                shapes.Add(s);
            }
            _used[j] = true;
            joined = meet;
            return join.OpType switch
            {
                "Concat" => new JoinItem("Concat", join.Name, ConcatShape(join, shapes), branches, null),
                "Sum" => new JoinItem("Sum", join.Name, SumShape(join, shapes), branches, null),
                "Mul" => new JoinItem("Mul", join.Name, ProductShape(join, shapes), branches, null),
                _ => Residual(join, ends, v, branches, SumShape(join, shapes)),
            };
        }

        private JoinItem Residual(NodeProto join, string[] ends, string v, List<IReadOnlyList<ImportItem>> branches, Shape output)
        {
            if (ends.Length != 2) throw new FormatException($"{Where(_source, join)} should have two inputs.");
            // The first operand is the block, the second the shortcut; a second operand that is the fork's value itself is the identity shortcut.
            return new JoinItem("Add", join.Name, output, new[] { branches[0] }, ends[1] == v ? null : branches[1]);
        }

        private Shape SumShape(NodeProto join, List<Shape> shapes)
        {
            if (join.Attribute.Count > 0) throw new OnnxUnsupportedException($"{Where(_source, join)}: attribute '{join.Attribute[0].Name}' is not supported.");
            if (shapes.Any(s => s != shapes[0]))
                throw Unsupported(_source, join, $"operands of different shapes ({string.Join(", ", shapes)}) that broadcast; branches must give equal shapes");
            return shapes[0];
        }

        private Shape ProductShape(NodeProto join, List<Shape> shapes)
        {
            if (join.Attribute.Count > 0) throw new OnnxUnsupportedException($"{Where(_source, join)}: attribute '{join.Attribute[0].Name}' is not supported.");
            if (shapes.Count != 2) throw new FormatException($"{Where(_source, join)} should have two inputs.");
            try
            {
                return Core.Kernels.BroadcastKernel.Shape(shapes[0], shapes[1]);
            }
            catch (ShapeException)
            {
                throw Unsupported(_source, join, $"operands {shapes[0]} and {shapes[1]}, which do not broadcast axis by axis at one rank");
            }
        }

        private Shape ConcatShape(NodeProto join, List<Shape> shapes)
        {
            var axisAttribute = join.Attribute.SingleOrDefault(a => a.Name == "axis");
            if (join.Attribute.Count != 1 || axisAttribute is null || axisAttribute.Type != AttributeType.Int)
                throw new FormatException($"{Where(_source, join)} should have exactly one attribute, the int 'axis'.");
            int rank = shapes[0].Rank + 1;
            long axis = axisAttribute.I < 0 ? axisAttribute.I + rank : axisAttribute.I;
            if (axis != 1) throw Unsupported(_source, join, $"axis {axisAttribute.I}; branches are concatenated along the channel axis 1");
            if (shapes.Any(s => s.Rank != shapes[0].Rank || !s.Skip(1).SequenceEqual(shapes[0].Skip(1))))
                throw new FormatException($"{Where(_source, join)}: operands {string.Join(", ", shapes)} differ on an axis other than the channels.");
            var dims = shapes[0].ToArray();
            dims[0] = shapes.Sum(s => s[0]);
            return new Shape(dims);
        }

        /// <summary>The nodes of <paramref name="region"/> on some path from value <paramref name="from"/> to value <paramref name="to"/> (its producer included).</summary>
        private HashSet<int> Between(string from, string to, HashSet<int> region, NodeProto join)
        {
            var result = new HashSet<int>();
            if (from == to) return result;
            var forward = Reachable(from, region);
            if (!_producer.TryGetValue(to, out int last) || !forward.Contains(last))
                throw Unsupported(_source, join, $"operand '{to}', which does not come from the fork at value '{from}'; only series-parallel graphs are supported");
            var stack = new Stack<int>();
            stack.Push(last);
            while (stack.Count > 0)
            {
                int n = stack.Pop();
                if (!forward.Contains(n) || !result.Add(n)) continue;
                foreach (var x in DataInputs(n))
                    if (_producer.TryGetValue(x, out int p)) stack.Push(p);
            }
            return result;
        }

        private HashSet<int> Reachable(string from, HashSet<int> region)
        {
            var seen = new HashSet<int>();
            var stack = new Stack<int>(Consumers(from, region));
            while (stack.Count > 0)
            {
                int n = stack.Pop();
                if (!seen.Add(n)) continue;
                foreach (var c in Consumers(Out(n), region)) stack.Push(c);
            }
            return seen;
        }

        /// <summary>
        /// The first value that every path from <paramref name="v"/> to <paramref name="exit"/> passes through: where the
        /// branches of a fork meet. Post-dominator sets are built in reverse topological order.
        /// </summary>
        private string ImmediatePostDominator(string v, string exit, HashSet<int> region)
        {
            var forward = Reachable(v, region).OrderByDescending(n => _rank[n]).ToArray();
            var post = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
            HashSet<string> Meet(string value)
            {
                HashSet<string>? common = null;
                foreach (var c in Consumers(value, region))
                {
                    var after = post[Out(c)];
                    if (common is null) common = new HashSet<string>(after, StringComparer.Ordinal);
                    else common.IntersectWith(after);
                }
                return common ?? throw new FormatException($"ONNX model from {_source}: value '{value}' is read by no node on the way to '{exit}'.");
            }
            foreach (var n in forward)
            {
                string y = Out(n);
                var set = y == exit ? new HashSet<string>(StringComparer.Ordinal) : Meet(y);
                set.Add(y);
                post[y] = set;
            }
            var candidates = Meet(v);
            if (candidates.Count == 0) throw new FormatException($"ONNX model from {_source}: the branches from value '{v}' never meet.");
            return candidates.MinBy(c => _rank[_producer[c]])!;
        }
    }
}
