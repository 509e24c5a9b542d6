using System.Globalization;
using System.Text.RegularExpressions;
using Cnn.Dsl;
using Cnn.Onnx;
using Cnn.Tests.Onnx;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.Docs;

/// <summary>
/// The README section "Bring a PyTorch model": its C# and F# blocks are <c>examples/BringPyTorchCSharp/Program.cs</c> and
/// <c>examples/BringPyTorchFSharp/Program.fs</c> character for character, and both run on a torchvision network exported by
/// torch at test time (squeezenet1_1 at 32x32, the smallest to fine-tune), freezing all but a new 10-class head, giving
/// bitwise-equal weights in the two languages with the frozen ones as imported.
/// </summary>
public sealed class BringPyTorchExampleTests(ITestOutputHelper output)
{
    private const string Section = "Bring a PyTorch model";

    [Fact]
    public void The_sections_examples_are_the_example_programs_verbatim()
    {
        Assert.Equal(ReadmeExampleTests.Source("examples/BringPyTorchCSharp/Program.cs"), ReadmeExampleTests.Block(Section, "csharp"));
        Assert.Equal(ReadmeExampleTests.Source("examples/BringPyTorchFSharp/Program.fs"), ReadmeExampleTests.Block(Section, "fsharp"));
    }

    [TorchvisionTheory]
    [InlineData("squeezenet1_1")]
    public void The_examples_fine_tune_an_exported_torchvision_network_alike_in_both_languages(string network)
    {
        var exported = TorchvisionImportTests.Export(network, 32, 17, classes: 1000);
        var onnx = Path.Combine(exported, "net.onnx");
        (string Dir, string Output)? csharp = null, fsharp = null;
        try
        {
            csharp = ReadmeExampleTests.Run("examples/BringPyTorchCSharp/BringPyTorchCSharp.csproj", onnx);
            fsharp = ReadmeExampleTests.Run("examples/BringPyTorchFSharp/BringPyTorchFSharp.fsproj", onnx);
            var imported = OnnxImporter.Import(onnx);
            var head = Transfer.FindHead(imported.Network);
            foreach (var (dir, text) in new[] { csharp.Value, fsharp.Value })
            {
                var accuracy = Regex.Match(text, @"held-out accuracy (\d\.\d+)");
                Assert.True(accuracy.Success, text);
                output.WriteLine($"{network}: held-out accuracy {double.Parse(accuracy.Groups[1].Value, CultureInfo.InvariantCulture):P1} (random features)");
                Assert.Contains($"head: {head}", text);
                Assert.Contains("Epoch 2/2", text);
                Assert.True(new FileInfo(Path.Combine(dir, "tuned.onnx")).Length > 0, "no tuned.onnx");
            }
            Assert.Contains($"trainable: {head}/bias, {head}/weight", csharp.Value.Output);
            var a = Model.Load(Path.Combine(csharp.Value.Dir, "tuned.safetensors"));
            var b = Model.Load(Path.Combine(fsharp.Value.Dir, "tuned.safetensors"));
            Assert.Equal(a.Network, b.Network);
            Assert.Equal(new Cnn.Core.Shape(10), a.Network.OutputShape);
            foreach (var (path, t) in a.Parameters.Entries)
            {
                Assert.Equal(t.ToArray(), b.Parameters[path].ToArray());
                if (!path.StartsWith(head + "/", StringComparison.Ordinal))
                    Assert.True(imported.Parameters[path].Span.SequenceEqual(t.Span), $"frozen '{path}' changed");
            }
        }
        finally
        {
            Directory.Delete(exported, recursive: true);
            foreach (var run in new[] { csharp, fsharp }) if (run is { } r) Directory.Delete(r.Dir, recursive: true);
        }
    }
}
