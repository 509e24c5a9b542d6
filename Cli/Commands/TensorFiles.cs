using System.Text.Json;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;

namespace Cnn.Cli;

/// <summary>
/// How <c>cnn params</c> and <c>cnn grad</c> lay tensors out as files: one <c>.npy</c> per path, named by the path
/// with '/' replaced by '.' (<c>conv1/weight</c> is <c>conv1.weight.npy</c>), and <c>index.json</c> mapping each
/// path to its file and shape.
/// </summary>
internal static class TensorFiles
{
    public const string Naming = """
        files: one .npy (float32, little-endian, row-major) per tensor, named by its path with '/' replaced
        by '.': conv1/weight -> conv1.weight.npy, block1/conv2/bias -> block1.conv2.bias.npy (PyTorch's
        state_dict names, for a network built with the same layer names). index.json maps each path to
        {"file": ..., "shape": [...]}.
        """;

    /// <summary>Writes each tensor and returns the index entries.</summary>
    public static Dictionary<string, object> Write(string folder, Parameters tensors, string prefix = "")
    {
        var index = new Dictionary<string, object>(StringComparer.Ordinal);
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (path, t) in tensors.Entries)
        {
            var file = prefix + Model.FileName(path);
            if (path.Any(c => char.IsControl(c)) || path.Contains('\\') || path.Split('/').Any(s => s is "" or "." or ".."))
                throw new CnnException($"The tensor '{Model.Printable(path)}' cannot be named as a file (an empty, '.' or '..' segment, a backslash or a control character).");
            if (!files.TryAdd(file, path))
                throw new CnnException($"The tensors '{files[file]}' and '{path}' would both be written to '{file}' ('/' becomes '.'); rename one of them.");
            Npy.Write(Path.Combine(folder, file), t);
            index[path] = new Dictionary<string, object> { ["file"] = file, ["shape"] = t.Shape.ToArray() };
        }
        return index;
    }

    public static void WriteIndex(string folder, object index) =>
        AtomicFile.WriteAllBytes(Path.Combine(folder, "index.json"), JsonSerializer.SerializeToUtf8Bytes(index, new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>A network input from a .npy file: <c>[N, ...input]</c>, or one example <c>[...input]</c> given a batch axis of 1.</summary>
    public static Tensor Input(string path, Network network)
    {
        var x = Npy.ReadTensor(path);
        if (x.Shape.SequenceEqual(network.InputShape)) return x.Reshape(network.InputShape.PrependBatch(1));
        if (x.Shape.Rank == network.InputShape.Rank + 1 && x.Shape.DropBatch() == network.InputShape && x.Shape[0] > 0) return x;
        throw new CnnException($"The input '{path}' has shape {x.Shape}; the network takes [N, {string.Join(", ", network.InputShape)}] (or one example {network.InputShape}).");
    }
}
