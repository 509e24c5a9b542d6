namespace Cnn.Core;

/// <summary>
/// The project's own exception for a user's mistake: a shape that does not fit, a label out of range,
/// a file that is not what it claims. The message says what was expected, what was found, and where.
/// </summary>
public class CnnException : Exception
{
    /// <summary>Creates the exception with a message that names what was expected, what was found and where.</summary>
    public CnnException(string message) : base(message) { }

    /// <summary>Creates the exception wrapping the low-level cause.</summary>
    public CnnException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A shape that does not fit: the message names the layer path, the shapes and the formula's numbers.</summary>
public sealed class ShapeException : CnnException
{
    /// <summary>Creates the exception.</summary>
    public ShapeException(string message) : base(message) { }
}

/// <summary>A file or byte stream that is not what it claims to be. The message names the source and the defect.</summary>
public sealed class FormatException : CnnException
{
    /// <summary>Creates the exception.</summary>
    public FormatException(string message) : base(message) { }

    /// <summary>Creates the exception wrapping the low-level cause.</summary>
    public FormatException(string message, Exception inner) : base(message, inner) { }
}
