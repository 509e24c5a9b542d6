using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.Packaging;

/// <summary>
/// <c>dotnet fsi examples/train.fsx</c> against the libraries the test build has just built (the script's <c>#r</c> of
/// the Release output, or of the Debug output with <c>--define:DEBUG</c>): it builds, trains and exports a network.
/// </summary>
[Trait("Category", "Slow")]
public sealed class FSharpScriptTests(ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-fsx");

    public void Dispose() => _dir.Delete(true);

    [Fact]
    public void TheTrainScriptBuildsTrainsAndExportsANetwork()
    {
        var script = Path.Combine(RepoProcess.Root, "examples", "train.fsx");
        var onnx = Path.Combine(_dir.FullName, "script-model.onnx");
        var args = new List<string> { "fsi" };
        if (RepoProcess.Configuration == "Debug") args.Add("--define:DEBUG");
        args.AddRange([script, onnx]);
        var clock = Stopwatch.StartNew();
        var (code, text) = RepoProcess.Dotnet(_dir.FullName, TimeSpan.FromMinutes(8), null, [.. args]);
        output.WriteLine($"dotnet {string.Join(' ', args)}: exit {code} in {clock.Elapsed.TotalSeconds:F1} s");
        output.WriteLine(text);
        Assert.True(code == 0, text);
        Assert.Contains("Total params: 38,826", text);
        Assert.Matches(@"epoch 2: train loss \d\.\d{4}", text);
        var accuracy = double.Parse(System.Text.RegularExpressions.Regex.Match(text, @"held-out accuracy: (\d+\.\d+) %").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(accuracy > 70, $"held-out accuracy {accuracy} %");
        Assert.Contains($"exported {onnx}", text);
        Assert.True(new FileInfo(onnx).Length > 100_000);
    }
}
