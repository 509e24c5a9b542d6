using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Onnx;
using Xunit;

namespace Cnn.Tests.Dsl;

/// <summary>The <see cref="Model"/> value: each member against the separate-parameters API it stands for.</summary>
public class ModelValueTests
{
    private static Network Net() => Network.Create(
        new Serial(
            new Conv2d(4, kernel: 3, padding: Padding.Same), new BatchNorm(), new Relu(), MaxPool2d.Square(2),
            new Residual(new Serial(new Conv2d(4, kernel: 3, padding: Padding.Same), new Relu())),
            new Flatten(), new Dense(3)),
        new Shape(1, 6, 6));

    private static LabeledData Data(int n, int seed)
    {
        var rng = new Random(seed);
        var labels = Enumerable.Range(0, n).Select(i => i % 3).ToArray();
        // Each class lights a different third of the image, so a few epochs learn it.
        var x = new float[n * 36];
        for (int i = 0; i < n; i++)
            for (int p = 0; p < 36; p++)
                x[i * 36 + p] = (float)(rng.NextDouble() * 0.3) + (p / 12 == labels[i] ? 1f : 0f);
        return new LabeledData(Tensor.FromArray(x, n, 1, 6, 6), labels, 3);
    }

    private static readonly TrainOptions Options = new(Epochs: 3, BatchSize: 8, Optimizer: new Adam(1e-2f), Seed: 2);

    [Fact]
    public void FitReturnsANewModelEqualToTrainerFitAndLeavesTheOldOne()
    {
        var model = Model.Init(Net(), seed: 1);
        var before = model.Parameters["conv1/weight"].ToArray();
        var fit = model.Fit(Data(48, 1), Options);
        var direct = Trainer.Fit(Net(), Initializer.Init(Net(), 1), Data(48, 1), Options);

        Assert.Equal(before, model.Parameters["conv1/weight"].ToArray());
        Assert.Equal(3, fit.History.Count);
        foreach (var path in direct.Parameters.Paths)
            Assert.Equal(direct.Parameters[path].ToArray(), fit.Model.Parameters[path].ToArray());
        foreach (var path in direct.State.Paths)
            Assert.Equal(direct.State[path].ToArray(), fit.Model.State[path].ToArray());
        Assert.NotEqual(model.State["bn1/running_mean"].ToArray(), fit.Model.State["bn1/running_mean"].ToArray());
        Assert.Equal(model.Network, fit.Model.Network);
    }

    [Fact]
    public void EvaluatePredictAndProbabilitiesAgreeWithApplyAndTrainer()
    {
        var model = Model.Init(Net(), seed: 3).Fit(Data(48, 2), Options).Model;
        var test = Data(30, 3);
        var expected = Trainer.Evaluate(model.Network, model.Parameters, test, state: model.State);
        Assert.Equal(expected, model.Evaluate(test));

        var logits = Apply.Forward(model.Network, model.Parameters, test.Images, Mode.Eval, model.State);
        Assert.Equal(logits.ToArray(), model.Forward(test.Images).ToArray());
        Assert.Equal(Trainer.ArgMax(logits), model.Predict(test.Images));

        var p = model.PredictProbabilities(test.Images);
        Assert.Equal(new Shape(30, 3), p.Shape);
        for (int i = 0; i < 30; i++)
        {
            var row = p.Span.Slice(i * 3, 3).ToArray();
            Assert.InRange(row.Sum(), 1f - 1e-5f, 1f + 1e-5f);
            Assert.Equal(model.Predict(test.Images)[i], Array.IndexOf(row, row.Max()));
        }
    }

    [Fact]
    public void ProbabilitiesOfANetworkEndingInLogSoftmaxAreItsExponential()
    {
        var model = Model.Create(new Serial(new Flatten(), new Dense(4), new LogSoftmax()), new Shape(1, 2, 2), seed: 5);
        var x = Tensor.FromArray(Enumerable.Range(0, 8).Select(i => i * 0.25f - 1f).ToArray(), 2, 1, 2, 2);
        var logp = model.Forward(x).ToArray();
        Assert.Equal(logp.Select(MathF.Exp).ToArray(), model.PredictProbabilities(x).ToArray());
    }

