using Cnn.Core;
using Cnn.Dsl;
using TorchSharp;
using TorchTensor = TorchSharp.torch.Tensor;
using TorchModuleBase = TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// Translates a network into a real <c>torch.nn.Module</c> holding the same weights and batch-norm buffers, so it can be
/// trained (on a GPU where there is one), scripted or saved with TorchSharp's own tools; and reads weights back, from a
/// module or from a file TorchSharp saved, into the DSL's parameter tree and state by path.
/// </summary>
/// <remarks>
/// <para>A <see cref="Serial"/> becomes an <c>nn.Sequential</c>; each layer kind its <c>nn</c> module (<c>Conv1d/2d/3d</c>,
/// <c>ConvTranspose1d/2d/3d</c>, <c>Linear</c>, <c>MaxPool1d/2d/3d</c>, <c>AvgPool1d/2d/3d</c>, <c>AdaptiveAvgPool</c>/<c>AdaptiveMaxPool</c>,
/// <c>BatchNorm1d/2d/3d</c>, <c>LocalResponseNorm</c>, <c>Dropout</c>, the activations, <c>Flatten</c>, <c>Identity</c>).
/// TorchSharp has no module for a fan-out, a residual block, channel max pooling or a general reshape: those are small
/// custom modules. A module parameter named <c>conv1.weight</c> is the parameter at path <c>conv1/weight</c> (under the
/// root's name, if the root has one); <c>bn1.running_mean</c> is the state at <c>bn1/running_mean</c>.</para>
/// <para>Under a <see cref="Freeze"/>, parameters do not require gradients, dropout is the identity and batch norm always
/// runs in inference mode (a custom module), as <see cref="Apply"/> defines freezing. Dropout elsewhere is <c>nn.Dropout</c>,
/// which draws its masks from LibTorch's generator: a module's training-mode output is therefore not comparable element by
/// element with <see cref="Apply"/>'s (the functional <see cref="TorchNetwork"/> is, since it uses our masks).</para>
/// </remarks>
public static class TorchModule
{
    private const string BatchCounter = "num_batches_tracked";

