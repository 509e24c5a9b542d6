using System.Runtime.InteropServices;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx.Proto;
using Google.Protobuf;

namespace Cnn.Onnx;

// The graph builder's parts: initializers from parameters and state, nodes, fresh value and node names, attribute protos.
public static partial class OnnxExporter
{
    private sealed partial class GraphBuilder
    {
        private static CnnException Unsupported(Node node) => new(
            $"ONNX export: layer '{(node.Path.Length > 0 ? node.Path : "(root)")}' of type {node.Layer.GetType().Name} has no export rule.");

        private string Weight(Node node) => Initializer(node, "weight");

        private string Bias(Node node) => Initializer(node, "bias");

        /// <summary>Adds the parameter of <paramref name="node"/> with local name <paramref name="local"/> as an initializer named by its path.</summary>
        private string Initializer(Node node, string local)
        {
            var spec = node.ParameterSpecs().Single(s => s.Spec.Name == local);
            return AddTensor(spec.Path, spec.Spec.Shape, _parameters[spec.Path], node, "parameter");
        }

        /// <summary>Adds the state tensor of <paramref name="node"/> with local name <paramref name="local"/> as an initializer named by its path.</summary>
        private string State(Node node, string local)
        {
            var spec = node.StateSpecs().Single(s => s.Spec.Name == local);
            if (!_stateGiven)
                throw new CnnException(
                    $"ONNX export: layer '{node.Path}' ({node.Layer.GetType().Name}) needs the network's state ('{spec.Path}', its running statistics): " +
                    "pass the state from Initializer.InitState or from training to ToBytes/Export.");
            if (!_state.Contains(spec.Path))
                throw new CnnException($"ONNX export: the state has no tensor '{spec.Path}' for layer '{node.Path}'. Paths present: {string.Join(", ", _state.Paths)}.");
            return AddTensor(spec.Path, spec.Spec.Shape, _state[spec.Path], node, "state tensor");
        }

        private string AddTensor(string path, Shape expected, Tensor tensor, Node node, string what)
        {
            if (tensor.Shape != expected)
                throw new CnnException(
                    $"ONNX export: {what} '{path}' of layer '{node.Path}' should have shape {expected} for input {node.Input}; found {tensor.Shape}.");
            var proto = new TensorProto { Name = path, DataType = (int)TensorProto.Types.DataType.Float };
            foreach (var d in tensor.Shape) proto.Dims.Add(d);
            proto.RawData = RawLittleEndian(tensor.Span);
            Graph.Initializer.Add(proto);
            return path;
        }

        private static ByteString RawLittleEndian(ReadOnlySpan<float> values)
        {
            if (BitConverter.IsLittleEndian) return ByteString.CopyFrom(MemoryMarshal.AsBytes(values));
            var bytes = new byte[values.Length * sizeof(float)];
            for (int i = 0; i < values.Length; i++)
                System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
            return ByteString.CopyFrom(bytes);
        }

        private void AddNode(Node layer, string opType, string[] inputs, string output, params AttributeProto[] attributes)
        {
            var node = new NodeProto { Name = FreshNodeName(layer, opType), OpType = opType, Domain = "" };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            Graph.Node.Add(node);
        }

        private static string[] Inputs(params string?[] names) => names.OfType<string>().ToArray();

        private static long[] Longs(IEnumerable<int> values) => values.Select(v => (long)v).ToArray();

        private static long[] Repeat(int value, int count) => Enumerable.Repeat((long)value, count).ToArray();

        private string FreshValue(Node node) => Fresh(_valueNames, node.Path.Length > 0 ? node.Path : node.Layer.Kind);

        /// <summary>
        /// The layer's path for its first node; a layer that emits several nodes gets <c>path/OpType</c> for the rest.
        /// The importer reads the paths back from these names.
        /// </summary>
        private string FreshNodeName(Node node, string opType)
        {
            string path = node.Path.Length > 0 ? node.Path : node.Layer.Kind;
            return _nodeNames.Contains(path) ? Fresh(_nodeNames, path + "/" + opType) : Fresh(_nodeNames, path);
        }

        private static string Fresh(HashSet<string> taken, string wanted)
        {
            var name = wanted;
            for (int i = 2; !taken.Add(name); i++) name = $"{wanted}_{i}";
            return name;
        }

        private static AttributeProto Ints(string name, params long[] values)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.AddRange(values);
            return a;
        }

        private static AttributeProto Int(string name, long value) =>
            new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

        private static AttributeProto Float(string name, float value) =>
            new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };
    }
}
