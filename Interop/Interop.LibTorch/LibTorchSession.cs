using System.Collections.Immutable;
using Cnn.Core;
using Cnn.Dsl;
using TorchSharp;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// A training run of <see cref="LibTorchBackend"/>: the parameters (autograd leaves), the network's state and the optimizer's
/// slots as tensors on one device, updated in place by each step; copies for the CPU are made when asked for and kept until
/// the next step, since a loop asks for them several times at an epoch's end.
/// </summary>
internal sealed class LibTorchSession : TrainingSession
{
    private readonly Network _network;
    private readonly torch.Device _device;
    private readonly Dictionary<string, TorchTensor> _parameters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TorchTensor> _state = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, TorchTensor>> _slots = new(StringComparer.Ordinal);
    private readonly string[] _trainable;
    private long _step;
    private Parameters? _parametersRead, _stateRead;
    private OptimizerState? _optimizerStateRead;

    public LibTorchSession(Network network, torch.Device device, Parameters parameters, Parameters state, OptimizerState optimizerState)
    {
        _network = network;
        _device = device;
        var trainable = Trainer.TrainablePaths(network);
        _trainable = network.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()).Select(s => s.Path).Where(trainable.Contains).ToArray();
        try
        {
            foreach (var (path, spec) in network.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()))
                _parameters.Add(path, OnDevice(Declared(parameters, path, spec.Shape, "Parameter")).requires_grad_(trainable.Contains(path)));
            foreach (var (path, spec) in network.RootNode.Leaves().SelectMany(l => l.StateSpecs()))
                _state.Add(path, OnDevice(Declared(state, path, spec.Shape, "State")));
            foreach (var (name, tensors) in optimizerState.Slots)
                _slots.Add(name, tensors.Entries.ToDictionary(kv => kv.Key, kv => OnDevice(kv.Value), StringComparer.Ordinal));
        }
        catch
        {
            Dispose();
            throw;
        }
        _step = optimizerState.Step;
    }

    public override BatchOutcome Step(Optimizer optimizer, Tensor x, ReadOnlySpan<int> labels, LossFunction loss, int seed)
    {
        var targets = TorchNetwork.CheckLabels(_network, x, labels.ToArray(), loss);
        return StepOn(optimizer, x, output => TorchNetwork.LossOf(output, targets, loss, _network.OutputShape[0]), seed);
    }

    public override BatchOutcome Step(Optimizer optimizer, Tensor x, Tensor targets, LossFunction loss, int seed)
    {
        TorchTargetLosses.Check(_network, x, targets, loss);
        return StepOn(optimizer, x, output => TorchTargetLosses.LossOf(output, ToDevice(targets), loss), seed);
    }

    private BatchOutcome StepOn(Optimizer optimizer, Tensor x, Func<TorchTensor, TorchTensor> lossOf, int seed)
    {
        using var scope = torch.NewDisposeScope();
        var run = new TorchRun(_parameters, _state, Mode.Train, seed);
        var output = run.Node(_network.RootNode, ToDevice(x));
        // Auxiliary heads add their weighted losses against the same truth, as TotalLoss does on im2col.
        var value = TorchNetwork.TotalLossOf(output, run.Heads, lossOf);
        float lossValue = value.item<float>();
        var outcome = new BatchOutcome(lossValue, TorchTensors.FromTorch(output));
        (_parametersRead, _stateRead) = (null, null);
        if (!float.IsFinite(lossValue)) return outcome;
        value.backward();
        _step++;
        _optimizerStateRead = null;
        using var noGrad = torch.no_grad();
        foreach (var path in _trainable)
        {
            var w = _parameters[path];
            // A parameter that did not reach the loss gets no gradient from autograd; its gradient is zero, as on im2col.
            var g = w.grad ?? torch.zeros_like(w);
            TorchOptimizer.Update(optimizer, w, g, _step, name => Slot(name, path));
            g.zero_();
        }
        return outcome;
    }

    public override Parameters Parameters => _parametersRead ??= Read(_parameters);

    public override Parameters State => _stateRead ??= Read(_state);

    public override OptimizerState OptimizerState => _optimizerStateRead ??=
        new(_step, _slots.ToImmutableSortedDictionary(kv => kv.Key, kv => Read(kv.Value), StringComparer.Ordinal));

    public override void Restore(Parameters parameters, Parameters state)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var (path, t) in _parameters) t.copy_(ToDevice(Declared(parameters, path, Dsl(t), "Parameter")));
        foreach (var (path, t) in _state) t.copy_(ToDevice(Declared(state, path, Dsl(t), "State")));
        (_parametersRead, _stateRead) = (null, null);
    }

    protected override void Dispose(bool disposing)
    {
        foreach (var t in _parameters.Values.Concat(_state.Values).Concat(_slots.Values.SelectMany(s => s.Values))) t.Dispose();
        _parameters.Clear();
        _state.Clear();
        _slots.Clear();
    }

    private TorchTensor Slot(string name, string path) =>
        _slots.TryGetValue(name, out var slot) && slot.TryGetValue(path, out var t) ? t
            : throw new CnnException($"The optimizer state has no slot '{name}' for parameter '{path}': it was made for another optimizer ([{string.Join(", ", _slots.Keys)}]).");

    /// <summary>A copy of <paramref name="tensor"/> on the session's device, owned by the caller (outside any dispose scope).</summary>
    private TorchTensor OnDevice(Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        return ToDevice(tensor).MoveToOuterDisposeScope().DetachFromDisposeScope();
    }

    private TorchTensor ToDevice(Tensor tensor)
    {
        var t = TorchTensors.ToTorch(tensor);
        return _device.type == DeviceType.CPU ? t : t.to(_device);
    }

    private static Parameters Read(Dictionary<string, TorchTensor> tensors) =>
        Parameters.Of(tensors.Select(kv => KeyValuePair.Create(kv.Key, TorchTensors.FromTorch(kv.Value))));

    private static Shape Dsl(TorchTensor t) => new(t.shape.Select(d => checked((int)d)).ToArray());

    private static Tensor Declared(Parameters values, string path, Shape shape, string what)
    {
        if (!values.Contains(path)) throw new CnnException($"{what} '{path}' is missing: the network declares it with shape {shape}.");
        var value = values[path];
        return value.Shape == shape ? value : throw new ShapeException($"{what} '{path}': expected shape {shape}; found {value.Shape}.");
    }
}
