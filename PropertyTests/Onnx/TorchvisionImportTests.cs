using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Onnx;
using static Cnn.Tests.Onnx.ImportRoundTripProperties;

namespace Cnn.Tests.Onnx;

/// <summary>
/// Runs where python3 can import torch, torchvision, onnx and numpy (Debian's <c>python3-torchvision</c>, <c>python3-onnx</c>), or in
/// CI (<c>CI=true</c>), where their absence is a failure rather than a skip. A case marked long runs only with <c>CNN_LONG_TESTS=1</c>.
/// </summary>
public sealed class TorchvisionTheoryAttribute : TheoryAttribute
{
    public TorchvisionTheoryAttribute(bool longRunning = false)
    {
        if (longRunning && Environment.GetEnvironmentVariable("CNN_LONG_TESTS") != "1")
            Skip = "Long torchvision import case: set CNN_LONG_TESTS=1 to run it.";
        else if (TorchvisionImportTests.Python is null && !OnnxConformanceTests.InCi)
            Skip = "Torchvision import skipped: no python3 that imports torch, torchvision, onnx and numpy; install them with " +
                   "'sudo apt-get install -y python3-torchvision python3-onnx' (in CI, where CI=true, their absence fails the test).";
    }
}

/// <summary>
/// The importer reads what a real exporter writes: torchvision's classifiers with random weights (and batch-norm
/// statistics and affine terms that are not the identity), in eval mode, written by <c>torch.onnx.export</c> with a
/// dynamic batch axis, imported here and run on the im2col backend, must compute torch's own output for a fixed input
/// within 1e-4 of the output's largest magnitude. Exporting the imported tree with this project's exporter and
/// importing that again gives the same tree and bit-identical parameters. Anything the importer cannot read is refused
/// with an <see cref="OnnxUnsupportedException"/> naming the node and the operation (see <c>OnnxImporterTests</c>).
/// </summary>
public sealed class TorchvisionImportTests(ITestOutputHelper output)
{
    private static readonly Lazy<string?> FoundPython = new(FindPython);

    /// <summary>A python3 that imports the packages the export script needs, or null.</summary>
    public static string? Python => FoundPython.Value;

    private static string? FindPython()
    {
        var candidates = new[] { Environment.GetEnvironmentVariable("CNN_PYTHON"), "/usr/bin/python3", "python3" };
        foreach (var candidate in candidates.OfType<string>().Where(c => c.Length > 0).Distinct())
        {
            try
            {
                var (code, _) = Run(candidate, new[] { "-c", "import torch, torchvision, onnx, numpy" }, TimeSpan.FromMinutes(2));
                if (code == 0) return candidate;
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                // Not installed under that name: try the next.
            }
        }
        return null;
    }

    // The export script: builds the network, randomises batch-norm statistics and affine terms, saves the input and torch's output.
    private const string Script = """
import sys, numpy as np, torch, torchvision
name, opset, size, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
classes = int(sys.argv[5]) if len(sys.argv) > 5 else 10
torch.manual_seed(0)

class Custom(torch.nn.Module):
    # What torchvision's classifiers do not write: a view through a shape subgraph, a per-channel scale and shift,
    # a mean over the spatial axes, a zero pad, and a product with a matrix plus a bias.
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.scale = torch.nn.Parameter(torch.rand(1, 8, 1, 1) + 0.5)
        self.shift = torch.nn.Parameter(torch.rand(8, 1, 1) - 0.5)
        self.w = torch.nn.Parameter(torch.randn(8, 10))
        self.b = torch.nn.Parameter(torch.randn(10))
    def forward(self, x):
        x = torch.relu(self.conv(x) * self.scale + self.shift)
        x = torch.nn.functional.pad(x, (0, 0, 0, 0))
        x = torch.nn.functional.avg_pool2d(x, 2).mean((2, 3), keepdim=True)
        x = x.view(x.size(0), -1)
        return x @ self.w + self.b

if name == 'custom':
    m = Custom()
else:
    kw = dict(num_classes=classes)
    if name == 'googlenet': kw.update(aux_logits=False, init_weights=True)
    m = getattr(torchvision.models, name)(**kw)
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5); mod.running_var.uniform_(0.5, 1.5)
            mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.5, 0.5)
m.eval()
x = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (2, 3, size, size)).astype(np.float32))
with torch.no_grad(): y = m(x)
torch.onnx.export(m, x, out + '.onnx', opset_version=opset, input_names=['input'], output_names=['output'],
                  dynamic_axes={'input': {0: 'N'}, 'output': {0: 'N'}})
np.save(out + '.input.npy', x.numpy()); np.save(out + '.output.npy', y.numpy())
""";

