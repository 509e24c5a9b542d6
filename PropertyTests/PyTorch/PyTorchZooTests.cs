using System.Diagnostics;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Dsl.PyTorch;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.PyTorch;

/// <summary>
/// Every zoo network, and a few networks that hold the layer kinds and shapes the zoo does not (a named root, a leaf root,
/// a fan-out root, frozen layers, batch norm over features, 1-d and 3-d pooling, a transposed convolution with output
/// padding, a layer named like an nn.Module method), written by the PyTorch writer and run in eval mode by the system's
/// PyTorch on our weights and batch-norm statistics: one Python process for all of them. Each output must be within 1e-5
/// of its largest element of ours.
/// </summary>
public sealed class PyTorchZooTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;

    public static IEnumerable<(string Name, Network Network)> Networks() =>
        Zoo.Names.Where(n => !Zoo.Aliases.ContainsKey(n)).Select(n => (n, Zoo.ByName(n))).Concat(CoverageNetworks())
            .Concat(Coverage.LayerKinds.All.Select(k => ("kind-" + k.Name, Network.Create(new Serial(k.Example).Named("net"), k.Input))));

    /// <summary>Networks for the kinds, combinations and names the zoo leaves out.</summary>
    public static IEnumerable<(string, Network)> CoverageNetworks()
    {
        yield return ("coverage-2d", Network.Create(new Serial(
            new Conv2d(6, 3, 3, PadH: 1, PadW: 1, Groups: 3), new LeakyRelu(0.1f),
            FanOut.Sum(new Serial(new Conv2d(6, 3, 3, PadH: 2, PadW: 2, DilationH: 2, DilationW: 2), new Elu(0.5f)), new Identity()),
            new ChannelMaxPool(2, 2),
            new ChannelAvgPool(2, 1),
            new AvgPool2d(3, 3, 2, 2, 1, 1, CeilMode: true, CountIncludePad: false),
            new Freeze(new Serial(new Conv2d(4, 1, 1), new BatchNorm()).Named("frozen")),
            new Sigmoid(), new GlobalPool(PoolOp.Max), new Reshape(4),
            new Dense(6).Named("train"), new Tanh(), new Dropout(0.3f), new BatchNorm(0.2f, 1e-3f), new Dense(5), new Softmax()).Named("net"),
            new Shape(3, 11, 11)));
        yield return ("coverage-1d", Network.Create(new Serial(
            new Conv1d(4, 3, Stride: 2, Pad: 1, Dilation: 2, Groups: 2), new BatchNorm(), new Relu(),
            new PoolNd(PoolOp.Average, 3, 2, 1, CountIncludePad: false), new PoolNd(PoolOp.Max, 2, 1),
            new Flatten(), new Dense(3), new LogSoftmax()), new Shape(2, 20)));
        yield return ("coverage-3d", Network.Create(new Serial(
            new Conv3d(2, 3, Pad: 1), new ConvTranspose3d(4, Kernel: (1, 2, 3), Stride: (1, 2, 1), Pad: (0, 1, 1), OutputPad: (0, 1, 0), Dilation: (2, 1, 1), Groups: 2),
            new Conv3d(2, Kernel: (2, 1, 3), Stride: (1, 2, 1), Pad: (1, 0, 1), Dilation: (1, 1, 2), Groups: 2), new PoolNd(PoolOp.Average, 5, 1, 2), new PoolNd(PoolOp.Average, 5, 1, 2, CountIncludePad: false),
            new PoolNd(PoolOp.Max, 2, 2), new GlobalPool(PoolOp.Average), new Flatten(), new Dense(2)), new Shape(1, 4, 4, 4)));
        yield return ("coverage-deconv", Network.Create(new Serial(
            new ConvTranspose2d(2, 3, 2, 1, OutputPad: 1), new ConvTranspose2d(4, Kernel: (2, 3), Stride: (3, 1), Pad: (1, 0), OutputPad: (2, 0), Dilation: (1, 2), Groups: 2),
            new MaxPool2d(2, 2, 1, 1, CeilMode: true), new GlobalPool(PoolOp.Max)), new Shape(3, 5, 5)));
        yield return ("coverage-deconv-1d", Network.Create(new Serial(
            new ConvTranspose1d(4, 3, Stride: 2, Pad: 1, OutputPad: 1, Dilation: 2, Groups: 2), new Relu(), new Flatten(), new Dense(3)), new Shape(2, 6)));
        yield return ("coverage-leaf-root", Network.Create(new Dense(3), new Shape(4)));
        yield return ("coverage-fanout-root", Network.Create(FanOut.Concat(new Conv2d(2, 1, 1), new Serial(new Conv2d(3, 1, 1), new Relu())), new Shape(1, 4, 4)));
    }

    [PyTorchFact]
    public void Every_zoo_network_gives_our_eval_outputs_in_pytorch()
    {
        var python = PythonTorch.Require();
        var dir = Directory.CreateTempSubdirectory("pytorch-zoo");
        try
        {
            var expected = new List<(string Name, string Folder, Tensor Output)>();
            var clock = Stopwatch.StartNew();
            foreach (var (name, net) in Networks())
            {
                var folder = Path.Combine(dir.FullName, name);
                // The ONNX zoo test's weights: every layer shows in the output, and batch norm is not the identity.
                var (p, state) = Onnx.ZooExportTests.ScaledParameters(net, seed: name.Length);
                var x = RandomBatch(net.InputShape, 2, seed: 100 + name.Length);
                PyTorchExport.Write(net, p, state, folder, new PyTorchExportOptions { ModelName = name });
                Npy.Write(Path.Combine(folder, "x.npy"), x);
                expected.Add((name, folder, Apply.Forward(net, p, x, Mode.Eval, state)));
            }
            var written = clock.Elapsed;
            // One process imports every model.py (each as a module of its own) and writes each output.
            var driver = Path.Combine(dir.FullName, "driver.py");
            File.WriteAllText(driver, """
                import gc, importlib.util, os, sys
                for i, folder in enumerate(sys.argv[1:]):
                    spec = importlib.util.spec_from_file_location(f"model{i}", os.path.join(folder, "model.py"))
                    module = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(module)
                    module.predict(module.Network, os.path.join(folder, "weights.safetensors"), os.path.join(folder, "x.npy"), os.path.join(folder, "y.npy"))
                    del module
                    gc.collect()
                """);
            var run = PythonTorch.Run(python, expected.Select(e => e.Folder).Prepend(driver), null, TimeSpan.FromMinutes(10));
            Assert.True(run.Code == 0, run.Output);
            output.WriteLine($"written in {written.TotalSeconds:F1} s, run by PyTorch in {(clock.Elapsed - written).TotalSeconds:F1} s");
            var failures = new List<string>();
            foreach (var (name, folder, ours) in expected)
            {
                var theirs = Npy.ReadTensor(Path.Combine(folder, "y.npy"));
                double relative = theirs.Shape == ours.Shape ? PythonTorch.Relative(theirs, ours) : double.PositiveInfinity;
                output.WriteLine($"{name,-22} output {ours.Shape,-16} max relative difference {relative:E2}");
                if (!(relative <= Tolerance)) failures.Add($"{name}: {relative:E2} (output {theirs.Shape}, ours {ours.Shape})");
                // Outputs that hardly vary would hide a wrong layer.
                if (!(ours.Span.ToArray().Max() - ours.Span.ToArray().Min() > 1e-2f)) failures.Add($"{name}: our outputs span less than 1e-2");
            }
            Assert.True(failures.Count == 0, "PyTorch's outputs differ from ours beyond 1e-5: " + string.Join("; ", failures));

            // The command line a user runs gives what the driver's call gave.
            var lenet = expected.Single(e => e.Name == "lenet5").Folder;
            var main = PythonTorch.Run(python, [Path.Combine(lenet, "model.py"), Path.Combine(lenet, "weights.safetensors"), Path.Combine(lenet, "x.npy"),
                Path.Combine(lenet, "y-main.npy")], null, TimeSpan.FromMinutes(2));
            Assert.True(main.Code == 0, main.Output);
            Assert.Equal(Npy.ReadTensor(Path.Combine(lenet, "y.npy")).ToArray(), Npy.ReadTensor(Path.Combine(lenet, "y-main.npy")).ToArray());
        }
        finally { dir.Delete(true); }
    }

    /// <summary>A batch of values uniform in [0, 1).</summary>
    internal static Tensor RandomBatch(Shape perSample, int batch, int seed)
    {
        var rng = new Random(seed);
        var shape = perSample.PrependBatch(batch);
        return Tensor.FromArray(Enumerable.Range(0, shape.Size).Select(_ => rng.NextSingle()).ToArray(), shape);
    }
}
