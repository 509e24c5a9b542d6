using Cnn.Dsl;

namespace Cnn.Onnx;

/// <summary>ONNX for the <see cref="Model"/> value of <c>Cnn.Dsl</c>: <c>model.ExportOnnx("model.onnx")</c>.</summary>
public static class ModelOnnxExtensions
{
    /// <summary>Writes the model (network, parameters and state) as an ONNX file, atomically; see <see cref="OnnxExporter.Export(Network, Parameters, Parameters?, string, OnnxExportOptions?)"/>.</summary>
    /// <param name="model">The model.</param>
    /// <param name="path">The file to write.</param>
    /// <param name="options">Opset, IR version, names and metadata (optional).</param>
    /// <exception cref="OnnxUnsupportedException">A layer has no ONNX equivalent in the target opset.</exception>
    public static void ExportOnnx(this Model model, string path, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        OnnxExporter.Export(model.Network, model.Parameters, model.State, path, options);
    }

    /// <summary>The model as the bytes of an ONNX file.</summary>
    /// <param name="model">The model.</param>
    /// <param name="options">Opset, IR version, names and metadata (optional).</param>
    /// <exception cref="OnnxUnsupportedException">A layer has no ONNX equivalent in the target opset.</exception>
    public static byte[] ToOnnxBytes(this Model model, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return OnnxExporter.ToBytes(model.Network, model.Parameters, model.State, options);
    }
}