    /// <summary>A new module computing <paramref name="network"/> with a copy of <paramref name="parameters"/> and <paramref name="state"/>. The caller disposes it.</summary>
    /// <param name="network">The network.</param>
    /// <param name="parameters">Its parameters, by path.</param>
    /// <param name="state">Its state (batch-norm running statistics), by path; required when the network has any.</param>
    /// <exception cref="ShapeException">A parameter or state tensor does not have the shape the network declares.</exception>
    /// <exception cref="CnnException">A parameter or state tensor is missing, a layer name contains '.', a layer kind has no module, or LibTorch could not be loaded.</exception>
    public static torch.nn.Module<TorchTensor, TorchTensor> Build(Network network, Parameters parameters, Parameters? state = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        LibTorchRuntime.EnsureLoaded();
        var st = state ?? Parameters.Empty;
        var missing = StateShapes(network).Keys.FirstOrDefault(p => !st.Contains(p));
        if (missing is not null)
            throw new CnnException($"The network has state ('{missing}', batch-norm running statistics): pass the state from Initializer.InitState or from training.");
        var module = Owned(Translate(network.RootNode));
        try
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var declared = ParameterShapes(network);
            foreach (var (name, parameter) in module.named_parameters())
                parameter.copy_(TorchTensors.ToTorch(Checked(parameters, PathOf(network, name), declared, "Parameter")));
            var declaredState = StateShapes(network);
            foreach (var (name, buffer) in module.named_buffers())
                if (!IsBatchCounter(name))
                    buffer.copy_(TorchTensors.ToTorch(Checked(st, PathOf(network, name), declaredState, "State")));
        }
        catch
        {
            module.Dispose();
            throw;
        }
        return module;
    }

    /// <summary>
    /// The auxiliary heads' outputs of the module's last training-mode call, each with its loss weight, in execution order
    /// (empty after an inference-mode call, or for a network without heads). The training loss of a network with heads is
    /// the main output's loss plus each head's weighted loss, as <see cref="TotalLoss"/> computes it.
    /// </summary>
    /// <param name="module">A module made by <see cref="Build"/>.</param>
    public static IReadOnlyList<TorchHeadOutput> HeadOutputs(torch.nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return module.modules().OfType<AuxiliaryModule>().Where(m => m.Output is not null).Select(m => new TorchHeadOutput(m.Weight, m.Output!)).ToArray();
    }

    /// <summary>The module's parameters copied back, keyed by the network's paths (for example after training it with TorchSharp).</summary>
    /// <exception cref="CnnException">The module's parameters are not those the network declares.</exception>
    public static Parameters ReadParameters(Network network, torch.nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(module);
        LibTorchRuntime.EnsureLoaded();
        var read = Parameters.Of(module.named_parameters().Select(np => KeyValuePair.Create(PathOf(network, np.name), TorchTensors.FromTorch(np.parameter))));
        Expect(read, ParameterShapes(network), "parameters");
        return read;
    }

    /// <summary>
    /// The module's batch-norm running statistics copied back, keyed by the network's state paths (PyTorch's
    /// <c>num_batches_tracked</c> counters have no counterpart in the DSL and are left out).
    /// </summary>
    /// <exception cref="CnnException">The module's buffers are not the state the network declares.</exception>
    public static Parameters ReadState(Network network, torch.nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(module);
        LibTorchRuntime.EnsureLoaded();
        var read = Parameters.Of(module.named_buffers().Where(nb => !IsBatchCounter(nb.name))
            .Select(nb => KeyValuePair.Create(PathOf(network, nb.name), TorchTensors.FromTorch(nb.buffer))));
        Expect(read, StateShapes(network), "state tensors");
        return read;
    }

    /// <summary>
    /// Reads a file written by TorchSharp's <c>module.save(path)</c> for a module of this network (built by <see cref="Build"/>,
    /// or by hand with the same names) into the DSL's parameters and state.
    /// </summary>
    /// <exception cref="CnnException">The file cannot be read, or its tensors are not those of this network's module; the message names the file.</exception>
    public static TorchWeights Load(Network network, string path)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(path);
        LibTorchRuntime.EnsureLoaded();
        if (!File.Exists(path)) throw new CnnException($"Cannot read TorchSharp weights: the file '{path}' does not exist.");
        using var module = Owned(Translate(network.RootNode));
        try
        {
            module.load(path, strict: true);
        }
        // TorchSharp reports a file of another module as ArgumentException, a truncated one as EndOfStreamException, a
        // corrupt tensor record as whatever its decoder throws: every one of them means "not this network's file".
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CnnException($"'{path}' is not a TorchSharp file of this network's module ({e.Message}).", e);
        }
        return new TorchWeights(ReadParameters(network, module), ReadState(network, module));
    }

    /// <summary>
    /// The module with its parameters and buffers taken out of any dispose scope the caller has open: they belong to the
    /// module, which the caller disposes, and a scope would otherwise dispose them under it when it closes.
    /// </summary>
    private static TorchModuleBase Owned(TorchModuleBase module)
    {
        foreach (var p in module.parameters()) p.DetachFromDisposeScope();
        foreach (var b in module.buffers()) b.DetachFromDisposeScope();
        return module;
    }

    private static TorchModuleBase Translate(Node node)
    {
        switch (node.Layer)
        {
            case Serial serial:
                return torch.nn.Sequential(Children(node, serial.ChildNames()));
            case FanOut fan:
                return new FanOutModule(Children(node, fan.ChildNames()), fan.Join);
            case Residual:
            {
                var parts = Children(node, new[] { "block", "shortcut" });
                return new ResidualModule(parts[0].Item2, parts[1].Item2);
            }
            case Freeze:
                // Freezing is carried by the nodes under it (Node.Frozen), so the wrapper adds no level to the names.
                return Translate(node.Children[0]);
            case AuxiliaryHead aux:
                return new AuxiliaryModule(Children(node, new[] { AuxiliaryHead.HeadSegment })[0].Item2, aux.Weight);
            case LeafLayer:
            {
                var module = Leaf(node);
                if (node.Frozen)
                    foreach (var p in module.parameters()) p.requires_grad = false;
                return module;
            }
            default:
                throw NoRule(node);
        }
    }

    private static (string, TorchModuleBase)[] Children(Node node, IReadOnlyList<string> names)
    {
        var children = new (string, TorchModuleBase)[node.Children.Count];
        try
        {
            for (int i = 0; i < children.Length; i++)
            {
                if (names[i].Contains('.'))
                    throw new CnnException($"Layer '{node.Children[i].Path}': a TorchSharp module name cannot contain '.'; rename the layer.");
                children[i] = (names[i], Translate(node.Children[i]));
            }
        }
        catch
        {
            foreach (var (_, m) in children) m?.Dispose();
            throw;
        }
        return children;
    }

    /// <summary>Every convolution and transposed convolution: torch's module of its rank, every option per axis.</summary>
    private static TorchModuleBase Convolution(int channels, ConvSpec s)
    {
        var g = s.Geometry;
        int[] k = g.Kernel, st = g.Stride, p = g.PadBegin, d = g.Dilation, q = s.OutputPad;
        return (g.Rank, s.Transposed) switch
        {
            (1, false) => torch.nn.Conv1d(channels, s.Filters, k[0], st[0], p[0], d[0], groups: g.Groups, bias: s.UseBias),
            (2, false) => torch.nn.Conv2d(channels, s.Filters, (k[0], k[1]), stride: (st[0], st[1]), padding: (p[0], p[1]), dilation: (d[0], d[1]),
                groups: g.Groups, bias: s.UseBias),
            (_, false) => torch.nn.Conv3d(channels, s.Filters, (k[0], k[1], k[2]), stride: (st[0], st[1], st[2]), padding: (p[0], p[1], p[2]),
                dilation: (d[0], d[1], d[2]), groups: g.Groups, bias: s.UseBias),
            (1, true) when g.SymmetricPadding => torch.nn.ConvTranspose1d(channels, s.Filters, k[0], st[0], p[0], q[0], d[0], groups: g.Groups, bias: s.UseBias),
            // Padding that differs between the ends (PadEnd) is the bridge's rule: the unpadded output, cropped.
            (1, true) => new ConvTransposeModule(torch.nn.ConvTranspose1d(channels, s.Filters, k[0], st[0], 0, q[0], d[0], groups: g.Groups, bias: s.UseBias), s),
            // TorchSharp 0.107's ConvTranspose2d/3d modules use the first output padding on every axis: its weights, the bridge's rule.
            (2, true) => new ConvTransposeModule(torch.nn.ConvTranspose2d(channels, s.Filters, (k[0], k[1]), stride: (st[0], st[1]), padding: (p[0], p[1]),
                dilation: (d[0], d[1]), groups: g.Groups, bias: s.UseBias), s),
            (_, true) => new ConvTransposeModule(torch.nn.ConvTranspose3d(channels, s.Filters, (k[0], k[1], k[2]), stride: (st[0], st[1], st[2]),
                padding: (p[0], p[1], p[2]), dilation: (d[0], d[1], d[2]), groups: g.Groups, bias: s.UseBias), s),
        };
    }

    private static TorchModuleBase Leaf(Node node)
    {
        int spatial = node.Input.Rank - 1;
        switch (node.Layer)
        {
            case ConvolutionLayer c:
                return Convolution(node.Input[0], c.Spec());
            case Dense d:
                return torch.nn.Linear(node.Input[0], d.Units, hasBias: d.UseBias);
            case MatMul:
                return new MatMulModule(node.ParameterSpecs().Single().Spec.Shape);
            case ConstantOperand k:
                return new ConstantOperandModule(k);
            case MaxPool2d m:
                return torch.nn.MaxPool2d(new long[] { m.KernelH, m.KernelW }, new long[] { m.StrideH, m.StrideW }, new long[] { m.PadH, m.PadW },
                    new long[] { m.DilationH, m.DilationW }, ceil_mode: m.CeilMode);
            case AvgPool2d { SymmetricPadding: false } a:
                return new AvgPool2dModule(a);
            case AvgPool2d a:
                return torch.nn.AvgPool2d(new long[] { a.KernelH, a.KernelW }, new long[] { a.StrideH, a.StrideW }, new long[] { a.PadH, a.PadW },
                    ceil_mode: a.CeilMode, count_include_pad: a.CountIncludePad);
            case PoolNd { Op: PoolOp.Max } pn when spatial == 1:
                return torch.nn.MaxPool1d(pn.Kernel, pn.Stride, pn.Pad);
            case PoolNd pn when spatial == 1:
                return torch.nn.AvgPool1d(pn.Kernel, pn.Stride, pn.Pad, count_include_pad: pn.CountIncludePad);
            case PoolNd { Op: PoolOp.Max } pn:
                return torch.nn.MaxPool3d(Three(pn.Kernel), Three(pn.Stride), Three(pn.Pad));
            case PoolNd pn when TorchOps.AvgPool3dAccepts(node.Input.Select(d => (long)d), pn.Kernel):
                return torch.nn.AvgPool3d(Three(pn.Kernel), Three(pn.Stride), Three(pn.Pad), count_include_pad: pn.CountIncludePad);
            case PoolNd pn:
                return new AvgPool3dModule(pn.Kernel, pn.Stride, pn.Pad, pn.CountIncludePad);
            case GlobalPool gp:
                return (gp.Op, spatial) switch
                {
                    (PoolOp.Average, 1) => torch.nn.AdaptiveAvgPool1d(1),
                    (PoolOp.Average, 2) => torch.nn.AdaptiveAvgPool2d(1),
                    (PoolOp.Average, 3) => torch.nn.AdaptiveAvgPool3d(1),
                    (PoolOp.Max, 1) => torch.nn.AdaptiveMaxPool1d(1),
                    (PoolOp.Max, 2) => torch.nn.AdaptiveMaxPool2d(new long[] { 1, 1 }),
                    // TorchSharp 0.107's AdaptiveMaxPool3d fails with a NullReferenceException in adaptive_max_pool3d_with_indices.
                    _ => new GlobalPoolModule(gp.Op == PoolOp.Max),
                };
            case ChannelMaxPool cm:
                return new ChannelMaxPoolModule(cm.Kernel, cm.Stride);
            case ChannelAvgPool ca:
                return new ChannelAvgPoolModule(ca.Kernel, ca.Stride);
            case Relu:
                return torch.nn.ReLU();
            case LeakyRelu l:
                return torch.nn.LeakyReLU(l.Slope);
            case Elu e:
                return torch.nn.ELU(e.Alpha);
            case Sigmoid:
                return torch.nn.Sigmoid();
            case Tanh:
                return torch.nn.Tanh();
            case HardTanh h:
                return new HardTanhModule(h.Min, h.Max);
            case HardSigmoid { IsPyTorch: true }:
                return torch.nn.Hardsigmoid();
            case HardSigmoid h:
                return new HardSigmoidModule(h.Alpha, h.Beta);
            case HardSwish:
                return torch.nn.Hardswish();
            case Silu:
                return torch.nn.SiLU();
            case Gelu:
                return torch.nn.GELU();
            case Softmax s:
                return torch.nn.Softmax(s.Axis);
            case LogSoftmax s:
                return torch.nn.LogSoftmax(s.Axis);
            case Lrn l:
                return torch.nn.LocalResponseNorm(l.Size, l.Alpha, l.Beta, l.K);
            case Dropout when node.Frozen:
                return torch.nn.Identity();
            case Dropout d:
                return torch.nn.Dropout(d.P);
            case Identity:
                return torch.nn.Identity();
            case BatchNorm bn when node.Frozen:
                return new FrozenBatchNormModule(node.Input[0], bn.Epsilon);
            case BatchNorm bn:
                return spatial switch
                {
                    0 or 1 => torch.nn.BatchNorm1d(node.Input[0], bn.Epsilon, bn.Momentum),
                    2 => torch.nn.BatchNorm2d(node.Input[0], bn.Epsilon, bn.Momentum),
                    3 => torch.nn.BatchNorm3d(node.Input[0], bn.Epsilon, bn.Momentum),
                    _ => throw new CnnException($"Layer '{TorchRun.Describe(node)}': PyTorch has batch-norm modules for 0 to 3 spatial axes; this input {node.Input} has {spatial}."),
                };
            case Flatten:
                return torch.nn.Flatten();
            case ChannelSlice sl:
                return new ChannelSliceModule(sl.Start, sl.Count);
            case Pad2d pd:
                return new PadModule(pd);
            case ChannelShuffle cs:
                return new ChannelShuffleModule(cs.Groups);
            case Permute pm:
                return new PermuteModule(pm);
            case Reshape r:
                return new ReshapeModule(r.Target.Select(d => (long)d).ToArray());
            default:
                throw NoRule(node);
        }
    }

    private static long[] Three(int v) => new long[] { v, v, v };

    private static CnnException NoRule(Node node) =>
        new($"Layer '{TorchRun.Describe(node)}': the module translator has no rule for layer type {node.Layer.GetType().Name}.");

    private static bool IsBatchCounter(string moduleName) => moduleName == BatchCounter || moduleName.EndsWith("." + BatchCounter, StringComparison.Ordinal);

    private static Tensor Checked(Parameters from, string path, Dictionary<string, Shape> declared, string what)
    {
        var value = from[path];
        if (!declared.TryGetValue(path, out var shape))
            throw new CnnException($"{what} '{path}' of the module is not one the network declares.");
        if (value.Shape != shape)
            throw new ShapeException($"{what} '{path}': expected shape {shape}; found {value.Shape}.");
        return value;
    }

    private static void Expect(Parameters read, Dictionary<string, Shape> declared, string what)
    {
        var expected = declared.Keys.Order(StringComparer.Ordinal).ToArray();
        if (!read.Paths.SequenceEqual(expected))
            throw new CnnException($"The module's {what} [{string.Join(", ", read.Paths)}] are not the network's [{string.Join(", ", expected)}].");
        foreach (var (path, t) in read.Entries)
            if (t.Shape != declared[path])
                throw new ShapeException($"The module's {what} '{path}' has shape {t.Shape}; the network declares {declared[path]}.");
    }

    private static string PathOf(Network network, string moduleName) =>
        Network.Join(network.RootNode.Path, moduleName.Replace('.', '/'));

    private static Dictionary<string, Shape> ParameterShapes(Network network) =>
        network.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()).ToDictionary(s => s.Path, s => s.Spec.Shape, StringComparer.Ordinal);

    private static Dictionary<string, Shape> StateShapes(Network network) =>
        network.RootNode.Leaves().SelectMany(l => l.StateSpecs()).ToDictionary(s => s.Path, s => s.Spec.Shape, StringComparer.Ordinal);
}
