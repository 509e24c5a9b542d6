using System.Text.Json;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Tests.Cli;
using Xunit;

namespace Cnn.Tests.LibTorch;

/// <summary><c>cnn verify</c> run in-process: its report, its JSON and its exit code.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class VerifyCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-verify");

    public void Dispose() => _dir.Delete(true);

    [Fact]
    public void Verify_compares_every_gradient_and_ONNX_Runtime_and_passes()
    {
        var (code, output, err) = CliRunner.Run("verify", "--model", "lenet5", "--json");
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("passed").GetBoolean());
        Assert.Equal("compared", root.GetProperty("onnx").GetString());
        var rows = root.GetProperty("rows").EnumerateArray().Select(r => (Against: r.GetProperty("against").GetString(), What: r.GetProperty("quantity").GetString())).ToList();
        var net = Zoo.LeNet5();
        foreach (var (path, _) in net.RootNode.Leaves().SelectMany(l => l.ParameterSpecs()))
            Assert.Contains(("LibTorch", "gradient " + path), rows);
        Assert.Contains(("LibTorch", "output"), rows);
        Assert.Contains(("LibTorch", "loss"), rows);
        Assert.Contains(("LibTorch", "input gradient"), rows);
        Assert.Contains(("ONNX Runtime", "output"), rows);

        var table = CliRunner.Run("verify", "--model", "simple-convnet", "--batch", "2");
        Assert.Equal(0, table.Code);
        Assert.Contains("gradient conv1/weight", table.Out);
        Assert.Contains("PASS: 10 quantities agree", table.Out);
    }

    [Fact]
    public void Verify_in_training_mode_compares_the_running_statistics()
    {
        var (code, output, err) = CliRunner.Run("verify", "--model", "resnet-mini", "--mode", "train", "--batch", "2", "--json");
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(output);
        var states = doc.RootElement.GetProperty("rows").EnumerateArray().Where(r => r.GetProperty("quantity").GetString()!.StartsWith("state ", StringComparison.Ordinal)).ToList();
        Assert.Equal(Initializer.InitState(Zoo.ByName("resnet-mini")).Count, states.Count);
        Assert.StartsWith("skipped", doc.RootElement.GetProperty("onnx").GetString());
    }

    /// <summary>A NaN weight in a checkpoint makes every quantity it reaches incomparable: those rows fail and the exit code is 1.</summary>
    [Fact]
    public void A_failing_row_makes_the_exit_code_1()
    {
        var net = Zoo.LeNet5();
        var p = Initializer.Init(net, 1);
        p = p.With("dense3/bias", Tensor.Full(p["dense3/bias"].Shape, float.NaN));
        var file = Path.Combine(_dir.FullName, "nan.safetensors");
        SafeTensors.Write(file, p, new Dictionary<string, string> { ["network"] = "lenet5" });
        var (code, output, _) = CliRunner.Run("verify", "--checkpoint", file);
        Assert.Equal(1, code);
        Assert.Contains("FAIL", output);
        Assert.Matches(@"FAIL: \d+ of \d+ quantities disagree", output);
    }

    [Fact]
    public void A_wrong_option_is_a_usage_error()
    {
        var (code, _, err) = CliRunner.Run("verify", "--mode", "sideways");
        Assert.Equal(2, code);
        Assert.Contains("--mode expects one of eval, train", err);
    }
}