    [Fact]
    public void SaveAndLoadRoundTripTheNetworkParametersAndStateInTheCheckpointFormat()
    {
        var model = Model.Init(Net(), seed: 4).Fit(Data(24, 4), Options with { Epochs = 1 }).Model;
        using var dir = new TempFolder();
        var path = Path.Combine(dir.Path, "model.safetensors");
        model.Save(path);

        var back = Model.Load(path);
        Assert.Equal(model.Network, back.Network);
        Assert.Equal(model.Network.GetHashCode(), back.Network.GetHashCode());
        foreach (var (k, t) in model.Parameters.Entries) Assert.Equal(t.ToArray(), back.Parameters[k].ToArray());
        foreach (var (k, t) in model.State.Entries) Assert.Equal(t.ToArray(), back.State[k].ToArray());
        // The file is an ordinary checkpoint: the separate API reads it too.
        Assert.Equal(model.Network, Checkpoint.LoadNetwork(Checkpoint.Load(path)));
        Assert.Equal(model.Parameters.Paths, Model.Load(path, Net()).Parameters.Paths);
    }

    [Fact]
    public void LoadRefusesAFileWithoutItsNetworkAndParametersThatDoNotFit()
    {
        var model = Model.Init(Net(), seed: 4);
        using var dir = new TempFolder();
        var bare = Path.Combine(dir.Path, "bare.safetensors");
        SafeTensors.Write(bare, model.Parameters, new Dictionary<string, string>());
        var e = Assert.Throws<Cnn.Core.FormatException>(() => Model.Load(bare));
        Assert.Contains("no network description", e.Message);
        Assert.Equal(model.Parameters.Paths, Model.Load(bare, Net()).Parameters.Paths);

        var other = Network.Create(new Serial(new Flatten(), new Dense(5)), new Shape(1, 6, 6));
        var wrong = Assert.Throws<Cnn.Core.FormatException>(() => Model.Load(bare, other));
        Assert.Contains("dense1/weight", wrong.Message);
    }

    [Fact]
    public void ExportOnnxWritesTheModelAndOnnxRuntimeAgreesWithForward()
    {
        var model = Model.Init(Net(), seed: 6).Fit(Data(24, 6), Options with { Epochs = 1 }).Model;
        using var dir = new TempFolder();
        var path = Path.Combine(dir.Path, "model.onnx");
        model.ExportOnnx(path);
        Assert.Equal(File.ReadAllBytes(path), model.ToOnnxBytes());
        Assert.Equal(OnnxExporter.ToBytes(model.Network, model.Parameters, model.State), model.ToOnnxBytes());

        var x = Data(10, 7).Images;
        using var predictor = new OnnxPredictor(path);
        var ort = predictor.Run(x).ToArray();
        var ours = model.Forward(x).ToArray();
        for (int i = 0; i < ours.Length; i++) Assert.InRange(ort[i], ours[i] - 1e-4f * (1 + MathF.Abs(ours[i])), ours[i] + 1e-4f * (1 + MathF.Abs(ours[i])));
    }

    [Fact]
    public void ResumingFromTheFitCheckpointEqualsOneLongerRun()
    {
        var model = Model.Init(Net(), seed: 8);
        var data = Data(32, 8);
        var whole = model.Fit(data, Options with { Epochs = 2 });
        var first = model.Fit(data, Options with { Epochs = 1 });
        var resumed = first.Model.Fit(data, Options with { Epochs = 2 }, resume: first.Checkpoint);
        foreach (var (k, t) in whole.Model.Parameters.Entries) Assert.Equal(t.ToArray(), resumed.Model.Parameters[k].ToArray());
    }

    [Fact]
    public void ACheckpointCallbackGivenTheNetworkWritesFilesThatLoadAsModels()
    {
        using var dir = new TempFolder();
        var model = Model.Init(Net(), seed: 9);
        var fit = model.Fit(Data(24, 9), Options with { Epochs = 2, Callbacks = [Callback.ModelCheckpoint(Path.Combine(dir.Path, "ep{epoch}.safetensors"), network: model.Network)] });
        var last = Model.Load(Path.Combine(dir.Path, "ep002.safetensors"));
        Assert.Equal(model.Network, last.Network);
        foreach (var (k, t) in fit.Model.Parameters.Entries) Assert.Equal(t.ToArray(), last.Parameters[k].ToArray());
    }

    /// <summary>A temporary folder deleted on dispose.</summary>
    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("cnn-model").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