    [TorchvisionTheory]
    [InlineData("resnet18", 32, 13)]
    [InlineData("resnet18", 32, 17)]
    [InlineData("squeezenet1_1", 32, 13)]
    [InlineData("squeezenet1_1", 32, 17)]
    [InlineData("googlenet", 32, 13)]
    [InlineData("googlenet", 32, 17)]
    [InlineData("densenet121", 32, 13)]
    [InlineData("densenet121", 32, 17)]
    public void Imports_and_computes_what_torch_computes(string network, int size, int opset) => Check(network, size, opset);

    [TorchvisionTheory(longRunning: true)]
    [InlineData("resnet50", 32, 13)]
    [InlineData("resnet50", 32, 17)]
    [InlineData("alexnet", 224, 13)]
    [InlineData("alexnet", 224, 17)]
    [InlineData("vgg11_bn", 224, 13)]
    [InlineData("vgg11_bn", 224, 17)]
    public void Large_networks_import_and_compute_what_torch_computes(string network, int size, int opset) => Check(network, size, opset);

    /// <summary>
    /// The mobile networks, read onto the layer kinds they need: ReLU6 written as Clip, hard sigmoid and hard swish, SiLU as
    /// x * Sigmoid(x), squeeze-and-excitation as a product of branches, channel shuffle as Reshape-Transpose-Reshape, the
    /// channel split as Slice (or Split) of channels, and a spatial mean that keeps no axes before the classifier.
    /// </summary>
    [TorchvisionTheory]
    [InlineData("mobilenet_v2", 32, 13)]
    [InlineData("mobilenet_v2", 32, 17)]
    [InlineData("mobilenet_v3_small", 32, 13)]
    [InlineData("mobilenet_v3_small", 32, 17)]
    [InlineData("shufflenet_v2_x1_0", 32, 13)]
    [InlineData("shufflenet_v2_x1_0", 32, 17)]
    [InlineData("efficientnet_b0", 32, 13)]
    [InlineData("efficientnet_b0", 32, 17)]
    public void Mobile_networks_import_and_compute_what_torch_computes(string network, int size, int opset) => Check(network, size, opset);

