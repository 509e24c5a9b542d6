using Cnn.Core;

namespace Cnn.Onnx;

/// <summary>
/// A well-formed ONNX model that uses an operation, an attribute value or a graph shape the importer cannot express
/// as layers of this project. The message names the operation and the node.
/// </summary>
public sealed class OnnxUnsupportedException : CnnException
{
    /// <summary>Creates the exception.</summary>
    public OnnxUnsupportedException(string message) : base(message) { }
}
