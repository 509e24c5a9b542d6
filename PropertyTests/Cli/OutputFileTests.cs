using Xunit;

namespace Cnn.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public class OutputFileTests
{
    /// <summary>A command that writes one file refuses to replace an existing one unless given --force (issue 10).</summary>
    [Fact]
    public void AnExistingOutputFileIsReplacedOnlyWithForce()
    {
        var dir = Directory.CreateTempSubdirectory("cnn-out-").FullName;
        var path = Path.Combine(dir, "m.onnx");
        Assert.Equal(0, CliRunner.Run("export", "--model", "simple-convnet", "--out", path).Code);
        var first = File.ReadAllBytes(path);
        var (code, _, err) = CliRunner.Run("export", "--model", "simple-convnet", "--seed", "2", "--out", path);
        Assert.Equal(1, code);
        Assert.Contains("--force", err);
        Assert.Equal(first, File.ReadAllBytes(path));
        Assert.Equal(0, CliRunner.Run("export", "--model", "simple-convnet", "--seed", "2", "--out", path, "--force").Code);
        Assert.NotEqual(first, File.ReadAllBytes(path));
    }
}