    /// <summary>
    /// torch.onnx's node names carry the module path (<c>/layer1/layer1.0/conv1/Conv</c>): the imported layers are nested and
    /// named as the modules, so PyTorch's module names freeze what they name, and the names survive export and import.
    /// </summary>
    [TorchvisionTheory]
    [InlineData(17)]
    public void Imported_layers_take_the_torch_module_names_so_freezing_by_module_works(int opset)
    {
        var dir = Export("resnet18", 32, opset);
        try
        {
            var imported = OnnxImporter.Import(Path.Combine(dir, "net.onnx"));
            var net = imported.Network;
            var paths = imported.Parameters.Paths.ToList();
            foreach (var expected in new[] { "conv1/weight", "layer1/0/add1/block/conv1/weight", "layer2/0/add1/shortcut/downsample/0/weight", "layer4/1/add1/block/conv2/bias", "fc/weight" })
                Assert.Contains(expected, paths);
            Assert.Equal("fc", Transfer.FindHead(net));
            Assert.Equal(new[] { "conv1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "flatten", "fc" },
                net.RootNode.Children.Select(c => c.Path.Split('/')[^1]).Select(n => n.StartsWith("flatten", StringComparison.Ordinal) ? "flatten" : n));

            var frozen = Transfer.Freeze(net, new[] { "layer1", "layer2" });
            var trainable = Trainer.TrainablePaths(frozen).ToHashSet();
            Assert.All(paths, p => Assert.Equal(!(p.StartsWith("layer1/", StringComparison.Ordinal) || p.StartsWith("layer2/", StringComparison.Ordinal)), trainable.Contains(p)));

            var again = OnnxImporter.FromBytes(OnnxExporter.ToBytes(net, imported.Parameters, imported.State));
            Assert.Equal(paths, again.Parameters.Paths);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private void Check(string network, int size, int opset)
    {
        var dir = Export(network, size, opset);
        try
        {
            var watch = Stopwatch.StartNew();
            var imported = OnnxImporter.Import(Path.Combine(dir, "net.onnx"));
            var x = Npy.ReadTensor(Path.Combine(dir, "net.input.npy"));
            var expected = Npy.ReadTensor(Path.Combine(dir, "net.output.npy"));
            var actual = Apply.Forward(imported.Network, imported.Parameters, x, Mode.Eval, imported.State);
            Assert.Equal(expected.Shape, actual.Shape);
            float scale = 0f, diff = 0f;
            for (int i = 0; i < expected.Size; i++)
            {
                scale = MathF.Max(scale, MathF.Abs(expected[i]));
                diff = MathF.Max(diff, MathF.Abs(expected[i] - actual[i]));
            }
            var report = imported.Report;
            output.WriteLine($"{network} {size}x{size} opset {opset}: max|diff| {diff:G3}, max|torch| {scale:G3}, relative {diff / scale:G3}; " +
                             $"{imported.Network.Leaves.Count()} layers, {report.Aliases.Count} aliases, {report.SharedWeights.Count} shared weights, " +
                             $"{report.FoldedNodes.Count} folded nodes, {report.Rewrites.Count} rewrites; {watch.Elapsed.TotalSeconds:F1} s");
            foreach (var line in report.Rewrites.Take(5)) output.WriteLine("  " + line);
            Assert.True(scale > 0f, "torch's output is all zeros, which proves nothing");
            Assert.True(diff <= 1e-4f * scale, $"{network}: max|diff| {diff} exceeds 1e-4 x max|torch output| {scale}");

            var again = OnnxImporter.FromBytes(OnnxExporter.ToBytes(imported.Network, imported.Parameters, imported.State));
            Assert.True(Canonical(imported.Network).Equals(Canonical(again.Network)), $"{network}: the tree changed in export and import");
            foreach (var (first, second) in new[] { (imported.Parameters, again.Parameters), (imported.State, again.State) })
            {
                Assert.Equal(first.Paths, second.Paths);
                foreach (var path in first.Paths)
                    Assert.True(first[path].Span.SequenceEqual(second[path].Span), $"{network}: tensor '{path}' changed in export and import");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TorchvisionTheory]
    [InlineData(9)]
    [InlineData(11)]
    [InlineData(13)]
    [InlineData(17)]
    public void Shape_subgraphs_matrix_products_constant_scales_and_zero_pads_are_folded(int opset) => Check("custom", 16, opset);

    /// <summary>
    /// Exports torchvision's <paramref name="network"/> (random weights, randomised batch-norm terms, eval mode, <paramref name="classes"/>
    /// outputs) at <paramref name="size"/> x <paramref name="size"/> and the given opset into a new folder: <c>net.onnx</c>, and a fixed
    /// input with torch's output as <c>net.input.npy</c> and <c>net.output.npy</c>. The caller deletes the folder.
    /// </summary>
    internal static string Export(string network, int size, int opset, int classes = 10)
    {
        var python = Python;
        Assert.True(python is not null,
            "No python3 imports torch, torchvision, onnx and numpy: CI must install python3-torchvision and python3-onnx ('sudo apt-get install -y python3-torchvision python3-onnx').");
        var dir = Directory.CreateTempSubdirectory("cnn-torchvision-").FullName;
        var script = Path.Combine(dir, "export.py");
        File.WriteAllText(script, Script);
        var (code, log) = Run(python!, new[] { script, network, opset.ToString(), size.ToString(), Path.Combine(dir, "net"), classes.ToString() }, TimeSpan.FromMinutes(10));
        if (code != 0)
        {
            Directory.Delete(dir, recursive: true);
            Assert.Fail($"exporting {network} with torch failed ({code}):\n{log}");
        }
        return dir;
    }

    private static (int Code, string Log) Run(string file, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"timed out after {timeout}");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
