namespace Cnn.Core.Kernels;

/// <summary>An element-wise arithmetic operation of two operands, <c>a op b</c> (ONNX's Add, Sub, Mul and Div).</summary>
public enum BinaryOp
{
    /// <summary><c>a + b</c>.</summary>
    Add,
    /// <summary><c>a - b</c>.</summary>
    Subtract,
    /// <summary><c>a * b</c>.</summary>
    Multiply,
    /// <summary><c>a / b</c>.</summary>
    Divide,
}
