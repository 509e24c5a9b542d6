using Cnn.Core;
using Cnn.Dsl;
using TorchSharp;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// Translates a network into a real <c>torch.nn.Module</c> (nested <c>Sequential</c>s of <c>Conv2d</c>, <c>MaxPool2d</c>,
/// <c>ReLU</c>, <c>Flatten</c> and <c>Linear</c>) holding the same weights, so it can be trained, scripted or saved with
/// TorchSharp's own tools. A module parameter named <c>conv1.weight</c> is the parameter at path <c>conv1/weight</c>
/// (under the root's name, if the root has one).
/// </summary>
public static class TorchModule
{
    /// <summary>A new module computing <paramref name="network"/> with a copy of <paramref name="parameters"/>. The caller disposes it.</summary>
    /// <exception cref="ShapeException">A parameter does not have the shape the network declares.</exception>
    /// <exception cref="CnnException">A parameter is missing, a layer name contains '.', a layer kind has no module, or LibTorch could not be loaded.</exception>
    public static torch.nn.Module<TorchTensor, TorchTensor> Build(Network network, Parameters parameters)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        LibTorchRuntime.EnsureLoaded();
        var module = Translate(network.RootNode);
        try
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var declared = DeclaredShapes(network);
            foreach (var (name, parameter) in module.named_parameters())
            {
                string path = PathOf(network, name);
                var value = parameters[path];
                if (value.Shape != declared[path])
                    throw new ShapeException($"Parameter '{path}': expected shape {declared[path]}; found {value.Shape}.");
                parameter.copy_(TorchTensors.ToTorch(value));
            }
        }
        catch
        {
            module.Dispose();
            throw;
        }
        return module;
    }

    /// <summary>The module's parameters copied back, keyed by the network's paths (for example after training it with TorchSharp).</summary>
    /// <exception cref="CnnException">The module's parameters are not those the network declares.</exception>
    public static Parameters ReadParameters(Network network, torch.nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(module);
        LibTorchRuntime.EnsureLoaded();
        var read = Parameters.Of(module.named_parameters().Select(np => KeyValuePair.Create(PathOf(network, np.name), TorchTensors.FromTorch(np.parameter))));
        var declared = DeclaredShapes(network);
        if (!read.Paths.SequenceEqual(declared.Keys.Order(StringComparer.Ordinal)))
            throw new CnnException($"The module's parameters [{string.Join(", ", read.Paths)}] are not the network's [{string.Join(", ", declared.Keys.Order(StringComparer.Ordinal))}].");
        return read;
    }

    private static torch.nn.Module<TorchTensor, TorchTensor> Translate(Node node)
    {
        switch (node.Layer)
        {
            case Serial serial:
            {
                var names = serial.ChildNames();
                var children = new (string, torch.nn.Module<TorchTensor, TorchTensor>)[node.Children.Count];
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
                return torch.nn.Sequential(children);
            }
            case Conv2d c:
                return torch.nn.Conv2d(node.Input[0], c.Filters, (c.KernelH, c.KernelW), stride: (c.StrideH, c.StrideW), padding: (c.PadH, c.PadW), bias: c.UseBias);
            case MaxPool2d m:
                return torch.nn.MaxPool2d(new long[] { m.KernelH, m.KernelW }, new long[] { m.StrideH, m.StrideW }, new long[] { m.PadH, m.PadW });
            case Relu:
                return torch.nn.ReLU();
            case Flatten:
                return torch.nn.Flatten();
            case Dense d:
                return torch.nn.Linear(node.Input[0], d.Units, hasBias: d.UseBias);
            default:
                throw new CnnException($"Layer '{(node.Path.Length == 0 ? "<root>" : node.Path)}': the module translator has no rule for layer type {node.Layer.GetType().Name}.");
        }
    }

    private static string PathOf(Network network, string moduleParameterName) =>
        Network.Join(network.RootNode.Path, moduleParameterName.Replace('.', '/'));

    private static Dictionary<string, Shape> DeclaredShapes(Network network) =>
        network.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()).ToDictionary(s => s.Path, s => s.Spec.Shape, StringComparer.Ordinal);
}
