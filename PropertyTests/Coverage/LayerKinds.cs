using Cnn.Core;
using Cnn.Dsl;
using F = Cnn.FSharp.Layers;
using FList = Microsoft.FSharp.Collections.ListModule;

namespace Cnn.Tests.Coverage;

/// <summary>The interpreters every layer kind must go through (DESIGN.md, "one structure, many interpreters").</summary>
public enum Interpreter
{
    ShapeInference,
    Initialisation,
    ApplyForward,
    ApplyPullback,
    Summary,
    Json,
    OnnxExport,
    OnnxImport,
    LibTorchFunctional,
    TorchModule,
    FSharpSurface,

    /// <summary>The PyTorch writer has a rule for the kind (the coverage test); PyTorchZooTests runs every kind's module in
    /// python3-torch, in one process, against our eval output.</summary>
    PyTorchWriter,
}

/// <summary>
/// One layer kind with a minimal network of it: the record built in C# (<see cref="Example"/>), the same record built by the
/// F# surface (<see cref="FSharp"/>, null when the surface lacks it), the per-sample input shape it runs on, and the
/// interpreters that legitimately cannot take it, each with the reason.
/// </summary>
public sealed record LayerKind(string Name, Layer Example, Shape Input, Func<Layer>? FSharp, IReadOnlyDictionary<Interpreter, string>? Exempt = null)
{
    /// <summary>Why <paramref name="interpreter"/> does not take this kind, or null when it must.</summary>
    public string? Exemption(Interpreter interpreter) => Exempt is not null && Exempt.TryGetValue(interpreter, out var why) ? why : null;

    public override string ToString() => Name;
}

/// <summary>
/// Every layer kind of the library, each once (a record with a mode, such as <see cref="FanOut"/>'s join, once per mode).
/// A test checks this list against every concrete <see cref="Layer"/> type of the Dsl assembly, so a new record that is
/// not listed here fails; the coverage test then runs each entry through every interpreter.
/// </summary>
public static class LayerKinds
{
    private static readonly IReadOnlyDictionary<Interpreter, string> LeftOutOfOnnx = new Dictionary<Interpreter, string>
    {
        [Interpreter.OnnxImport] = "inference semantics: the exporter leaves it out (the identity at inference), so import cannot give it back",
    };

    private static readonly IReadOnlyDictionary<Interpreter, string> TrainingOnly = new Dictionary<Interpreter, string>
    {
        [Interpreter.OnnxImport] = "freezing is a training matter, not part of an ONNX model: the inner layer comes back unfrozen",
    };

    private static readonly IReadOnlyDictionary<Interpreter, string> Heads = new Dictionary<Interpreter, string>
    {
        [Interpreter.OnnxImport] = "inference uses the main head: the exporter leaves auxiliary heads out, so import cannot give one back",
    };

    private static Microsoft.FSharp.Collections.FSharpList<int> Ints(params int[] values) => FList.OfArray(values);

