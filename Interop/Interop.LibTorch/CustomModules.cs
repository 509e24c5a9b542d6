using TorchSharp;
using static TorchSharp.torch.nn.functional;
using TorchTensor = TorchSharp.torch.Tensor;
using TorchModuleBase = TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>;

namespace Cnn.Interop.LibTorch;

// The modules TorchSharp lacks. Each registers its children, parameters and buffers under the names the paths use, and
// turns off the registration of fields by reflection, which would register the same children a second time under the
// fields' names.

/// <summary>Branches run on the same input, their outputs summed, concatenated along channels or multiplied (the DSL's <c>FanOut</c>).</summary>
internal sealed class FanOutModule : TorchModuleBase
{
    private readonly TorchModuleBase[] _branches;
    private readonly Cnn.Dsl.Join _join;

    public FanOutModule(IReadOnlyList<(string Name, TorchModuleBase Module)> branches, Cnn.Dsl.Join join) : base("FanOut" + join)
    {
        _branches = branches.Select(b => b.Module).ToArray();
        _join = join;
        foreach (var (name, module) in branches) register_module(name, module);
    }

    public override TorchTensor forward(TorchTensor input)
    {
        if (_join == Cnn.Dsl.Join.Concat) return torch.cat(_branches.Select(b => b.call(input)).ToArray(), 1);
        var result = _branches[0].call(input);
        for (int i = 1; i < _branches.Length; i++) result = _join == Cnn.Dsl.Join.Product ? result * _branches[i].call(input) : result + _branches[i].call(input);
        return result;
    }

    protected override void RegisterComponents() { }
}

/// <summary><c>block(x) + shortcut(x)</c>, the children named <c>block</c> and <c>shortcut</c> as the DSL's paths are.</summary>
internal sealed class ResidualModule : TorchModuleBase
{
    private readonly TorchModuleBase _block;
    private readonly TorchModuleBase _shortcut;

    public ResidualModule(TorchModuleBase block, TorchModuleBase shortcut) : base("Residual")
    {
        _block = block;
        _shortcut = shortcut;
        register_module("block", block);
        register_module("shortcut", shortcut);
    }

    public override TorchTensor forward(TorchTensor input) => _block.call(input) + _shortcut.call(input);

    protected override void RegisterComponents() { }
}

/// <summary>
/// An auxiliary head (the DSL's <c>AuxiliaryHead</c>): the identity on its input; in training mode it also runs its head,
/// registered as <c>head</c>, and keeps the output for the loss (<see cref="TorchModule.HeadOutputs"/>).
/// </summary>
internal sealed class AuxiliaryModule : TorchModuleBase
{
    private readonly TorchModuleBase _head;

    public AuxiliaryModule(TorchModuleBase head, float weight) : base("Auxiliary")
    {
        _head = head;
        Weight = weight;
        register_module(Cnn.Dsl.AuxiliaryHead.HeadSegment, head);
    }

    public float Weight { get; }

    /// <summary>The head's output of the last training-mode call; null after an inference-mode one.</summary>
    public TorchTensor? Output { get; private set; }

    public override TorchTensor forward(TorchTensor input)
    {
        Output = training ? _head.call(input) : null;
        // An alias, as nn.Identity returns: a Sequential disposes each of its children's results once the next has run.
        return input.alias();
    }

    protected override void RegisterComponents() { }
}

/// <summary>Max pooling across channels (the DSL's <c>ChannelMaxPool</c>).</summary>
internal sealed class ChannelMaxPoolModule(int kernel, int stride) : TorchModuleBase("ChannelMaxPool")
{
    public override TorchTensor forward(TorchTensor input) => TorchOps.ChannelMaxPool(input, kernel, stride);

    protected override void RegisterComponents() { }
}

/// <summary>Average pooling across channels (the DSL's <c>ChannelAvgPool</c>).</summary>
internal sealed class ChannelAvgPoolModule(int kernel, int stride) : TorchModuleBase("ChannelAvgPool")
{
    public override TorchTensor forward(TorchTensor input) => TorchOps.ChannelAvgPool(input, kernel, stride);

    protected override void RegisterComponents() { }
}

