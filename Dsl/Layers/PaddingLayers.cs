using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>How <see cref="Pad2d"/> fills the border.</summary>
public enum PadMode
{
    /// <summary>A constant value (PyTorch's <c>ConstantPad2d</c>, <c>ZeroPad2d</c>).</summary>
    Constant,
    /// <summary>The mirror image without repeating the edge (PyTorch's <c>ReflectionPad2d</c>, ONNX's reflect).</summary>
    Reflect,
    /// <summary>The edge repeated (PyTorch's <c>ReplicationPad2d</c>, ONNX's edge).</summary>
    Edge,
}

/// <summary>
/// Explicit padding of a <c>[C, H, W]</c> sample by <c>Top</c> and <c>Bottom</c> rows and <c>Left</c> and <c>Right</c> columns,
/// as PyTorch's padding modules and ONNX's Pad: for padding a convolution cannot express (asymmetric, TensorFlow's "same" at a
/// stride, reflected borders for image-to-image networks).
/// </summary>
/// <param name="Top">Rows added above.</param>
/// <param name="Bottom">Rows added below.</param>
/// <param name="Left">Columns added on the left.</param>
/// <param name="Right">Columns added on the right.</param>
/// <param name="Mode">How the border is filled (default a constant).</param>
/// <param name="Value">The constant of <see cref="PadMode.Constant"/> (default 0); must be 0 for the other modes.</param>
public sealed record Pad2d(int Top, int Bottom, int Left, int Right, PadMode Mode = PadMode.Constant, float Value = 0f) : LeafLayer
{
    /// <summary>The same padding on every side.</summary>
    public Pad2d(int all, PadMode mode = PadMode.Constant) : this(all, all, all, all, mode) { }

    /// <inheritdoc />
    public override string Kind => "pad";

    /// <inheritdoc />
    public override Shape OutputShape(Shape input, string path, bool strict)
    {
        if (input.Rank != 3) throw new ShapeException($"Layer '{path}': Pad2d expects [C, H, W] per sample; found {input}.");
        if (Top < 0 || Bottom < 0 || Left < 0 || Right < 0)
            throw new ShapeException($"Layer '{path}': Pad2d paddings must be >= 0; found top {Top}, bottom {Bottom}, left {Left}, right {Right}.");
        if (!float.IsFinite(Value) || (Mode != PadMode.Constant && Value != 0f))
            throw new ShapeException($"Layer '{path}': Pad2d's value must be finite, and 0 unless the mode is constant; found {Value} with mode {Mode}.");
        if (Mode == PadMode.Reflect && (Math.Max(Top, Bottom) >= input[1] || Math.Max(Left, Right) >= input[2]))
            throw new ShapeException($"Layer '{path}': a reflected padding must be below the input's size on its axis; found top {Top}, bottom {Bottom}, left {Left}, right {Right} for {input}.");
        return new Shape(input[0], input[1] + Top + Bottom, input[2] + Left + Right);
    }
}
