using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Xunit;

namespace Cnn.Tests.Cli;

/// <summary>
/// <c>cnn run --data fashion-mnist</c> on the real Debian files (dataset-fashion-mnist, installed by <c>.ci/run</c>): the
/// recipe's network trains through the batch pipeline, and the report's checks (ONNX Runtime on every held-out image,
/// LibTorch's forward and gradients) run on images standardised as in training. A short run: the accuracy target is
/// the documented full run's, not this test's.
/// </summary>
public sealed class MainJobFashionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cnn-run-fashion-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Fashion_run_checks_the_trained_recipe_against_onnx_runtime_and_libtorch()
    {
        var run = Path.Combine(_dir, "run");
        var (code, output, err) = CliRunner.Run(["run", "--data", "fashion-mnist", "--quick", "--train", "384", "--test", "200", "--out", run]);
        Assert.True(code == 0, output + err);
        Assert.Contains("[3/6] training on the im2col backend", output);
        Assert.DoesNotContain("FAIL", output);
        Assert.Contains("PASS  ONNX Runtime agrees on every class       200/200", output);
        Assert.Contains("LibTorch gradient res2/res1/block/conv2/weight", output);

        // The checkpoint is a model: network, trained parameters, batch-norm state, and the normalisation it needs.
        var checkpoint = Path.Combine(run, "checkpoint.safetensors");
        var model = Model.Load(checkpoint);
        Assert.Equal(Recipe.FashionMnist.Build(), model.Network);
        var metadata = Checkpoint.Load(checkpoint).Metadata;
        Assert.Equal("fashion-mnist", metadata["data"]);
        var norm = Normalization.Parse(metadata["normalization"]);
        Assert.Equal(FashionMnist.Load(limit: 384).Train.FitNormalization(), norm);
        var test = FashionMnist.Load().Test.Batch(0, 200);
        var eval = Trainer.Evaluate(model.Network, model.Parameters, test, state: model.State, normalize: norm);
        Assert.Contains($"{eval.Accuracy:P2} on 200 images", output);
        Assert.True(File.Exists(Path.Combine(run, "model.onnx")));
    }

    [Fact]
    public void Digits_run_refuses_more_digits_than_the_package_has()
    {
        var (code, _, err) = CliRunner.Run(["run", "--train", "9000", "--test", "2000", "--out", Path.Combine(_dir, "x")]);
        Assert.Equal(2, code);
        Assert.Contains("exceeds the 10000 digits", err);
    }
}