/// <summary>Hard tanh (the DSL's <c>HardTanh</c>, ReLU6 among them), as <see cref="TorchOps.HardTanh"/> computes it.</summary>
internal sealed class HardTanhModule(float min, float max) : TorchModuleBase("Hardtanh")
{
    public override TorchTensor forward(TorchTensor input) => TorchOps.HardTanh(input, min, max);

    protected override void RegisterComponents() { }
}

/// <summary>Hard sigmoid with any slope and offset (the DSL's <c>HardSigmoid</c> other than PyTorch's), as <see cref="TorchOps.HardSigmoid"/> computes it.</summary>
internal sealed class HardSigmoidModule(float alpha, float beta) : TorchModuleBase("HardSigmoid")
{
    public override TorchTensor forward(TorchTensor input) => TorchOps.HardSigmoid(input, alpha, beta);

    protected override void RegisterComponents() { }
}

/// <summary>The DSL's <c>ConstantOperand</c>: <c>x op value</c> with <c>value</c> a parameter of the layer's shape, started as the layer's initialiser starts it.</summary>
internal sealed class ConstantOperandModule : TorchModuleBase
{
    private readonly Cnn.Core.Kernels.BinaryOp _op;
    private readonly TorchSharp.Modules.Parameter _value;

    public ConstantOperandModule(Cnn.Dsl.ConstantOperand layer) : base("ConstantOperand")
    {
        _op = layer.Op;
        var dims = layer.Shape.Select(d => (long)d).ToArray();
        _value = new TorchSharp.Modules.Parameter(layer.Op is Cnn.Core.Kernels.BinaryOp.Multiply or Cnn.Core.Kernels.BinaryOp.Divide ? torch.ones(dims) : torch.zeros(dims));
        register_parameter("value", _value);
    }

    public override TorchTensor forward(TorchTensor input) => TorchOps.Combine(_op, input, _value);

    protected override void RegisterComponents() { }
}

/// <summary>The DSL's <c>MatMul</c>: <c>torch.matmul(x, weight)</c>, the weight <c>[G..., K, M]</c> a parameter.</summary>
internal sealed class MatMulModule : TorchModuleBase
{
    private readonly TorchSharp.Modules.Parameter _weight;

    public MatMulModule(Cnn.Core.Shape weight) : base("MatMul")
    {
        _weight = new TorchSharp.Modules.Parameter(torch.zeros(weight.Select(d => (long)d).ToArray()));
        register_parameter("weight", _weight);
    }

    public override TorchTensor forward(TorchTensor input) => torch.matmul(input, _weight);

    protected override void RegisterComponents() { }
}

/// <summary>A run of channels (the DSL's <c>ChannelSlice</c>).</summary>
internal sealed class ChannelSliceModule(int start, int count) : TorchModuleBase("ChannelSlice")
{
    public override TorchTensor forward(TorchTensor input) => input.narrow(1, start, count);

    protected override void RegisterComponents() { }
}

/// <summary>Explicit padding (the DSL's <c>Pad2d</c>), as <see cref="TorchOps.Pad"/> computes it.</summary>
internal sealed class PadModule(Cnn.Dsl.Pad2d layer) : TorchModuleBase("Pad2d")
{
    public override TorchTensor forward(TorchTensor input) => TorchOps.Pad(input, layer);

    protected override void RegisterComponents() { }
}

/// <summary>The DSL's <c>Permute</c> (the sample's axes reordered, the batch first), as <see cref="TorchOps.Permute"/> computes it.</summary>
internal sealed class PermuteModule(Cnn.Dsl.Permute layer) : TorchModuleBase("Permute")
{
    public override TorchTensor forward(TorchTensor input) => TorchOps.Permute(input, layer);

    protected override void RegisterComponents() { }
}

/// <summary>ShuffleNet's channel shuffle (the DSL's <c>ChannelShuffle</c>), as <see cref="TorchOps.ChannelShuffle"/> computes it.</summary>
internal sealed class ChannelShuffleModule(int groups) : TorchModuleBase("ChannelShuffle")
{
    public override TorchTensor forward(TorchTensor input) => TorchOps.ChannelShuffle(input, groups);

    protected override void RegisterComponents() { }
}

/// <summary>Global max or average pooling over every spatial axis, where no adaptive pooling module serves (more than three spatial axes; 3-d max).</summary>
internal sealed class GlobalPoolModule(bool max) : TorchModuleBase(max ? "GlobalMaxPool" : "GlobalAvgPool")
{
    public override TorchTensor forward(TorchTensor input) => TorchOps.GlobalPool(input, max);