    public static readonly IReadOnlyList<LayerKind> All = new LayerKind[]
    {
        new("conv2d", new Conv2d(3, 3, 3), new Shape(2, 5, 5), () => F.conv2d(3, 3, 3)),
        new("conv1d", new Conv1d(3, 3), new Shape(2, 8), () => F.conv1d(3, 3)),
        new("conv3d", new Conv3d(2, 2), new Shape(2, 3, 3, 3), () => F.conv3d(2, 2)),
        new("conv-transpose2d", new ConvTranspose2d(2, 3), new Shape(2, 3, 3), () => F.convTranspose2d(2, 3)),
        new("conv3d-per-axis", new Conv3d(4, Kernel: (1, 2, 3), Stride: (1, 2, 1), Pad: (0, 1, 1), Dilation: (2, 1, 2), Groups: 2), new Shape(2, 3, 4, 5),
            () => F.convNdWith(new(Ints(1, 2, 1), Ints(0, 1, 1), Ints(), Ints(), Ints(2, 1, 2), 2, true), 4, Ints(1, 2, 3))),
        new("conv-transpose1d", new ConvTranspose1d(4, 3, Stride: 2, Pad: 1, OutputPad: 1, Dilation: 2, Groups: 2), new Shape(2, 5),
            () => F.convTransposeNdWith(new(Ints(2), Ints(1), Ints(1), Ints(), Ints(2), 2, true), 4, Ints(3))),
        new("conv-transpose2d-per-axis", new ConvTranspose2d(4, Kernel: (2, 3), Stride: (2, 1), Pad: (0, 1), OutputPad: (1, 0), Dilation: (1, 2), Groups: 2),
            new Shape(2, 3, 4), () => F.convTransposeNdWith(new(Ints(2, 1), Ints(0, 1), Ints(1, 0), Ints(), Ints(1, 2), 2, true), 4, Ints(2, 3))),
        new("conv-transpose3d", new ConvTranspose3d(2, Kernel: (2, 1, 3), Stride: (1, 2, 2), OutputPad: (0, 1, 0), UseBias: false), new Shape(2, 2, 3, 2),
            () => F.convTransposeNdWith(new(Ints(1, 2, 2), Ints(), Ints(0, 1, 0), Ints(), Ints(), 1, false), 2, Ints(2, 1, 3))),
        // ONNX's SAME_UPPER: padding removed from the end only (none at the start; 2 rows and 1 column at the end), with output
        // padding (which on rows no symmetric padding with output padding below the stride reproduces).
        new("conv-transpose2d-end-padding", new ConvTranspose2d(3, Kernel: (3, 2), Stride: (2, 2), OutputPad: (1, 0), PadEnd: (2, 1)), new Shape(2, 3, 3),
            () => F.convTransposeNdWith(new(Ints(2), Ints(0), Ints(1, 0), Ints(2, 1), Ints(), 1, true), 3, Ints(3, 2))),
        new("matmul", new MatMul(4), new Shape(2, 3, 5), () => F.matMul(4)),
        new("dense", new Dense(4), new Shape(6), () => F.dense(4)),
        new("max-pool2d", new MaxPool2d(2, 2, 2, 2), new Shape(2, 4, 4), () => F.maxPool2d(2)),
        new("avg-pool2d", new AvgPool2d(2, 2, 2, 2), new Shape(2, 4, 4), () => F.avgPool2d(2)),
        new("max-pool2d-dilated", new MaxPool2d(2, 2, 1, 1, 1, 1, false, 2, 2), new Shape(2, 5, 5),
            () => F.maxPool2dWith(new Cnn.FSharp.MaxPool2dSettings(Microsoft.FSharp.Core.FSharpOption<int>.Some(1), Cnn.FSharp.Padding.NewPad(1), false, 2), 2)),
        // ONNX's padding that PyTorch's AvgPool2d lacks: rows (0 above, 1 below), columns 2 (beyond half the window) left, 0 right.
        new("avg-pool2d-uneven", new AvgPool2d(3, 3, 1, 1, 0, 2, false, false, PadBottom: 1, PadRight: 0), new Shape(2, 4, 4),
            () => F.avgPool2dWith(new Cnn.FSharp.AvgPool2dSettings(Microsoft.FSharp.Core.FSharpOption<int>.Some(1), Cnn.FSharp.Padding.NewPadHW(0, 2), false, false,
                Microsoft.FSharp.Core.FSharpOption<Tuple<int, int>>.Some(Tuple.Create(1, 0))), 3)),
        new("pool-nd", new PoolNd(PoolOp.Max, 2, 2), new Shape(2, 8), () => F.maxPoolNd(2)),
        new("global-pool", new GlobalPool(), new Shape(2, 3, 3), () => F.globalAvgPool),
        new("channel-max-pool", new ChannelMaxPool(2, 2), new Shape(4, 3, 3), () => F.channelMaxPool(2)),
        new("channel-avg-pool", new ChannelAvgPool(3, 1), new Shape(4, 3, 3), () => F.channelAvgPoolWith(new Cnn.FSharp.ChannelMaxPoolSettings(Microsoft.FSharp.Core.FSharpOption<int>.Some(1)), 3)),
        new("relu", new Relu(), new Shape(2, 3, 3), () => F.relu),
        new("leaky-relu", new LeakyRelu(0.2f), new Shape(2, 3, 3), () => F.leakyRelu(0.2)),
        new("elu", new Elu(0.7f), new Shape(2, 3, 3), () => F.elu(0.7)),
        new("sigmoid", new Sigmoid(), new Shape(2, 3, 3), () => F.sigmoid),
        // F# names the layer tanh' (a plain tanh would hide F#'s own), which C# cannot spell.
        new("tanh", new Tanh(), new Shape(2, 3, 3), () => (Layer)typeof(F).GetProperty("tanh'")!.GetValue(null)!),
        new("hard-tanh", new HardTanh(-0.5f, 0.5f), new Shape(2, 3, 3), () => F.hardTanh(-0.5, 0.5)),
        new("hard-tanh-max-only", new HardTanh(float.NegativeInfinity, 0.5f), new Shape(2, 3, 3), () => F.hardTanh(double.NegativeInfinity, 0.5)),
        new("relu6", HardTanh.Relu6, new Shape(2, 3, 3), () => F.relu6),
        new("hard-sigmoid", new HardSigmoid(), new Shape(2, 3, 3), () => F.hardSigmoid),
        new("constant-add", new ConstantOperand(Cnn.Core.Kernels.BinaryOp.Add, 1, 1, 3), new Shape(2, 3, 3), () => F.constantOperand(Cnn.Core.Kernels.BinaryOp.Add, Ints(1, 1, 3))),
        new("constant-subtract", new ConstantOperand(Cnn.Core.Kernels.BinaryOp.Subtract, 2, 3, 1), new Shape(2, 3, 3), () => F.constantOperand(Cnn.Core.Kernels.BinaryOp.Subtract, Ints(2, 3, 1))),
        new("constant-multiply", new ConstantOperand(Cnn.Core.Kernels.BinaryOp.Multiply, 2, 3, 3), new Shape(2, 3, 3), () => F.constantOperand(Cnn.Core.Kernels.BinaryOp.Multiply, Ints(2, 3, 3))),
        new("constant-divide", new ConstantOperand(Cnn.Core.Kernels.BinaryOp.Divide, 1, 3, 1), new Shape(2, 3, 3), () => F.constantOperand(Cnn.Core.Kernels.BinaryOp.Divide, Ints(1, 3, 1))),
        new("hard-sigmoid-alpha-beta", new HardSigmoid(0.2f, 0.6f), new Shape(2, 3, 3), () => F.hardSigmoidWith(0.2, 0.6)),
        new("hard-swish", new HardSwish(), new Shape(2, 3, 3), () => F.hardSwish),
        new("silu", new Silu(), new Shape(2, 3, 3), () => F.silu),
        new("gelu", new Gelu(), new Shape(2, 3, 3), () => F.gelu),
        new("softmax", new Softmax(), new Shape(2, 3, 3), () => F.softmax),
        new("log-softmax", new LogSoftmax(), new Shape(2, 3, 3), () => F.logSoftmax),
        new("batch-norm", new BatchNorm(), new Shape(3, 4, 4), () => F.batchNorm),
        new("lrn", new Lrn(), new Shape(4, 3, 3), () => F.lrn),
        new("dropout", new Dropout(0.5f), new Shape(2, 4, 4), () => F.dropout(0.5), LeftOutOfOnnx),
        new("flatten", new Flatten(), new Shape(2, 3, 3), () => F.flatten),
        new("reshape", new Reshape(2, 9), new Shape(2, 3, 3), () => F.reshape(FList.OfArray(new[] { 2, 9 }))),
        new("pad-constant", new Pad2d(1, 0, 2, 1, PadMode.Constant, 0.5f), new Shape(2, 3, 3), () => F.pad2dWith(PadMode.Constant, 0.5, 1, 0, 2, 1)),
        new("pad-reflect", new Pad2d(2, 1, 0, 2, PadMode.Reflect), new Shape(2, 3, 3), () => F.pad2dWith(PadMode.Reflect, 0, 2, 1, 0, 2)),
        new("pad-edge", new Pad2d(1, 2, 2, 0, PadMode.Edge), new Shape(2, 3, 3), () => F.pad2dWith(PadMode.Edge, 0, 1, 2, 2, 0)),
        new("channel-slice", new ChannelSlice(1, 2), new Shape(4, 3, 3), () => F.channelSlice(1, 2)),
        new("permute", new Permute(2, 0, 1), new Shape(2, 3, 4), () => F.permute(Ints(2, 0, 1))),
        new("channel-shuffle", new ChannelShuffle(2), new Shape(4, 3, 3), () => F.channelShuffle(2)),
        new("identity", new Identity(), new Shape(2, 3, 3), () => F.identity),
        new("serial", new Serial(new Conv2d(2, 1, 1), new Relu()), new Shape(2, 3, 3),
            () => F.op_GreaterMinusGreater(F.conv2d(2, 1, 1), F.relu)),
        new("fan-out-sum", FanOut.Sum(new Conv2d(2, 1, 1), new Identity()), new Shape(2, 3, 3),
            () => F.sum(FList.OfArray(new[] { F.conv2d(2, 1, 1), F.identity }))),
        new("fan-out-concat", FanOut.Concat(new Conv2d(2, 1, 1), new Relu()), new Shape(2, 3, 3),
            () => F.concat(FList.OfArray(new[] { F.conv2d(2, 1, 1), F.relu }))),
        new("fan-out-product", FanOut.Product(new Identity(), new Serial(new GlobalPool(), new Sigmoid())), new Shape(2, 3, 3),
            () => F.product(F.identity, F.op_GreaterMinusGreater(F.globalAvgPool, F.sigmoid))),
        new("residual", new Residual(new Conv2d(2, 1, 1)), new Shape(2, 3, 3), () => F.residual(F.conv2d(2, 1, 1))),
        new("freeze", new Freeze(new Conv2d(2, 1, 1)), new Shape(2, 3, 3), () => F.freeze(F.conv2d(2, 1, 1)), TrainingOnly),
        new("auxiliary-head", new AuxiliaryHead(new Serial(new Dense(3), new Relu(), new Dense(4)), 0.3f), new Shape(4),
            () => F.auxiliaryHead(0.3, F.op_GreaterMinusGreater(F.op_GreaterMinusGreater(F.dense(3), F.relu), F.dense(4))), Heads),
    };

    /// <summary>The kind of each name, for theory data.</summary>
    public static LayerKind ByName(string name) => All.Single(k => k.Name == name);

    /// <summary>The concrete layer types the list covers.</summary>
    public static IReadOnlySet<Type> Types => All.Select(k => k.Example.GetType()).ToHashSet();

    /// <summary>Every public concrete <see cref="Layer"/> record of the Dsl assembly: what the list must cover.</summary>
    public static IReadOnlySet<Type> LibraryTypes =>
        typeof(Layer).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(Layer)) && !t.IsAbstract && t.IsPublic).ToHashSet();
}
