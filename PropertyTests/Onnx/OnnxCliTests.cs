using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Onnx;
using Cnn.Tests.Cli;
using static Cnn.Tests.Onnx.OnnxTestSupport;

namespace Cnn.Tests.Onnx;

/// <summary><c>cnn export</c> and <c>cnn predict</c>, run in-process.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class OnnxCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("onnx-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Export_from_the_zoo_writes_a_model_with_the_chosen_versions_and_metadata()
    {
        var path = Path.Combine(_dir, "lenet.onnx");
        var (code, output, error) = CliRunner.Run("export", "--model", "lenet5", "--seed", "3", "--out", path, "--opset", "21", "--ir", "10");
        Assert.True(code == 0, error);
        Assert.Contains("strict shape inference", output);

        var model = Cnn.Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        Assert.Equal(10, model.IrVersion);
        Assert.Equal(21, model.OpsetImport.Single().Version);
        var imported = OnnxImporter.Import(path);
        Assert.Equal("lenet5", imported.Metadata["network"]);
        Assert.Equal("3", imported.Metadata["seed"]);
        var net = Zoo.LeNet5();
        var p = Initializer.Init(net, 3);
        foreach (var (k, t) in p.Entries) Assert.True(t.Span.SequenceEqual(imported.Parameters[k].Span), k);
    }

    [Fact]
    public void Export_from_a_checkpoint_keeps_its_parameters()
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 9);
        var checkpoint = Path.Combine(_dir, "p.safetensors");
        SafeTensors.Write(checkpoint, p, new Dictionary<string, string> { ["network"] = "simple-convnet", ["normalization"] = "0.1307;0.3081" });
        var path = Path.Combine(_dir, "m.onnx");
        var (code, _, error) = CliRunner.Run("export", "--checkpoint", checkpoint, "--out", path);
        Assert.True(code == 0, error);
        var imported = OnnxImporter.Import(path);
        Assert.True(p["dense2/weight"].Span.SequenceEqual(imported.Parameters["dense2/weight"].Span));
        Assert.Equal("0.1307;0.3081", imported.Metadata["normalization"]);
    }

    /// <summary>
    /// <c>cnn import</c> writes a checkpoint that the checkpoint-taking commands accept: summary, forward (the same output
    /// as the network it was exported from), export (the same parameters again), verify; its metadata names the source
    /// file and its SHA-256. A file that is not ONNX is an error naming it.
    /// </summary>
    [Fact]
    public void Import_writes_a_checkpoint_every_checkpoint_command_takes()
    {
        var onnx = Path.Combine(_dir, "resnet.onnx");
        Assert.Equal(0, CliRunner.Run("export", "--model", "resnet-mini", "--seed", "4", "--out", onnx).Code);
        var checkpoint = Path.Combine(_dir, "resnet.safetensors");
        var (code, output, error) = CliRunner.Run("import", "--onnx", onnx, "--out", checkpoint);
        Assert.True(code == 0, error);
        Assert.Contains("78,042 parameters", output);
        var saved = Checkpoint.Load(checkpoint);
        Assert.Equal("resnet.onnx", saved.Metadata["source"]);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(onnx))), saved.Metadata["source_sha256"]);
        Assert.Equal(1, CliRunner.Run("import", "--onnx", onnx, "--out", checkpoint).Code); // exists, no --force

        Assert.Equal(0, CliRunner.Run("summary", "--checkpoint", checkpoint).Code);
        var x = Path.Combine(_dir, "x.npy");
        var rng = new Random(5);
        Npy.Write(x, Tensor.FromArray(Enumerable.Range(0, 2 * 3 * 32 * 32).Select(_ => rng.NextSingle()).ToArray(), 2, 3, 32, 32));
        string yImported = Path.Combine(_dir, "yi.npy"), yZoo = Path.Combine(_dir, "yz.npy");
        Assert.Equal(0, CliRunner.Run("forward", "--checkpoint", checkpoint, "--input", x, "--out", yImported).Code);
        Assert.Equal(0, CliRunner.Run("forward", "--model", "resnet-mini", "--seed", "4", "--input", x, "--out", yZoo).Code);
        Assert.True(Npy.ReadTensor(yImported).Span.SequenceEqual(Npy.ReadTensor(yZoo).Span), "the imported network's output differs from the network it came from");
        var again = Path.Combine(_dir, "again.onnx");
        Assert.Equal(0, CliRunner.Run("export", "--checkpoint", checkpoint, "--out", again).Code);
        var reimported = OnnxImporter.Import(again);
        foreach (var (k, t) in saved.Parameters.Entries) Assert.True(t.Span.SequenceEqual(reimported.Parameters[k].Span), k);
        var verify = CliRunner.Run("verify", "--checkpoint", checkpoint);
        Assert.True(verify.Code == 0, verify.Out + verify.Err);

        var notOnnx = Path.Combine(_dir, "not.onnx");
        File.WriteAllText(notOnnx, "hello");
        var bad = CliRunner.Run("import", "--onnx", notOnnx, "--out", Path.Combine(_dir, "bad.safetensors"));
        Assert.Equal(1, bad.Code);
        Assert.Contains("not.onnx", bad.Err);
    }

    [Theory]
    [InlineData("--opset", "12", "--opset")]
    [InlineData("--opset", "27", "--opset")]
    [InlineData("--ir", "14", "--ir")]
    public void Versions_outside_what_onnx_runtime_takes_are_usage_errors(string option, string value, string expected)
    {
        var (code, _, error) = CliRunner.Run("export", "--model", "lenet5", "--out", Path.Combine(_dir, "x.onnx"), option, value);
        Assert.Equal(2, code);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void Predict_writes_outputs_for_a_npy_batch()
    {
        var net = Zoo.LeNet5();
        var p = Initializer.Init(net, 1);
        var model = Path.Combine(_dir, "l.onnx");
        OnnxExporter.Export(net, p, model);
        var x = RandomBatch(net.InputShape, 5, 4);
        var input = Path.Combine(_dir, "x.npy");
        var output = Path.Combine(_dir, "y.npy");
        Npy.Write(input, x);

        var (code, _, error) = CliRunner.Run("predict", "--onnx", model, "--input", input, "--out", output);
        Assert.True(code == 0, error);
        AssertClose(Apply.Forward(net, p, x), Npy.ReadTensor(output), "cnn predict --input");
    }

    [Fact]
    public void Predict_on_a_data_set_prints_the_accuracy_the_native_network_has()
    {
        var digits = CliRunner.WriteIdxDigits(Path.Combine(_dir, "digits"));
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 5);
        var model = Path.Combine(_dir, "s.onnx");
        OnnxExporter.Export(net, p, model);
        var test = Idx.LoadDirectory(digits).Second;
        var native = Apply.Forward(net, p, test.Images);
        int correct = Enumerable.Range(0, test.Count).Count(i => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(native.Span.Slice(i * 10, 10)) == test.Labels[i]);

        var (code, output, error) = CliRunner.Run("predict", "--model", model, "--data", "idx:" + digits, "--batch-size", "7");
        Assert.True(code == 0, error);
        Assert.Contains($"({correct}/{test.Count})", output);
    }

    [Fact]
    public void Predict_needs_data_or_an_input()
    {
        var (code, _, error) = CliRunner.Run("predict", "--model", "m.onnx");
        Assert.Equal(2, code);
        Assert.Contains("--data", error);
    }

    [Fact]
    public async Task A_model_that_fails_while_running_prints_one_plain_error_line()
    {
        // Height and width made symbolic pass the predictor's own shape check; LeNet's 5x5 convolution then fails inside
        // ONNX Runtime on a 4x4 image, whose logger printed the message again in ANSI colour ahead of ours.
        var net = Zoo.LeNet5();
        var m = Cnn.Onnx.Proto.ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(net, Initializer.Init(net, 1)));
        m.Graph.Input[0].Type.TensorType.Shape.Dim[2].DimParam = "height";
        m.Graph.Input[0].Type.TensorType.Shape.Dim[3].DimParam = "width";
        var model = Path.Combine(_dir, "symbolic.onnx");
        File.WriteAllBytes(model, Google.Protobuf.MessageExtensions.ToByteArray(m));
        var input = Path.Combine(_dir, "tiny.npy");
        Npy.Write(input, Tensor.Zeros(1, 1, 4, 4));

        using var process = CliRunner.Start("predict", "--onnx", model, "--input", input, "--out", Path.Combine(_dir, "y.npy"));
        var readError = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        string error = await readError;
        Assert.Equal(1, process.ExitCode);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, found {lines.Length}: {error}");
        Assert.StartsWith("cnn: error: ONNX Runtime failed to run the model", lines[0]);
        Assert.DoesNotContain('\u001b', error);
    }
}