    protected override void RegisterComponents() { }
}

/// <summary>3-d average pooling of an input smaller than the window, which <c>nn.AvgPool3d</c> rejects (see <see cref="TorchOps.AvgPool3d"/>).</summary>
internal sealed class AvgPool3dModule(int kernel, int stride, int pad, bool countIncludePad) : TorchModuleBase("AvgPool3d")
{
    public override TorchTensor forward(TorchTensor input) => TorchOps.AvgPool3d(input, kernel, stride, pad, countIncludePad);

    protected override void RegisterComponents() { }
}

/// <summary>2-d average pooling with padding <c>nn.AvgPool2d</c> lacks: different at the ends of an axis or beyond half the window (see <see cref="TorchOps.AvgPool2d"/>).</summary>
internal sealed class AvgPool2dModule(Cnn.Dsl.AvgPool2d layer) : TorchModuleBase("AvgPool2d")
{
    public override TorchTensor forward(TorchTensor input) => TorchOps.AvgPool2d(input, layer);

    protected override void RegisterComponents() { }
}

/// <summary>Gives each sample a new shape (the DSL's <c>Reshape</c>; <c>nn.Unflatten</c> only splits one axis).</summary>
internal sealed class ReshapeModule(long[] sampleShape) : TorchModuleBase("Reshape")
{
    public override TorchTensor forward(TorchTensor input) => input.reshape(new[] { input.shape[0] }.Concat(sampleShape).ToArray());

    protected override void RegisterComponents() { }
}

/// <summary>
/// Batch normalisation under a <c>Freeze</c>: always in inference mode, whatever <c>train()</c> says, with fixed running
/// statistics and parameters that do not require gradients (Keras's <c>trainable = False</c>, as the DSL defines it).
/// The parameters and buffers carry nn.BatchNorm's names, so a saved file reads the same.
/// </summary>
internal sealed class FrozenBatchNormModule : TorchModuleBase
{
    private readonly TorchTensor _weight;
    private readonly TorchTensor _bias;
    private readonly TorchTensor _runningMean;
    private readonly TorchTensor _runningVar;
    private readonly double _epsilon;

    public FrozenBatchNormModule(long features, double epsilon) : base("FrozenBatchNorm")
    {
        _epsilon = epsilon;
        var weight = new TorchSharp.Modules.Parameter(torch.ones(features), requires_grad: false);
        var bias = new TorchSharp.Modules.Parameter(torch.zeros(features), requires_grad: false);
        _weight = weight;
        _bias = bias;
        _runningMean = torch.zeros(features);
        _runningVar = torch.ones(features);
        register_parameter("weight", weight);
        register_parameter("bias", bias);
        register_buffer("running_mean", _runningMean);
        register_buffer("running_var", _runningVar);
    }

    public override TorchTensor forward(TorchTensor input) =>
        batch_norm(input, _runningMean, _runningVar, _weight, _bias, training: false, eps: _epsilon);

    protected override void RegisterComponents() { }
}

/// <summary>
/// A transposed convolution with the weight and bias of TorchSharp's own module (same names, shapes and initialisation),
/// run by the functional bridge's rule: TorchSharp 0.107's ConvTranspose2d/3d modules apply the first axis's output padding to
/// every axis, so they cannot express per-axis output padding.
/// </summary>
internal sealed class ConvTransposeModule : TorchModuleBase
{
    private readonly Cnn.Dsl.ConvSpec _spec;
    private readonly TorchTensor _weight;
    private readonly TorchTensor? _bias;

    public ConvTransposeModule(TorchSharp.Modules.ConvolutionTranspose template, Cnn.Dsl.ConvSpec spec) : base(spec.Name)
    {
        _spec = spec;
        var weight = template.weight!;
        _weight = weight;
        register_parameter("weight", weight);
        if (spec.UseBias)
        {
            var bias = template.bias!;
            _bias = bias;
            register_parameter("bias", bias);
        }
    }

    public override TorchTensor forward(TorchTensor input) => TorchRun.Convolution(_spec, input, _weight, _bias);

    protected override void RegisterComponents() { }
}
