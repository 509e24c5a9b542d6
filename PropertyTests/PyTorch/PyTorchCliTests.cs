using Cnn.Core;
using Cnn.Dsl.IO;
using Cnn.Tests.Cli;
using Xunit;

namespace Cnn.Tests.PyTorch;

/// <summary><c>cnn export --format pytorch</c>: the module runs in python3-torch and gives <c>cnn forward</c>'s output; with data, the training files.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class PyTorchCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pytorch-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(params string[] parts) => Path.Combine([_dir, .. parts]);

    [PyTorchFact]
    public void Export_for_pytorch_runs_in_pytorch_with_cnn_forwards_output_and_writes_the_training_script_given_data()
    {
        var python = PythonTorch.Require();
        var (code, _, error) = CliRunner.Run("export", "--format", "pytorch", "--model", "lenet5", "--seed", "2", "--out", P("lenet"));
        Assert.True(code == 0, error);
        var rng = new Random(3);
        Npy.Write(P("x.npy"), Tensor.FromArray(Enumerable.Range(0, 3 * 784).Select(_ => rng.NextSingle()).ToArray(), 3, 1, 28, 28));
        var run = PythonTorch.Run(python, [P("lenet", "model.py"), P("lenet", "weights.safetensors"), P("x.npy"), P("torch.npy")], null, TimeSpan.FromMinutes(2));
        Assert.True(run.Code == 0, run.Output);
        Assert.Equal(0, CliRunner.Run("forward", "--model", "lenet5", "--seed", "2", "--input", P("x.npy"), "--out", P("ours.npy")).Code);
        float[] ours = Npy.ReadTensor(P("ours.npy")).ToArray(), theirs = Npy.ReadTensor(P("torch.npy")).ToArray();
        double scale = ours.Max(v => Math.Abs((double)v)), worst = ours.Zip(theirs, (a, b) => Math.Abs((double)a - b)).Max();
        Assert.True(worst <= 1e-5 * scale, $"PyTorch's output differs from ours by {worst:G3} (largest output {scale:G3})");

        var digits = CliRunner.WriteIdxDigits(P("digits"), train: 40, test: 10);
        var withData = CliRunner.Run("export", "--format", "pytorch", "--model", "lenet5", "--data", $"idx:{digits}", "--epochs", "2",
            "--batch-size", "20", "--optimizer", "adam", "--out", P("trainable"));
        Assert.True(withData.Code == 0, withData.Err);
        foreach (var file in new[] { "model.py", "weights.safetensors", "train.py", "recipe.json", "epoch_order.npy", "x_train.npy", "y_train.npy" })
            Assert.True(File.Exists(P("trainable", file)), file);
        var meta = Checkpoint.Load(P("trainable", "weights.safetensors")).Metadata;
        Assert.Equal(("adam", "20", $"idx:{digits}"), (meta["optimizer"], meta["batch_size"], meta["data"]));

        Assert.Equal(2, CliRunner.Run("export", "--format", "pytorch", "--model", "lenet5", "--opset", "17", "--out", P("x")).Code);
        Assert.Equal(2, CliRunner.Run("export", "--format", "pytorch", "--model", "lenet5", "--epochs", "3", "--out", P("y")).Code);
        Assert.Equal(1, CliRunner.Run("export", "--format", "pytorch", "--model", "lenet5", "--out", P("lenet")).Code); // not empty, no --force
    }
}
